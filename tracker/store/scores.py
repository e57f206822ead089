"""SQL for relevance: item texts to score, current scores + score history, user labels.
Callers pass a Session; the use case commits."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from tracker.store import chunks, insert_rows
from tracker.store.schema import LabelRow, PaperRow, PostRow, ScoreRow


@dataclass(frozen=True)
class StoredItem:
    kind: str  # paper | post
    id: str | int  # arXiv id or posts.id
    title: str
    body: str  # abstract or summary text
    categories: tuple[str, ...]
    score: float | None
    score_model: str | None

    @property
    def key(self) -> str:
        return str(self.id) if self.kind == "paper" else f"post:{self.id}"


_PAPER_COLS = (PaperRow.id, PaperRow.title, PaperRow.abstract, PaperRow.categories,
               PaperRow.score, PaperRow.score_model)
_POST_COLS = (PostRow.id, PostRow.title, PostRow.summary_text, PostRow.score,
              PostRow.score_model)


def _paper(row) -> StoredItem:
    return StoredItem("paper", row.id, row.title, row.abstract, tuple(row.categories or ()),
                      row.score, row.score_model)


def _post(row) -> StoredItem:
    return StoredItem("post", row.id, row.title, row.summary_text or "", (), row.score,
                      row.score_model)


def _rows(session: Session, query):
    """Plain Core rows on the session's connection (same transaction): skips the ORM's
    result processing, which costs more than the query on every ingest batch. Flushes
    first, as session.execute would (pending ORM rows must be visible)."""
    session.flush()
    return session.connection().execute(query)


def items_by_ids(session: Session, paper_ids: Iterable[str],
                 post_ids: Iterable[int]) -> list[StoredItem]:
    out: list[StoredItem] = []
    paper_ids, post_ids = list(dict.fromkeys(paper_ids)), list(dict.fromkeys(post_ids))
    for chunk in chunks(paper_ids):
        out += [_paper(r) for r in _rows(session, select(*_PAPER_COLS)
                                         .where(PaperRow.id.in_(chunk)).order_by(PaperRow.id))]
    for chunk in chunks(post_ids):
        out += [_post(r) for r in _rows(session, select(*_POST_COLS)
                                        .where(PostRow.id.in_(chunk)).order_by(PostRow.id))]
    return out


def paper_batch(session: Session, after: str | None, limit: int) -> list[StoredItem]:
    """Papers in id order after `after` (keyset pagination: stable under updates)."""
    query = select(*_PAPER_COLS).order_by(PaperRow.id).limit(limit)
    if after is not None:
        query = query.where(PaperRow.id > after)
    return [_paper(r) for r in _rows(session, query)]


def post_batch(session: Session, after: int | None, limit: int) -> list[StoredItem]:
    query = select(*_POST_COLS).order_by(PostRow.id).limit(limit)
    if after is not None:
        query = query.where(PostRow.id > after)
    return [_post(r) for r in _rows(session, query)]


def score_models(session: Session, *, besides: str) -> list[str]:
    """The models current item scores come from, other than `besides`."""
    found = set()
    for table in (PaperRow, PostRow):
        found.update(session.scalars(select(table.score_model).distinct().where(
            table.score_model.is_not(None), table.score_model != besides)))
    return sorted(found)


def write_scores(session: Session, scored: list[tuple[StoredItem, float, list[str]]], *,
                 model_version: str, config_hash: str, now: datetime,
                 written: Iterable = ()) -> int:
    """Set the current score of each item (but of the papers whose ids are in `written`:
    stored with it already) and add a history row where the value or the model changed.
    Returns how many items changed."""
    papers, posts, history = [], [], []
    written = set(written)
    for item, value, why in scored:
        if item.kind == "post":
            posts.append({"key": item.id, "value": value})
        elif item.id not in written:
            papers.append({"key": item.id, "value": value})
        if item.score is not None and item.score_model == model_version \
                and abs(item.score - value) < 1e-9:
            continue
        history.append({"paper_id": item.id if item.kind == "paper" else None,
                        "post_id": item.id if item.kind == "post" else None,
                        "value": value, "model_version": model_version,
                        "config_hash": config_hash, "why": list(why), "scored_at": now})
    # Core statements with executemany: the ORM's bulk-by-primary-key path costs more than
    # the SQL itself on every ingest batch.
    for table, rows in ((PaperRow.__table__, papers), (PostRow.__table__, posts)):
        if rows:
            session.execute(update(table).where(table.c.id == bindparam("key"))
                            .values(score=bindparam("value"), score_model=model_version), rows)
    insert_rows(session, ScoreRow.__table__, history)
    return len(history)


def latest_why(session: Session, kind: str, item_id) -> ScoreRow | None:
    column = ScoreRow.paper_id if kind == "paper" else ScoreRow.post_id
    return session.scalars(select(ScoreRow).where(column == item_id)
                           .order_by(ScoreRow.id.desc()).limit(1)).first()


# --- labels ------------------------------------------------------------------------------

def set_label(session: Session, kind: str, item_id, label: str, now: datetime) -> None:
    """Store or replace the user's label of one item ('relevant' | 'irrelevant')."""
    column = LabelRow.paper_id if kind == "paper" else LabelRow.post_id
    changed = session.execute(update(LabelRow).where(column == item_id)
                              .values(label=label, created_at=now)).rowcount
    if not changed:
        session.add(LabelRow(paper_id=item_id if kind == "paper" else None,
                             post_id=item_id if kind == "post" else None,
                             label=label, created_at=now))
        session.flush()


def clear_label(session: Session, kind: str, item_id) -> bool:
    column = LabelRow.paper_id if kind == "paper" else LabelRow.post_id
    return bool(session.execute(delete(LabelRow).where(column == item_id)).rowcount)


def get_label(session: Session, kind: str, item_id) -> str | None:
    column = LabelRow.paper_id if kind == "paper" else LabelRow.post_id
    return session.scalar(select(LabelRow.label).where(column == item_id))


def labelled_items(session: Session) -> list[tuple[StoredItem, str]]:
    """Every user-labelled item with its label."""
    papers = session.execute(select(*_PAPER_COLS, LabelRow.label)
                             .join(LabelRow, LabelRow.paper_id == PaperRow.id))
    posts = session.execute(select(*_POST_COLS, LabelRow.label)
                            .join(LabelRow, LabelRow.post_id == PostRow.id))
    return [(_paper(r), r.label) for r in papers] + [(_post(r), r.label) for r in posts]


def unlabelled_sample(session: Session, limit: int, below: float) -> list[StoredItem]:
    """The most recently stored papers without a user label and with a current score under
    `below` or none (background negatives)."""
    query = (select(*_PAPER_COLS).outerjoin(LabelRow, LabelRow.paper_id == PaperRow.id)
             .where(LabelRow.id.is_(None),
                    or_(PaperRow.score.is_(None), PaperRow.score < below))
             .order_by(PaperRow.first_seen_at.desc(), PaperRow.id).limit(limit))
    return [_paper(r) for r in session.execute(query)]
