"""The worker's jobs: each run holds a lease in the database (so two workers never run the
same job at once), is recorded in job_runs (start, end, outcome, counts, error), and logs one
line per event. `run_cycle` is the cron-friendly "fetch, then the digest if one is due".

Time: a run takes a logical `now` (tests pass a controllable clock); recorded times and lease
expiries are `now` plus the real elapsed time, so a run never mixes two clocks.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tracker.config import previous_fire_time
from tracker.errors import TrackerError
from tracker.pipeline import App, utcnow
from tracker.store import digests, runs
from tracker.store.db import describe_error, transaction

log = logging.getLogger("tracker.worker")

PIPELINE = ("fetch", "digest")  # the order jobs run in when run together


@dataclass
class JobResult:
    job: str
    outcome: str  # ok | failed | abandoned | skipped
    counts: dict = field(default_factory=dict)
    error: str | None = None
    run_id: int | None = None
    detail: str | None = None  # a human sentence for the log line (not stored)


def _fetch_job(app: App, now: datetime) -> JobResult:
    from tracker.pipeline.ingest import fetch

    return fetch_result(fetch(app, now=now, progress=False))


def fetch_result(report) -> JobResult:
    """The job record of a fetch (a FetchReport): counts, and which sources failed."""
    failed = {s.name: s.error for s in report.sources if s.error}
    counts = {key: sum(getattr(s, key) for s in report.sources)
              for key in ("fetched", "new", "updated", "errors")}
    counts["sources"] = len(report.sources)
    counts["failed_sources"] = len(failed)  # which ones and why: in `error`
    error = "; ".join(f"{name}: {msg}" for name, msg in failed.items()) or None
    return JobResult("fetch", "failed" if report.all_failed else "ok", counts, error)


def _digest_job(app: App, now: datetime) -> JobResult:
    from tracker.pipeline.digest import send_digest

    outcome = send_digest(app, now=now)
    counts = {"status": outcome.status, "items": outcome.item_count}
    return JobResult("digest", "ok", counts, detail=outcome.message)


JOBS: dict[str, Callable[[App, datetime], JobResult]] = {
    "fetch": _fetch_job, "digest": _digest_job,
}


def _event(level: int, message: str, **fields) -> None:
    log.log(level, message, extra={"fields": fields})


@dataclass
class _Active:
    job: str
    run_id: int
    started: float  # time.monotonic()
    now: datetime
    done: bool = False


class Runner:
    """Runs jobs for one process. Thread-safe: the scheduler runs jobs in a worker thread
    while the main thread may call `abandon` on shutdown."""

    def __init__(self, app: App, jobs: dict | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 renew_seconds: float | None = None) -> None:
        self.app = app
        self.jobs = jobs or JOBS
        self.clock = clock
        # Renew the lease every third of its TTL, so a slow job never loses it.
        self.renew_seconds = renew_seconds or self.ttl.total_seconds() / 3
        self.host = socket.gethostname()
        self.holder = f"{self.host}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        _OWN_HOLDERS.add(self.holder)
        self.stopping = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._guard = threading.Lock()
        self._active: _Active | None = None
        # runs whose end could not be recorded (the store failed just then): closed, and
        # their leases released, before the next job starts and when the worker stops
        self._unrecorded: list[tuple[_Active, JobResult, datetime]] = []

    @property
    def ttl(self) -> timedelta:
        return timedelta(seconds=self.app.config.schedule.lock_ttl_seconds)

    def run_job(self, job: str, now: datetime | None = None) -> JobResult:
        """Run one job under its lease; never raises for a job failure (it is recorded)."""
        started = now or self.clock()
        skipped = self._begin(job, started)
        if skipped:
            _event(logging.INFO, f"{job}: skipped, {skipped}", job=job, event="skipped")
            return JobResult(job, "skipped", error=skipped)
        active = self._active
        renewer = threading.Thread(target=self._renew_loop, args=(active,), daemon=True)
        renewer.start()
        try:
            # the job's clock starts once the lease is held: a digest that waits for a
            # running fetch (pipeline.digest) then sees every item stamped before its period end
            result = self.jobs[job](self.app, now or self.clock())
        except TrackerError as exc:
            result = JobResult(job, "failed", error=str(exc))
        except Exception as exc:  # a bug: record it, keep the worker alive
            log.debug("%s: unexpected error", job, exc_info=True)  # traceback with -v
            result = JobResult(job, "failed", error=describe_error(exc))
        except BaseException:  # KeyboardInterrupt/SystemExit: close the run, then go
            self.abandon("interrupted")
            raise
        result.run_id = active.run_id
        self._end(active, result)
        return result

    def _begin(self, job: str, now: datetime) -> str | None:
        """Take the lease and record the run; or say why the job is skipped."""
        with self._guard:
            if self.stopping.is_set():  # checked under the guard: see request_stop()
                return "worker is stopping"
            self._record_unrecorded()
            with transaction(self.app.sessions) as session:
                holder = None
                if not runs.acquire_lock(session, job, self.holder, now, self.ttl):
                    holder = next((lk.holder for lk in runs.live_locks(session, now)
                                   if lk.name == job), "another worker")
                    # A holder that died on this machine (killed, crashed) would block
                    # the job until its lease expires, hours later: take it over now.
                    if holder_gone(holder) and runs.take_over_lock(
                            session, job, holder, self.holder, now, self.ttl):
                        _event(logging.WARNING, f"{job}: took over the lease of {holder}, "
                               "a process of this machine that is gone", job=job,
                               event="lease_taken_over")
                        holder = None
                if not holder:
                    stale = runs.abandon_running(session, job, now,
                                                 "holder stopped before finishing")
                    run_id = runs.start_run(session, job, now, self.host, os.getpid())
            if holder:
                return f"lock held by {holder}"
            # Only once the lease and the run record are committed.
            self._active = _Active(job, run_id, time.monotonic(), now)
            self._idle.clear()
        if stale:
            _event(logging.WARNING, f"{job}: marked {stale} unfinished earlier run(s) abandoned",
                   job=job, event="abandoned_stale", count=stale)
        _event(logging.INFO, f"{job}: started (run {run_id})", job=job, event="started",
               run_id=run_id)
        return None

    def _elapsed_now(self, active: _Active) -> datetime:
        return active.now + timedelta(seconds=time.monotonic() - active.started)

    def _end(self, active: _Active, result: JobResult) -> None:
        with self._guard:
            if active.done:  # abandoned by a shutdown meanwhile; that record stands
                return
            active.done = True
            finished = self._elapsed_now(active)
            self._unrecorded.append((active, result, finished))
            try:
                self._record_unrecorded()
            finally:
                self._active = None
                self._idle.set()
        seconds = round((finished - active.now).total_seconds(), 1)
        level = logging.INFO if result.outcome == "ok" else logging.ERROR
        message = f"{active.job}: {result.outcome} in {seconds}s{_summary(result.counts)}"
        if result.error or result.detail:
            message += f": {result.error or result.detail}"
        _event(level, message, job=active.job, event="finished", run_id=active.run_id,
               outcome=result.outcome, seconds=seconds, counts=result.counts, error=result.error)

    def _record_unrecorded(self) -> None:
        """Record the end of each run whose end is not recorded yet and release its lease
        (called under the guard). A store that fails again raises, and they wait for the
        next try: a lease left behind would block the job everywhere for lock_ttl_seconds."""
        while self._unrecorded:
            active, result, finished = self._unrecorded[0]
            with transaction(self.app.sessions) as session:
                runs.finish_run(session, active.run_id, finished, result.outcome,
                                result.counts, result.error)
                runs.release_lock(session, active.job, self.holder)
            self._unrecorded.pop(0)

    def record_unrecorded(self) -> None:
        with self._guard:
            self._record_unrecorded()

    def _renew_loop(self, active: _Active) -> None:
        """Extend the lease while the job runs."""
        while not self._idle.wait(self.renew_seconds):
            with self._guard:
                if active.done:
                    return
                with transaction(self.app.sessions) as session:
                    ours = runs.renew_lock(session, active.job, self.holder,
                                           self._elapsed_now(active), self.ttl)
            if not ours:
                _event(logging.WARNING, f"{active.job}: lease lost (expired and taken over)",
                       job=active.job, event="lease_lost")
                return

    def request_stop(self) -> None:
        """From now on no job starts. Under the guard, so that a job is either already
        active (and wait_idle waits for it) or will not start at all."""
        with self._guard:
            self.stopping.set()

    def wait_idle(self, timeout: float) -> bool:
        return self._idle.wait(timeout)

    def abandon(self, reason: str) -> None:
        """Record the running job as abandoned and free its lease (used on shutdown). The
        job's own open transaction dies with the process and rolls back, so nothing is
        half-written: every batch the job committed is complete."""
        with self._guard:
            active = self._active
            if active is None or active.done:
                return
            active.done = True
            try:
                with transaction(self.app.sessions) as session:
                    runs.finish_run(session, active.run_id, self._elapsed_now(active),
                                    "abandoned", error=reason)
                    runs.release_lock(session, active.job, self.holder)
                    if active.job == "digest":  # its claim would hold the period for hours
                        from tracker.pipeline.digest import SENDING

                        for digest_id, claimed_at in list(SENDING.items()):
                            digests.mark_failed(session, digest_id, claimed_at,
                                                f"abandoned ({reason})")
            finally:
                self._active = None
                self._idle.set()
        _event(logging.WARNING, f"{active.job}: abandoned ({reason})", job=active.job,
               event="abandoned", run_id=active.run_id, error=reason)

    def run_sequence(self, jobs: list[str], now: datetime | None = None) -> list[JobResult]:
        """Run jobs in pipeline order (used by --run-now and the start-up catch-up)."""
        return [self.run_job(job, now) for job in PIPELINE if job in jobs]


_OWN_HOLDERS: set[str] = set()  # the holder names of this process's Runners


def holder_gone(holder: str) -> bool:
    """Is `holder` ("host:pid:tag", as Runner.holder) a process of this host that no longer
    runs? Unsure (another host, a pid in use, no permission) means no."""
    parts = holder.split(":")
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        # a container's worker is always pid 1 on the same host: after a crash and restart
        # the dead holder has our pid but another tag
        return holder not in _OWN_HOLDERS
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:  # e.g. PermissionError: it exists, as another user
        return False
    return False


def _summary(counts: dict) -> str:
    parts = [f"{k}={v}" for k, v in counts.items() if v is not None]
    return " (" + ", ".join(parts) + ")" if parts else ""


def digest_due(app: App, now: datetime) -> bool:
    """Is there a scheduled digest fire time <= now that no sent digest covers yet?
    (Never with no [digest] recipients: there is nothing to catch up on. Nor for a store
    that began after that fire time: its first digest goes out at the next one, as
    send_digest decides with `not_started`.)"""
    schedule = app.config.schedule
    fire = previous_fire_time(schedule.digest, schedule.timezone, now)
    if fire is None or not app.config.digest.recipients:
        return False
    with app.sessions() as session:
        last_end = runs.last_sent_period_end(session)
        if last_end is None:
            started = runs.tracking_started(session)
            return started is not None and started < fire
    return last_end < fire


def jobs_behind(app: App, now: datetime) -> list[str]:
    """What a worker that was down must catch up on when it comes back: the digest whenever
    a scheduled one was not sent (send_digest is exactly-once per period, so a duplicate
    trigger sends nothing), and the fetch if its last fire time passed without a run and
    either that is within misfire_grace_seconds or a digest is about to go out."""
    schedule = app.config.schedule
    digest = digest_due(app, now)
    fire = previous_fire_time(schedule.fetch, schedule.timezone, now)
    with app.sessions() as session:
        last = runs.last_run_start(session, "fetch")
    grace = timedelta(seconds=schedule.misfire_grace_seconds)
    fetch = fire is not None and (last is None or last < fire) and (digest or now - fire <= grace)
    return [job for job, behind in (("fetch", fetch), ("digest", digest)) if behind]


def run_cycle(app: App, now: datetime | None = None,
              runner: Runner | None = None) -> list[JobResult]:
    """One cycle for cron/systemd users: fetch (which scores new items), then the digest if
    one is due."""
    runner = runner or Runner(app)
    given = now  # a test's clock; otherwise each job's clock starts once its lease is held
    results = [runner.run_job("fetch", given)]
    if digest_due(app, given or runner.clock()) or _awaiting_first_digest(app):
        # (a new store's digest job says when its first digest goes out: not_started)
        results.append(runner.run_job("digest", given))
    return results


def _awaiting_first_digest(app: App) -> bool:
    if not app.config.digest.recipients:
        return False
    with app.sessions() as session:
        return runs.last_sent_period_end(session) is None
