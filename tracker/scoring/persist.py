"""Save and load a trained model (joblib) with its metadata."""

from __future__ import annotations

import os
from pathlib import Path

from tracker.errors import TrackerError
from tracker.scoring.model import FORMAT, TrainedModel

_HINT = "retrain with `tracker train --labels FILE.jsonl`, or delete it to use cold start"


def save(model: TrainedModel, path: str | Path) -> Path:
    """Write atomically (temp file + rename), so a crash never leaves half a model."""
    import joblib

    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump({"format": FORMAT, "model": model}, tmp, compress=3)
        os.replace(tmp, path)
    except OSError as exc:
        if tmp.is_file():
            tmp.unlink()
        raise TrackerError(f"cannot write the model file {path}: {exc.strerror or exc}",
                           hint="set [relevance] model_path to a writable file path") from None
    return path


def load(path: str | Path) -> TrainedModel | None:
    """The model at `path`, or None when there is no file (cold start)."""
    path = Path(path)
    if not path.is_file():
        return None
    import joblib  # 0.2 s: not for a cold start

    try:
        payload = joblib.load(path)
    except Exception as exc:  # unpickling can fail in many ways; all mean "unusable file"
        raise TrackerError(f"cannot read model file {path}: {type(exc).__name__}: {exc}",
                           hint=_HINT) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT \
            or not isinstance(payload.get("model"), TrainedModel):
        raise TrackerError(f"{path} is not a model file of this tracker version", hint=_HINT)
    model = payload["model"]
    sizes = {len(model.vocabulary), len(model.idf), len(model.coef), len(model.coef_b)}
    if len(sizes) != 1:
        raise TrackerError(f"model file {path} is inconsistent (vocabulary and weights "
                           "differ in size)", hint=_HINT)
    return model
