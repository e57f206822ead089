"""Digest use cases: preview, send (exactly once per period), list.

    send_digest(app, *, now, dry_run=False, force=False) -> DigestOutcome
        Period = (end of the last sent digest, else the start of a first digest that failed,
        else 7 days before the due time) .. the latest digest
        cron fire time <= now (tracker.config.previous_fire_time); with force, .. now.
        A store's first digest is not sent for a period that ended before the store's first
        fetch run or item (`not_started`); it goes out at the next digest time.

Exactly once: the period is claimed in the ledger (its own committed transaction) before the
SMTP conversation, and recorded as sent, with its items, only after the server accepted the
message. A failed send marks the claim 'failed' and the next run re-claims and retries. A
claim left 'sending' by a sender that died is taken over after [schedule] lock_ttl_seconds:
if that sender died after the server accepted the message but before the ledger was updated,
that one digest goes out twice; we prefer a rare duplicate to a digest silently lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tracker.config import previous_fire_time
from tracker.digest import build
from tracker.pipeline import utcnow
from tracker.store import digests as ledger
from tracker.store import runs
from tracker.store.db import transaction

log = logging.getLogger("tracker.digest")


@dataclass
class DigestOutcome:
    # sent | already_sent | empty_skipped | no_recipients | dry_run | in_progress | not_due
    # | not_started
    status: str
    message: str
    item_count: int = 0


@dataclass
class Prepared:
    subject: str
    rendered: object  # tracker.digest.render.Rendered

    @property
    def digest(self) -> build.Digest:
        return self.rendered.digest


def _due_end(app, now: datetime, force: bool) -> datetime | None:
    if force:
        return now
    schedule = app.config.schedule
    return previous_fire_time(schedule.digest, schedule.timezone, now)


def _before_tracking(session, end: datetime) -> bool:
    """True when the store has no run or item from before `end`: a first digest for such a
    period would report "nothing relevant" about a week nobody watched (a fresh install's
    first `tracker run`)."""
    started = runs.tracking_started(session)
    return started is None or started >= end


def _subject(config, start: datetime, end: datetime) -> str:
    zone = ZoneInfo(config.schedule.timezone)  # the subject format is checked with the config
    return config.digest.subject.format(start=start.astimezone(zone), end=end.astimezone(zone))


def _configured_sources(config) -> list[str]:
    names = ["arxiv"] if config.arxiv.enabled else []
    return names + [feed.name for feed in config.feeds if feed.enabled]


def paper_item(row, why, start: datetime, recent: datetime) -> build.Item:
    # a new version of a paper seen before, or of an older one seen for the first time
    update = row.first_seen_at < start or (row.published is not None and row.published < recent)
    return build.Item(
        kind="paper", id=row.id, title=" ".join(row.title.split()),
        url=f"https://arxiv.org/abs/{row.id}", score=row.score,
        seen_at=row.version_seen_at if update else row.first_seen_at,
        authors=tuple(row.authors or ()), categories=tuple(row.categories or ()),
        why=tuple(why), abstract=row.abstract or "",
        updated_version=row.version if update else None)


def post_item(row, why, refs) -> build.Item:
    # title, author and summary were stored as text (sources/feeds.plain_text); the
    # templates escape them, so a title like "List<String>" shows as written
    return build.Item(
        kind="post", id=f"post:{row.id}", title=" ".join(row.title.split()) or "(untitled)",
        url=row.link, score=row.score, seen_at=row.first_seen_at,
        authors=(row.author,) if row.author else (), why=tuple(why),
        abstract=row.summary_text or "", source=row.feed, refs=tuple(refs),
        published=row.published)


def _prepare(app, session, start: datetime, end: datetime) -> Prepared:
    """Select, group and render the digest of [start, end) (reads only)."""
    from tracker.digest.render import render
    from tracker.scoring.themes import group_by_theme

    config = app.config
    recent = start - build.ARCHIVE_AGE
    paper_rows = ledger.candidate_papers(session, start, end, config.digest.min_score,
                                         config.digest.include_updates, recent)
    post_rows = ledger.candidate_posts(session, start, end, config.digest.min_score, recent)
    why = ledger.latest_why(session, paper_ids=[r.id for r in paper_rows])
    post_why = ledger.latest_why(session, post_ids=[r.id for r in post_rows])
    refs = ledger.paper_refs(session, [r.id for r in post_rows])
    candidates = ([paper_item(r, why.get(r.id, ()), start, recent) for r in paper_rows]
                  + [post_item(r, post_why.get(r.id, ()), refs.get(r.id, ())) for r in post_rows])
    chosen, omitted = build.select(candidates, config.digest.max_items)
    papers = [item for item in chosen if item.kind == "paper"]
    posts = [item for item in chosen if item.kind == "post"]
    themes = group_by_theme([f"{p.title}. {p.abstract}" for p in papers])
    sources = [build.SourceHealth(s.name, s.last_attempt_at, s.last_success_at, s.last_error,
                                  s.consecutive_failures or 0)
               for s in runs.source_health(session)]
    warnings = build.health_warnings(sources, _configured_sources(config), start, end)
    fetched = ledger.seen_count(session, start, end,
                                include_updates=config.digest.include_updates)
    # relevant: entries, as select() counts them (a post several feeds carry is one)
    digest = build.assemble(start, end, papers, posts, themes, fetched=fetched,
                            relevant=len(chosen) + omitted, warnings=warnings, omitted=omitted)
    subject = _subject(config, start, end)
    return Prepared(subject, render(digest, subject=subject, timezone=config.schedule.timezone,
                                    unsubscribe=config.digest.unsubscribe))


def _resume_from(session) -> datetime | None:
    """The end of the last digest sent; before any was sent, the start of a first digest
    that failed, whose items are still unsent."""
    return runs.last_sent_period_end(session) or runs.first_unsent_period_start(session)


def _digested_until(app, session, now: datetime) -> datetime | None:
    """Where the next digest begins (_resume_from); for a store that never tried to send,
    the start of the due period, or for a new store the end of the period it skipped
    (not_started, see send_digest), so that preview, send --force and the first scheduled
    digest all cover the same span."""
    last_end = _resume_from(session)
    if last_end is None:
        fire = _due_end(app, now, force=False)
        if fire:
            return fire if _before_tracking(session, fire) else fire - build.FIRST_PERIOD
    return last_end


def preview(app, *, now: datetime) -> Prepared:
    """The next digest, rendered, without sending or recording anything: the due period if
    it was not sent yet, else everything seen since the last digest up to now."""
    with app.sessions() as session:
        last_end = _digested_until(app, session, now)
        fire = _due_end(app, now, force=False)
        span = build.period(last_end, fire) if fire else None
        if span is None:
            span = build.period(last_end, now) or (now, now)
        return _prepare(app, session, *span)


def send_digest(app, *, now: datetime, dry_run: bool = False, force: bool = False
                ) -> DigestOutcome:
    config = app.config.digest
    # before the ledger is read, so that a send that went out meanwhile (a forced one) is seen
    waited = not dry_run and bool(config.recipients) and _wait_for_a_running_fetch(app, now)
    end = _due_end(app, now, force)
    if end is None:
        return DigestOutcome("not_due", "no digest time in the schedule within the last year")
    if not config.recipients and not dry_run:
        return DigestOutcome("no_recipients", "no digest sent: [digest] recipients is empty")
    with app.sessions() as session:
        last_end = _digested_until(app, session, now) if force else _resume_from(session)
        first_too_early = last_end is None and not force and _before_tracking(session, end)
    if first_too_early:
        from tracker.scheduler import next_fire_times

        first = next_fire_times(app.config, now)["digest"]
        return DigestOutcome("not_started", "no digest yet: this store began after the last "
                             f"digest time ({end:%Y-%m-%d %H:%M} UTC); the first goes out "
                             f"{first:%Y-%m-%d %H:%M} UTC (`tracker digest preview` shows it "
                             "so far, `tracker digest send --force` sends it now)")
    span = build.period(last_end, end)
    if span is None:
        if last_end > end:  # a forced digest went past the scheduled time
            return DigestOutcome("already_sent", f"nothing new to send: digests went out up "
                                 f"to {last_end:%Y-%m-%d %H:%M} UTC, after the last digest "
                                 f"time ({end:%Y-%m-%d %H:%M} UTC)")
        return DigestOutcome("already_sent", f"the digest for the period ending "
                             f"{end:%Y-%m-%d %H:%M} UTC was already sent")
    if dry_run:
        with app.sessions() as session:
            prepared = _prepare(app, session, *span)
        count = len(prepared.digest.items)
        to = ", ".join(config.recipients) or "nobody ([digest] recipients is empty)"
        return DigestOutcome("dry_run", f"would send {prepared.subject!r} with {count} "
                             f"item(s) to {to}; nothing sent or recorded", count)
    # the claim, the Date header and sent_at: after the wait
    return _claim_and_send(app, max(now, utcnow()) if waited else now, *span, force=force)


FETCH_POLL_SECONDS = 5.0
FETCH_WAIT_MAX_SECONDS = 1800.0  # a fetch takes minutes; past this, send without it


def _wait_for_a_running_fetch(app, now: datetime) -> bool:
    """Wait while another process runs a fetch that began by `now` (the `fetch` lease):
    its items carry the time it started, and those it commits after this digest is read
    would fall in a period already sent, so in no digest, ever. A fetch begun later stamps
    its items after `now`: the next period. A holder gone from this machine is not waited
    for. Returns whether it waited."""
    import time

    from tracker.pipeline.cycle import holder_gone

    started, waited = time.monotonic(), False
    while True:
        with app.sessions() as session:
            holders = [lock.holder for lock in runs.live_locks(session, utcnow())
                       if lock.name == "fetch" and lock.acquired_at <= now
                       and not holder_gone(lock.holder)]
        if not holders:
            if waited:
                log.info("digest: the fetch has finished; sending")
            return waited
        if time.monotonic() - started > FETCH_WAIT_MAX_SECONDS:
            log.warning("digest: the fetch of %s is still running after %.0f min; sending "
                        "without what it has not stored yet", holders[0],
                        FETCH_WAIT_MAX_SECONDS / 60)
            return waited
        if not waited:
            log.info("digest: waiting for the running fetch (%s) to finish, so that the "
                     "digest holds what it stores", holders[0])
            waited = True
        time.sleep(FETCH_POLL_SECONDS)


# The claims this process is sending: a worker stopped mid-send fails them (cycle.Runner's
# abandon), so that the next run sends the period rather than wait lock_ttl_seconds.
SENDING: dict[int, datetime] = {}


def _claim_and_send(app, now: datetime, start: datetime, end: datetime, *,
                    force: bool = False) -> DigestOutcome:
    config = app.config
    stale = now - timedelta(seconds=config.schedule.lock_ttl_seconds)
    with transaction(app.sessions) as session:  # committed before any SMTP traffic
        claim = ledger.claim(session, start, end, now, config.digest.recipients, stale)
    if claim.digest_id is None:
        state = "already sent" if claim.status == "sent" else "being sent by another process"
        status = "already_sent" if claim.status == "sent" else "in_progress"
        return DigestOutcome(status, f"the digest for the period ending {end:%Y-%m-%d %H:%M} "
                             f"UTC is {state}")
    SENDING[claim.digest_id] = claim.claimed_at
    try:
        return _send_claimed(app, claim, now, start, end, force=force)
    finally:
        SENDING.pop(claim.digest_id, None)


def _send_claimed(app, claim: ledger.Claim, now: datetime, start: datetime, end: datetime, *,
                  force: bool) -> DigestOutcome:
    config = app.config
    try:
        with app.sessions() as session:
            prepared = _prepare(app, session, start, end)
        digest = prepared.digest
        if digest.empty and force:  # asked for now: an empty note would only be noise
            _record(app, claim, now, None, None)
            return DigestOutcome("empty_skipped", "nothing new since the last digest; no "
                                 "email sent")
        if digest.empty and not config.digest.send_empty:
            _record(app, claim, now, None, None)
            return DigestOutcome("empty_skipped", "nothing relevant this period; no email "
                                 "sent ([digest] send_empty = false)")
        delivery = _deliver(app, prepared, now)
    except BaseException as exc:
        with transaction(app.sessions) as session:
            ledger.mark_failed(session, claim.digest_id, claim.claimed_at,
                               str(exc) or type(exc).__name__)
        raise
    note = _refused_note(delivery.refused)
    _record(app, claim, now, delivery.message_id, digest, note)
    count = len(digest.items)
    return DigestOutcome("sent", f"sent {prepared.subject!r} with {count} item(s) to "
                         f"{len(config.digest.recipients) - len(delivery.refused)} "
                         "recipient(s)" + (f"; {note}" if note else ""), count)


def _deliver(app, prepared: Prepared, now: datetime):
    from tracker.digest.send import build_message, deliver

    config = app.config
    message = build_message(
        subject=prepared.subject, sender=config.digest.sender,
        recipients=config.digest.recipients, text=prepared.rendered.text,
        html=prepared.rendered.html, now=now, list_id=config.digest.list_id,
        unsubscribe=config.digest.unsubscribe)
    return deliver(message, config.digest.recipients, config.smtp, config.smtp_password)


def _refused_note(refused: dict) -> str | None:
    """What the ledger and the outcome say of recipients the server refused (a refusal is
    not retried: the period is sent for everyone else)."""
    from tracker.digest.send import refused_text

    return "the server refused " + refused_text(refused) if refused else None


def _record(app, claim: ledger.Claim, now: datetime, message_id: str | None,
            digest: build.Digest | None, note: str | None = None) -> None:
    """Mark the period sent, with its items in reading order and their section."""
    rows = []
    for section in digest.sections if digest else []:
        for entry in section.entries:
            for item in (entry.item, *entry.related):
                post = item.kind == "post"
                rows.append({"paper_id": None if post else item.id,
                             "post_id": int(item.id.removeprefix("post:")) if post else None,
                             "section": section.title, "score": item.score})
    with transaction(app.sessions) as session:
        if not ledger.mark_sent(session, claim.digest_id, claim.claimed_at, now, message_id,
                                rows, note):
            log.warning("digest %s: claim was taken over while sending; not recorded twice",
                        claim.digest_id)


def list_digests(app, *, limit: int = 20) -> list[dict]:
    with app.sessions() as session:
        return ledger.list_digests(session, limit)

