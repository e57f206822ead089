"""SQL for the digest: candidate items of a period, the send ledger (digests, digest_items)
and the list of past digests. Callers pass a Session and commit.

The ledger makes sending exactly-once: a period is claimed by inserting its row (unique
period_end) with status 'sending' and committing before any SMTP traffic; the row becomes
'sent' (with its items) only after the server accepted the message, or 'failed' otherwise.
A 'failed' row, or a 'sending' row older than the stale limit (a sender that died), can be
re-claimed with a compare-and-set update, so two senders never both own a period.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from tracker.store import chunks
from tracker.store.schema import (
    DigestItemRow,
    DigestRow,
    LabelRow,
    PaperRow,
    PostRefRow,
    PostRow,
    ScoreRow,
)


@dataclass
class Claim:
    digest_id: int | None  # set when this caller now owns the period
    claimed_at: datetime | None
    status: str  # 'claimed', or the status of the row someone else holds: sent | sending


def _sent_paper_ids():
    return (select(DigestItemRow.paper_id).join(DigestRow, DigestRow.id == DigestItemRow.digest_id)
            .where(DigestRow.status == "sent", DigestItemRow.paper_id.is_not(None)))


def candidate_papers(session: Session, start: datetime, end: datetime, min_score: float | None,
                     include_updates: bool, recent: datetime, *,
                     unsent_only: bool = True) -> list[PaperRow]:
    """Papers first seen in [start, end), published from `recent` on (or undated), scoring
    >= min_score or labelled relevant, and not labelled irrelevant (any score and label,
    when it is None) and never sent (unless not
    `unsent_only`); with include_updates also older papers (seen before, or published
    before `recent`) whose new version, dated from `recent` on, was seen in the period.
    (A backfill stores old papers with old versions: neither kind.)"""
    new = and_(PaperRow.first_seen_at >= start, PaperRow.first_seen_at < end,
               or_(PaperRow.published.is_(None), PaperRow.published >= recent))
    if unsent_only:
        new = and_(new, PaperRow.id.not_in(_sent_paper_ids()))
    wanted = new
    if include_updates:
        updated = and_(or_(PaperRow.first_seen_at < start, PaperRow.published < recent),
                       PaperRow.version_seen_at >= start, PaperRow.version_seen_at < end,
                       or_(PaperRow.updated.is_(None), PaperRow.updated >= recent))
        wanted = or_(new, updated)
    if min_score is not None:
        wanted = and_(wanted, _scored_or_labelled(PaperRow, LabelRow.paper_id, min_score))
    return list(session.scalars(select(PaperRow).where(wanted)))


def _scored_or_labelled(item, owner, min_score: float):
    """The user's label decides over the score: an item labelled relevant is in whatever
    its score, one labelled irrelevant is never in."""
    def labelled(label):
        return exists().where(owner == item.id, LabelRow.label == label)
    return or_(and_(item.score >= min_score, ~labelled("irrelevant")), labelled("relevant"))


def candidate_posts(session: Session, start: datetime, end: datetime, min_score: float | None,
                    recent: datetime) -> list[PostRow]:
    """Posts first seen in [start, end), undated or dated from `recent` on, scoring >=
    min_score or labelled relevant, and not labelled irrelevant (any, when it is None)."""
    wanted = and_(PostRow.first_seen_at >= start, PostRow.first_seen_at < end,
                  or_(PostRow.published.is_(None), PostRow.published >= recent))
    if min_score is not None:
        wanted = and_(wanted, _scored_or_labelled(PostRow, LabelRow.post_id, min_score))
    return list(session.scalars(select(PostRow).where(wanted)))


def latest_why(session: Session, *, paper_ids=(), post_ids=()) -> dict:
    """The `why` of each item's latest score row: {paper id or post id: [str, ...]}."""
    result: dict = {}
    for column, ids in ((ScoreRow.paper_id, list(paper_ids)), (ScoreRow.post_id, list(post_ids))):
        for chunk in chunks(ids):
            latest = (select(func.max(ScoreRow.id)).where(column.in_(chunk))
                      .group_by(column).scalar_subquery())
            for key, why in session.execute(select(column, ScoreRow.why)
                                            .where(ScoreRow.id.in_(latest))):
                result[key] = list(why or [])
    return result


def paper_refs(session: Session, post_ids) -> dict[int, list[str]]:
    """The arXiv ids each post cites: by id, or by the DOI of a stored paper (DOI refs
    are stored lower-case; a paper's DOI as arXiv gives it)."""
    refs: dict[int, set[str]] = {}
    for chunk in chunks(list(post_ids)):
        by_id = select(PostRefRow.post_id, PostRefRow.value).where(
            PostRefRow.post_id.in_(chunk), PostRefRow.kind == "arxiv")
        by_doi = select(PostRefRow.post_id, PaperRow.id).join(
            PaperRow, func.lower(PaperRow.doi) == PostRefRow.value).where(
            PostRefRow.post_id.in_(chunk), PostRefRow.kind == "doi")
        for query in (by_id, by_doi):
            for post_id, value in session.execute(query):
                refs.setdefault(post_id, set()).add(value)
    return {post_id: sorted(values) for post_id, values in refs.items()}


