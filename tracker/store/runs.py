"""SQL for the worker: job run records, the `locks` lease table, and the status queries.

Lease semantics: a lock row names its holder and an expiry. Acquiring is one conditional
UPDATE (take over an expired lease, or extend our own) and, when no row exists, one INSERT
that relies on the primary key: whichever of two racing workers inserts second gets an
IntegrityError, and a concurrent UPDATE re-checks `expires_at` after the other commits (row
lock on PostgreSQL, the single writer on SQLite). So at most one holder ever wins.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.store.schema import (
    DigestRow,
    JobRunRow,
    LabelRow,
    LockRow,
    PaperRow,
    PostRow,
    SourceStateRow,
)

# -- leases ------------------------------------------------------------------------------


def acquire_lock(session: Session, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Take the lease `name` for `holder` until now + ttl; False if someone else holds it."""
    taken = session.execute(
        update(LockRow)
        .where(LockRow.name == name, (LockRow.expires_at < now) | (LockRow.holder == holder))
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken:
        return True
    try:
        with session.begin_nested():
            session.add(LockRow(name=name, holder=holder, acquired_at=now, expires_at=now + ttl))
    except IntegrityError:
        return False  # a live lease exists (or another worker inserted it first)
    return True


def take_over_lock(session: Session, name: str, old: str, holder: str, now: datetime,
                   ttl: timedelta) -> bool:
    """Take the lease `name` from `old` (a holder known to be gone); False if it has
    changed hands meanwhile (another process took it over first)."""
    return bool(session.execute(
        update(LockRow)
        .where(LockRow.name == name, LockRow.holder == old)
        .values(holder=holder, acquired_at=now, expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    ).rowcount)


def renew_lock(session: Session, name: str, holder: str, now: datetime, ttl: timedelta) -> bool:
    """Extend our lease; False if it is no longer ours (it expired and was taken over)."""
    return bool(session.execute(
        update(LockRow)
        .where(LockRow.name == name, LockRow.holder == holder)
        .values(expires_at=now + ttl)
        .execution_options(synchronize_session=False)
    ).rowcount)


def release_lock(session: Session, name: str, holder: str) -> bool:
    return bool(session.execute(
        delete(LockRow).where(LockRow.name == name, LockRow.holder == holder)
        .execution_options(synchronize_session=False)
    ).rowcount)


def live_locks(session: Session, now: datetime) -> list[LockRow]:
    return list(session.scalars(
        select(LockRow).where(LockRow.expires_at >= now).order_by(LockRow.name)))


# -- job runs ----------------------------------------------------------------------------


def start_run(session: Session, job: str, now: datetime, host: str, pid: int) -> int:
    row = JobRunRow(job=job, started_at=now, outcome="running", counts={}, host=host, pid=pid)
    session.add(row)
    session.flush()
    return row.id


def finish_run(session: Session, run_id: int, now: datetime, outcome: str,
               counts: dict | None = None, error: str | None = None) -> None:
    session.execute(
        update(JobRunRow).where(JobRunRow.id == run_id)
        .values(finished_at=now, outcome=outcome, counts=counts or {}, error=error)
        .execution_options(synchronize_session=False)
    )


def abandon_running(session: Session, job: str, now: datetime, reason: str) -> int:
    """Close runs of `job` left 'running' by a holder that died (call while holding the lock)."""
    return session.execute(
        update(JobRunRow).where(JobRunRow.job == job, JobRunRow.outcome == "running")
        .values(outcome="abandoned", finished_at=now, error=reason)
        .execution_options(synchronize_session=False)
    ).rowcount


def last_run_start(session: Session, job: str) -> datetime | None:
    """When the latest finished run of `job` started. A failed run counts (retrying it on
    every restart would hammer a failing source); an abandoned or cut-off one does not, nor
    a fetch of one source (`tracker fetch --source`, its counts name the source)."""
    return session.scalar(select(func.max(JobRunRow.started_at)).where(
        JobRunRow.job == job, JobRunRow.outcome.in_(("ok", "failed")),
        JobRunRow.counts["source"].as_string().is_(None)))


def recent_runs(session: Session, limit: int = 10) -> list[JobRunRow]:
    return list(session.scalars(
        select(JobRunRow).order_by(JobRunRow.started_at.desc(), JobRunRow.id.desc()).limit(limit)))


def last_runs_by_job(session: Session) -> dict[str, JobRunRow]:
    latest = (select(JobRunRow.job, func.max(JobRunRow.id).label("id"))
              .group_by(JobRunRow.job).subquery())
    rows = session.scalars(select(JobRunRow).join(latest, JobRunRow.id == latest.c.id))
    return {row.job: row for row in rows}


# -- digests and status ------------------------------------------------------------------


def last_sent_period_end(session: Session) -> datetime | None:
    return session.scalar(
        select(func.max(DigestRow.period_end)).where(DigestRow.status == "sent"))


def first_unsent_period_start(session: Session) -> datetime | None:
    """The start of the earliest period claimed but never sent (failed, or still sending)."""
    return session.scalar(
        select(func.min(DigestRow.period_start)).where(DigestRow.status != "sent"))


def tracking_started(session: Session) -> datetime | None:
    """When this store began watching: its first job run or first stored item."""
    firsts = [session.scalar(select(func.min(column))) for column in
              (JobRunRow.started_at, PaperRow.first_seen_at, PostRow.first_seen_at)]
    return min((first for first in firsts if first is not None), default=None)


def last_digest(session: Session) -> DigestRow | None:
    return session.scalars(
        select(DigestRow).order_by(DigestRow.period_end.desc()).limit(1)).first()


def store_counts(session: Session) -> dict[str, int]:
    def count(stmt) -> int:
        return int(session.scalar(stmt) or 0)

    papers = count(select(func.count()).select_from(PaperRow))
    posts = count(select(func.count()).select_from(PostRow))
    scored = (count(select(func.count()).select_from(PaperRow).where(PaperRow.score.is_not(None)))
              + count(select(func.count()).select_from(PostRow).where(PostRow.score.is_not(None))))
    labelled = count(select(func.count()).select_from(LabelRow))
    return {"papers": papers, "posts": posts, "scored": scored, "labelled": labelled}


def source_health(session: Session) -> list[SourceStateRow]:
    return list(session.scalars(select(SourceStateRow).order_by(SourceStateRow.name)))
