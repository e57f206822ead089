"""Relevance use cases (issue 4): score, train, rescore, explain, evaluate, tune, label.

    score_items(app, items, lenient=False) -> ItemScores
    write_scores(session, scores, now, written=()) -> int
        CONTRACT used by ingest: score new and updated items (StoredItem, as the upsert
        returns them) with the current model (cold start when no model file exists), then
        write the scores inside the caller's transaction.
    score_new(app, session, items) -> int: both in one step.

Training data: label files (2 = core NeuroAI, 1 = adjacent, 0 = not; label 1 is "related"
for stage A and "not core" for stage B, see tracker/scoring/model.py), the user's labels in
the store (relevant = 2, irrelevant = 0; they win over a file's label for the same id) and
the stored seed papers (positives unless the user labelled them irrelevant). When fewer
examples are labelled 0 than 2, recently stored unlabelled papers serve as background
negatives.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from tracker.errors import InputError, NotFoundError, TrackerError
from tracker.models import item_key
from tracker.pipeline import utcnow
from tracker.store import scores as store
from tracker.store.db import transaction

log = logging.getLogger(__name__)

RESCORE_BATCH = 2000
BACKGROUND_NEGATIVES = 2000
USER_LABELS = {"relevant": 2, "irrelevant": 0}


def _doc(item):
    from tracker.scoring.labels import make_doc

    return make_doc(item.title, item.body, item.categories)


def scorer(app, *, lenient: bool = False):
    """The app's scorer, loaded once and reloaded only when the model file or the config
    keywords change (so score_new stays cheap on every ingest batch). An unreadable model
    file raises TrackerError (explain, eval, rescore, tune must not quietly use cold start);
    with `lenient` (the ingest path: a broken file must not fail a fetch) it logs one
    warning per file state and scores with cold start."""
    from tracker.scoring import persist
    from tracker.scoring.scorer import Scorer

    path = Path(app.config.relevance.model_path)
    stamp = (path.stat().st_mtime_ns if path.is_file() else None, app.config.relevance_hash())
    cached = app.__dict__.get("_relevance_scorer")
    if cached is None or cached[0] != stamp:
        try:
            model, problem = persist.load(path), None
        except TrackerError as exc:
            if not lenient:
                raise
            model, problem = None, exc
            log.warning("%s; scoring with cold start until it is fixed", exc)
        if model is None and problem is None and (trained := _trained_before(app)):
            # a wrong model_path (or working directory): fetch would mix two scales, and
            # explain, eval and tune would quietly show cold start's view
            log.warning("no model file at %s, but stored scores come from model %s: "
                        "scoring with cold start until `tracker train` writes it (or "
                        "[relevance] model_path is fixed)", path.absolute(), trained)
        keywords = dict(app.config.relevance.keywords)
        trained_with = model.meta.get("keywords") if model is not None else None
        if trained_with is not None and trained_with != keywords:
            # stage A was fitted with the keywords as a fixed part of the score
            log.warning("model %s was trained with other [relevance.keywords]: run `tracker "
                        "train` again to fit the model to the current ones", model.version)
        cached = (stamp, Scorer(model, keywords), problem)
        app.__dict__["_relevance_scorer"] = cached
    elif cached[2] is not None and not lenient:
        raise cached[2]
    return cached[1]


def _trained_before(app) -> str | None:
    """A trained model that current stored scores come from, if any (a new install's eval
    runs before any store exists: none is created for this question)."""
    from tracker.scoring.model import COLD_START_VERSION
    from tracker.store.db import current_revision, sqlite_path

    file = sqlite_path(app.config.database_url)
    if file is not None and not file.exists():
        return None
    if not app.existing and current_revision(app.engine) is None:
        return None  # an empty database (PostgreSQL): nothing trained, nothing to create
    with app.sessions() as session:
        trained = store.score_models(session, besides=COLD_START_VERSION)
    return trained[0] if trained else None


@dataclass
class ItemScores:
    """Items scored by one model, not yet written: (StoredItem, score, why) rows."""

    version: str
    config_hash: str
    rows: list


def score_items(app, items, *, lenient: bool = False) -> ItemScores:
    current = scorer(app, lenient=lenient)
    results = current.score([_doc(item) for item in items])
    return ItemScores(current.version, app.config.relevance_hash(),
                      [(item, r.score, list(r.why)) for item, r in zip(items, results,
                                                                        strict=True)])


def write_scores(session, scores: ItemScores, now: datetime, *, written=()) -> int:
    """History rows, and the current score of the items not `written` with theirs already
    (ids of papers the upsert stored with it). Returns how many items changed."""
    return store.write_scores(session, scores.rows, model_version=scores.version,
                              config_hash=scores.config_hash, now=now, written=written)


def _score_items(app, session, items, now, *, lenient=False) -> tuple[int, int]:
    scores = score_items(app, items, lenient=lenient)
    return len(scores.rows), write_scores(session, scores, now)


def score_new(app, session, items: list) -> int:
    return _score_items(app, session, items, utcnow(), lenient=True)[0] if items else 0


def rescore(app, *, now: datetime | None = None, progress=None,
            cold_start: bool = False) -> tuple[int, int]:
    """Re-score every stored item, one transaction per batch. `progress(n)` is called after
    each batch. Returns (items scored, items whose score changed). Without a model file,
    refuses to replace scores of a trained model unless `cold_start`."""
    now = now or utcnow()
    path = Path(app.config.relevance.model_path)
    if not cold_start and not path.is_file() and (trained := _trained_before(app)):
        raise TrackerError(
            f"no model file at {path.absolute()}, but stored scores come from model "
            f"{trained}: rescoring would replace them with cold-start scores",
            hint="fix [relevance] model_path (a relative path is read from the working "
                 "directory), run `tracker train`, or pass --cold-start")
    total = changed = 0
    for fetch in (store.paper_batch, store.post_batch):
        after = None
        while True:
            with transaction(app.sessions) as session:
                items = fetch(session, after, RESCORE_BATCH)
                if not items:
                    break
                done, diff = _score_items(app, session, items, now)
            total, changed, after = total + done, changed + diff, items[-1].id
            if progress:
                progress(done)
    return total, changed


# --- training ----------------------------------------------------------------------------

@dataclass
class TrainReport:
    path: str
    version: str
    n_train: int
    n_positive: int
    sources: dict = field(default_factory=dict)


def _training_set(app, label_files) -> tuple[list, list, dict, list]:
    """(docs, labels, how many examples each source gave: files, seeds, user_labels,
    background; their ids)."""
    from tracker.scoring.labels import read_labels

    examples: dict[str, tuple] = {}  # id -> (doc, label, source); later sources win
    for record in read_labels(*label_files) if label_files else []:
        examples[record.id] = (record.doc, record.label, "files")
    with app.sessions() as session:
        seeds = list(dict.fromkeys(item_key(s) for s in app.config.relevance.seed_papers
                                   if s.strip()))
        stored_seeds = store.items_by_ids(session, seeds, [])
        for item in stored_seeds:
            examples[item.key] = (_doc(item), 2, "seeds")
        if unfetched := sorted(set(seeds) - {item.key for item in stored_seeds}):
            log.warning("%d seed paper(s) not stored yet, so not trained on: %s (`tracker "
                        "fetch` fetches them; it warns about ids arXiv does not know)",
                        len(unfetched), ", ".join(unfetched))
        for item, label in store.labelled_items(session):
            examples[item.key] = (_doc(item), USER_LABELS[label], "user_labels")
        # Stage A learns "NeuroAI or related" against label 0: with none, or fewer than the
        # relevant examples (one "irrelevant" beside 100 relevant), it passes nearly
        # everything, while a real stream is mostly not NeuroAI. Papers scored at the
        # digest's min_score or above are left out: they are the likeliest to be relevant,
        # and taught as negatives they sank (a week with 22 core papers: 5 scored 0.5 or
        # more after training on 50 relevant ones, 7 with them left out)
        labels = [label for _, label, _ in examples.values()]
        if labels and labels.count(0) < labels.count(2):
            for item in store.unlabelled_sample(session, BACKGROUND_NEGATIVES,
                                                below=app.config.digest.min_score):
                examples.setdefault(item.key, (_doc(item), 0, "background"))
    counts = dict.fromkeys(("files", "seeds", "user_labels", "background"), 0)
    for _, _, source in examples.values():
        counts[source] += 1
    return ([doc for doc, _, _ in examples.values()],
            [label for _, label, _ in examples.values()], counts, list(examples))


def train(app, label_files: list[str]) -> TrainReport:
    from tracker.scoring import model as scoring_model
    from tracker.scoring import persist

    docs, labels, counts, ids = _training_set(app, label_files)
    positives = sum(1 for label in labels if label == 2)
    if positives == 0 or positives == len(labels):
        given = len(labels) - counts["background"]  # the stored papers added are not theirs
        raise InputError(
            f"cannot train on {given} labelled examples with {positives} relevant (label 2)",
            hint="give --labels files or `tracker label ID relevant|irrelevant` both kinds")
    needed = app.config.relevance.min_relevant
    if positives < needed:  # bad input as well: the labels given are too few
        raise InputError(
            f"only {positives} relevant examples; training needs at least {needed}: a model "
            "trained on fewer ranks worse than the keywords alone; stored scores stay as "
            "they are",
            hint="label more papers relevant (`tracker label ID relevant`), add a --labels "
                 "file, or lower [relevance] min_relevant")
    try:
        trained = scoring_model.train(docs, labels, keywords=app.config.relevance.keywords,
                                      config_hash=app.config.relevance_hash())
    except ValueError as exc:  # e.g. sklearn: empty vocabulary (texts without words)
        raise InputError(f"cannot train on these examples: {exc}") from None
    trained.meta["keywords"] = dict(app.config.relevance.keywords)  # see scorer()
    trained.trained_ids = frozenset(ids)
    path = persist.save(trained, app.config.relevance.model_path)
    return TrainReport(str(path), trained.version, trained.n_train, trained.n_positive, counts)


def model_info(app) -> dict:
    from tracker.scoring.model import model_info as info

    return info(scorer(app).model)


# --- explain, eval, label ------------------------------------------------------------------

def _stored(session, item_id: str):
    from tracker.models import parse_item_id

    kind, key = parse_item_id(item_id)
    found = store.items_by_ids(session, [key] if kind == "paper" else [],
                               [key] if kind == "post" else [])
    if not found:
        raise NotFoundError(f"no stored item {item_id}",
                            hint="e.g. 2210.08340 (any version) or post:12; see tracker search")
    return found[0]


def explain(app, item_id: str, top: int = 8):
    """(stored item, Explanation with the current model and config)."""
    with app.sessions() as session:
        item = _stored(session, item_id)
    return item, scorer(app).explain(_doc(item), top=top)


def evaluate_file(app, path: str) -> dict:
    """Score a label file with the current model (never trained on it) and measure."""
    from tracker.scoring.labels import read_labels
    from tracker.scoring.metrics import evaluate

    records = read_labels(path)
    current = scorer(app)
    results = current.score([r.doc for r in records])
    metrics = evaluate([r.score for r in results], [r.label for r in records],
                       app.config.relevance.threshold)
    seen = sum(r.id in current.model.trained_ids for r in records) if current.model else 0
    if seen:
        log.warning("%d of the %d records in %s are examples the model was trained on; the "
                    "figures overstate how it ranks papers it has not seen (evaluate on a "
                    "file kept out of `tracker train`)", seen, len(records), path)
    return {**metrics, "model_version": current.version, "n_seen_in_training": seen}


def label(app, item_ids: list[str], value: str, *, now: datetime | None = None
          ) -> list[tuple[str, str]]:
    """Store 'relevant' / 'irrelevant' for stored items, or remove it with 'clear'; each
    item once (2210.08340 and 2210.08340v2 are one), with what happened to it, in order.
    All or nothing: an id not stored changes none of them."""
    if value not in (*USER_LABELS, "clear"):
        raise InputError(f"unknown label {value!r}", hint="relevant, irrelevant or clear")
    with transaction(app.sessions) as session:
        items, missing = {}, []
        for item_id in item_ids:
            try:
                item = _stored(session, item_id)
            except NotFoundError:
                if item_id not in missing:
                    missing.append(item_id)
            else:
                items.setdefault(item.key, item)
        if missing:
            raise NotFoundError(f"no stored item {', '.join(missing)}; nothing labelled",
                                hint="e.g. 2210.08340 (any version) or post:12; see "
                                     "tracker search")
        if value == "clear":
            return [(key, "cleared" if store.clear_label(session, item.kind, item.id)
                     else "no label") for key, item in items.items()]
        for item in items.values():
            store.set_label(session, item.kind, item.id, value, now or utcnow())
    return [(key, value) for key in items]


# --- tune (backtest) -----------------------------------------------------------------------

@dataclass
class WeekChange:
    start: datetime
    end: datetime
    entering: list = field(default_factory=list)  # (item, old score, new score)
    leaving: list = field(default_factory=list)


def pick(items: list, min_score: float, max_items: int, labels: dict | None = None) -> dict:
    """What the digest would hold of `items` (digest.build.Item): those scoring at least
    min_score, the user's label deciding over the score (relevant: in; irrelevant: out),
    chosen by the digest's own selection. {entry: id of the item shown}; an entry is the
    item, or for a post the link that several feeds may carry (one entry, its best copy)."""
    from tracker.digest import build

    labels = labels or {}
    eligible = [i for i in items if labels.get(i.id) == "relevant" or (
        labels.get(i.id) != "irrelevant" and i.score is not None and i.score >= min_score)]
    return {_entry(i): i.id for i in build.select(eligible, max_items)[0]}


def _entry(item) -> str:
    return item.url if item.kind == "post" and item.url else item.id


def tune(app, *, weeks: int = 4, now: datetime | None = None) -> list[WeekChange]:
    """Backtest the current config/model on the last `weeks` weeks of stored items:
    per week, which items would enter or leave the digest. Writes nothing."""
    from dataclasses import replace

    from tracker.digest.build import ARCHIVE_AGE
    from tracker.pipeline.digest import paper_item, post_item
    from tracker.store import digests

    now = now or utcnow()
    cfg = app.config.digest
    periods = [(now - timedelta(weeks=week + 1), now - timedelta(weeks=week))
               for week in range(weeks)]
    weekly = []  # per period: the candidates as stored (to score) and as the digest sees them
    with app.sessions() as session:
        for start, end in periods:
            # the digest's own candidates, scores aside (what it sent stays in: a replay)
            recent = start - ARCHIVE_AGE
            papers = digests.candidate_papers(session, start, end, None, cfg.include_updates,
                                              recent, unsent_only=False)
            posts = digests.candidate_posts(session, start, end, None, recent)
            shown = ([paper_item(r, (), start, recent) for r in papers]
                     + [post_item(r, (), ()) for r in posts])
            weekly.append((store.items_by_ids(session, [r.id for r in papers],
                                              [r.id for r in posts]), shown))
        labels = {item.key: label for item, label in store.labelled_items(session)}
    items = {i.key: i for stored, _ in weekly for i in stored}
    new_scores = {key: r.score for key, r in
                  zip(items, scorer(app).score([_doc(i) for i in items.values()]), strict=True)}
    out = []
    for (start, end), (inside, shown) in zip(periods, weekly, strict=True):
        before = pick(shown, cfg.min_score, cfg.max_items, labels)
        after = pick([replace(i, score=new_scores[i.id]) for i in shown], cfg.min_score,
                     cfg.max_items, labels)
        change = WeekChange(start, end)
        entry = {i.id: _entry(i) for i in shown}
        for item in inside:  # an entry that moves, as the copy the digest shows
            row, key = (item, item.score, new_scores[item.key]), entry[item.key]
            if after.get(key) == item.key and key not in before:
                change.entering.append(row)
            elif before.get(key) == item.key and key not in after:
                change.leaving.append(row)
        out.append(change)
    return out
