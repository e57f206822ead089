"""Ranking and threshold metrics for evaluation (positive = label 2)."""

from __future__ import annotations

import numpy as np


def precision_at(scores, positive, k: int) -> float:
    """Share of positives among the k best-scored items. Items tied at the k-th score
    share its remaining places: each counts at its chance of being among the k, so the
    value does not depend on the order of the input."""
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=float)
    k = min(k, len(scores))
    if not k:
        return 0.0
    edge = np.sort(scores)[::-1][k - 1]
    above, tied = scores > edge, scores == edge
    places = k - above.sum()
    return float((positive[above].sum() + places * positive[tied].mean()) / k)


WHY_UNDEFINED = {
    "average_precision": "needs records labelled 2 and others",
    "roc_auc": "needs records labelled 2 and others",
    "precision": "nothing scores at or above the threshold",
    "recall": "no records labelled 2",
    "f1": "no records labelled 2",
}


def evaluate(scores, labels, threshold: float) -> dict:
    """The metrics `tracker eval` reports; None where a metric is undefined (WHY_UNDEFINED)."""
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    scores = np.asarray(scores, dtype=float)
    positive = np.array([1 if label == 2 else 0 for label in labels])
    both = 0 < positive.sum() < len(positive)
    predicted = (scores >= threshold).astype(int)
    p, r, f, _ = precision_recall_fscore_support(positive, predicted, average="binary",
                                                 zero_division=0)
    # undefined, not 0: precision with nothing at or above the threshold, recall (and F1)
    # with no positives in the file
    any_predicted, any_positive = bool(predicted.any()), bool(positive.any())
    return {
        "average_precision": float(average_precision_score(positive, scores)) if both else None,
        "roc_auc": float(roc_auc_score(positive, scores)) if both else None,
        "precision_at_10": precision_at(scores, positive, 10),
        "precision_at_20": precision_at(scores, positive, 20),
        "precision_at_50": precision_at(scores, positive, 50),
        "precision": float(p) if any_predicted else None,
        "recall": float(r) if any_positive else None,
        "f1": float(f) if any_positive else None,
        "n": int(len(scores)),
        "n_positive": int(positive.sum()),
    }