def seen_count(session: Session, start: datetime, end: datetime, *,
               include_updates: bool = False) -> int:
    """Papers and posts first seen in [start, end); with include_updates also the older
    papers whose new version was seen then (the digest's candidates count the same way)."""
    seen = and_(PaperRow.first_seen_at >= start, PaperRow.first_seen_at < end)
    if include_updates:
        seen = or_(seen, and_(PaperRow.version_seen_at >= start, PaperRow.version_seen_at < end))
    papers = session.scalar(select(func.count()).select_from(PaperRow).where(seen))
    posts = session.scalar(select(func.count()).select_from(PostRow).where(
        PostRow.first_seen_at >= start, PostRow.first_seen_at < end))
    return int(papers or 0) + int(posts or 0)


# -- the ledger ------------------------------------------------------------------------

CLAIM_LOCK = 0x7472_6163_6B65_72  # PostgreSQL advisory lock key of digest claims


def claim(session: Session, start: datetime, end: datetime, now: datetime,
          recipients: list[str], stale_before: datetime) -> Claim:
    """Claim the period ending at `end` for sending. Succeeds when no row exists, or the
    row is 'failed', or it is 'sending' but was claimed before `stale_before`."""
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as upsert

        # Claims queue here until the claiming transaction ends (SQLite's write lock does
        # this there): under read committed, two claims for different periods would
        # each pass the check below before either row is committed.
        session.execute(select(func.pg_advisory_xact_lock(CLAIM_LOCK)))
    else:
        from sqlalchemy.dialects.sqlite import insert as upsert
    # one send at a time: another period being sent may overlap this one (a forced send
    # beside a scheduled one), and each would read the other's items as unsent
    busy = session.scalar(select(DigestRow.status).where(
        DigestRow.status == "sending", DigestRow.period_end != end,
        DigestRow.created_at >= stale_before).limit(1))
    if busy is not None:
        return Claim(None, None, "sending")
    values = {"period_start": start, "period_end": end, "status": "sending",
              "recipients": list(recipients), "created_at": now}
    new_id = session.execute(upsert(DigestRow).values(**values)
                             .on_conflict_do_nothing(index_elements=["period_end"])
                             .returning(DigestRow.id)).scalar()
    if new_id is not None:
        return Claim(new_id, now, "claimed")
    row = session.execute(select(DigestRow.id, DigestRow.status, DigestRow.created_at)
                          .where(DigestRow.period_end == end)).one()
    takeable = row.status == "failed" or (row.status == "sending"
                                          and row.created_at < stale_before)
    if not takeable:
        return Claim(None, None, row.status)
    taken = session.execute(
        update(DigestRow)
        .where(DigestRow.id == row.id, DigestRow.status == row.status,
               DigestRow.created_at == row.created_at)
        .values(status="sending", created_at=now, period_start=start, error=None,
                recipients=list(recipients), message_id=None, sent_at=None)
        .execution_options(synchronize_session=False)).rowcount
    return Claim(row.id, now, "claimed") if taken == 1 else Claim(None, None, "sending")


def _owned(digest_id: int, claimed_at: datetime):
    return and_(DigestRow.id == digest_id, DigestRow.status == "sending",
                DigestRow.created_at == claimed_at)


def mark_sent(session: Session, digest_id: int, claimed_at: datetime, now: datetime,
              message_id: str | None, items: list[dict], error: str | None = None) -> bool:
    """Record the period as sent with its items (dicts with paper_id/post_id, section, score,
    in order). False if the claim was lost meanwhile (then nothing is written)."""
    done = session.execute(
        update(DigestRow).where(_owned(digest_id, claimed_at))
        .values(status="sent", sent_at=now, message_id=message_id, error=error)
        .execution_options(synchronize_session=False)).rowcount
    if done != 1:
        return False
    if items:
        session.execute(insert(DigestItemRow), [
            {"digest_id": digest_id, "position": position, "paper_id": item.get("paper_id"),
             "post_id": item.get("post_id"), "section": item["section"], "score": item["score"]}
            for position, item in enumerate(items, 1)])
    return True


def mark_failed(session: Session, digest_id: int, claimed_at: datetime, error: str) -> bool:
    return session.execute(
        update(DigestRow).where(_owned(digest_id, claimed_at))
        .values(status="failed", error=error[:2000])
        .execution_options(synchronize_session=False)).rowcount == 1


def reported_status(row: DigestRow) -> str:
    """The ledger's status as users read it: a period closed without an email (nothing to
    send, with send_empty = false or a forced send) is "sent" in the ledger, so that it is
    not retried, and "skipped" to them."""
    return "skipped" if row.status == "sent" and row.message_id is None else row.status


def list_digests(session: Session, limit: int) -> list[dict]:
    counts = (select(DigestItemRow.digest_id, func.count().label("n_items"))
              .group_by(DigestItemRow.digest_id).subquery())
    rows = session.execute(
        select(DigestRow, func.coalesce(counts.c.n_items, 0))
        .outerjoin(counts, counts.c.digest_id == DigestRow.id)
        .order_by(DigestRow.period_end.desc()).limit(limit)).all()
    return [{"id": row.id, "period_start": row.period_start, "period_end": row.period_end,
             "status": reported_status(row), "items": int(items),
             "recipients": list(row.recipients or []), "message_id": row.message_id,
             "claimed_at": row.created_at, "sent_at": row.sent_at, "error": row.error}
            for row, items in rows]


def sent_items(session: Session, digest_id: int) -> list[DigestItemRow]:
    return list(session.scalars(select(DigestItemRow).where(DigestItemRow.digest_id == digest_id)
                                .order_by(DigestItemRow.position)))
