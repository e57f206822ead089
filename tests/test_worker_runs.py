"""Job runs: recorded with a controllable clock, failures recorded without killing the
worker, leases respected, stale runs of a crashed holder closed, shutdown abandonment, and
the catch-up decision for a worker that was down."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from tracker.errors import SourceError
from tracker.pipeline import App
from tracker.pipeline.cycle import JobResult, Runner, digest_due, jobs_behind
from tracker.store import runs
from tracker.store.db import transaction
from tracker.store.schema import DigestRow, JobRunRow, LockRow

MONDAY_9 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # digest "0 8 * * mon" fired at 08:00
TTL = timedelta(hours=3)


def _runs(app) -> list[JobRunRow]:
    with app.sessions() as session:
        return list(session.scalars(select(JobRunRow).order_by(JobRunRow.id)))


def _locks(app) -> list[LockRow]:
    with app.sessions() as session:
        return list(session.scalars(select(LockRow)))


def test_a_run_is_recorded_at_the_given_time_and_releases_its_lease(app):
    seen = []

    def job(app_, now):
        seen.append(now)
        assert [lk.name for lk in _locks(app_)] == ["fetch"]  # held while running
        return JobResult("fetch", "ok", {"fetched": 3, "new": 2})

    result = Runner(app, jobs={"fetch": job}).run_job("fetch", MONDAY_9)
    assert seen == [MONDAY_9] and result.outcome == "ok"
    [row] = _runs(app)
    assert (row.job, row.outcome, row.counts, row.error) == ("fetch", "ok",
                                                             {"fetched": 3, "new": 2}, None)
    assert row.started_at == MONDAY_9 and MONDAY_9 <= row.finished_at < MONDAY_9 + TTL
    assert row.id == result.run_id and row.pid and row.host
    assert _locks(app) == []


def test_a_failing_job_is_recorded_and_the_runner_goes_on(app):
    def broken(app_, now):
        raise SourceError("arXiv API: HTTP 503", hint="try later")

    def crashing(app_, now):
        raise ZeroDivisionError("bug")

    runner = Runner(app, jobs={"fetch": broken, "digest": crashing})
    assert runner.run_job("fetch", MONDAY_9).outcome == "failed"
    assert runner.run_job("digest", MONDAY_9).outcome == "failed"
    first, second = _runs(app)
    assert first.outcome == "failed" and "HTTP 503" in first.error
    assert second.outcome == "failed" and second.error == "ZeroDivisionError: bug"
    assert _locks(app) == []


def test_a_job_held_by_a_live_worker_is_skipped_without_a_run(app):
    with transaction(app.sessions) as session:
        assert runs.acquire_lock(session, "digest", "other-host:1:x", MONDAY_9, TTL)
    calls = []
    runner = Runner(app, jobs={"digest": lambda a, n: calls.append(n) or JobResult("digest", "ok")})
    result = runner.run_job("digest", MONDAY_9 + timedelta(minutes=1))
    assert result.outcome == "skipped" and calls == [] and _runs(app) == []
    assert result.error == "lock held by other-host:1:x"


def test_a_crashed_holder_blocks_only_until_its_lease_expires(app):
    # A worker that died mid-run: its run row says 'running' and its lease is still there.
    with transaction(app.sessions) as session:
        assert runs.acquire_lock(session, "fetch", "dead:1:x", MONDAY_9 - TTL - TTL, TTL)
        runs.start_run(session, "fetch", MONDAY_9 - TTL - TTL, "dead", 1)
    runner = Runner(app, jobs={"fetch": lambda a, n: JobResult("fetch", "ok")})
    assert runner.run_job("fetch", MONDAY_9).outcome == "ok"
    dead, mine = _runs(app)
    assert dead.outcome == "abandoned" and "stopped before finishing" in dead.error
    assert mine.outcome == "ok"


def test_abandon_during_a_run_records_it_and_frees_the_lease(app):
    started, release = threading.Event(), threading.Event()

    def slow(app_, now):
        started.set()
        release.wait(30)
        return JobResult("fetch", "ok", {"fetched": 1})

    runner = Runner(app, jobs={"fetch": slow})
    thread = threading.Thread(target=runner.run_job, args=("fetch", MONDAY_9))
    thread.start()
    assert started.wait(30)
    assert not runner.wait_idle(0.05)
    runner.abandon("worker stopped by SIGTERM")
    assert runner.wait_idle(0) and _locks(app) == []
    release.set()
    thread.join(30)
    [row] = _runs(app)  # the job finishing later does not overwrite the abandoned record
    assert row.outcome == "abandoned" and row.error == "worker stopped by SIGTERM"
    runner.stopping.set()
    assert runner.run_job("fetch", MONDAY_9).outcome == "skipped" and len(_runs(app)) == 1


def _sent_digest(app, period_end):
    with transaction(app.sessions) as session:
        session.add(DigestRow(period_start=period_end - timedelta(days=7), period_end=period_end,
                              status="sent", recipients=["a@example.org"],
                              created_at=period_end, sent_at=period_end))


def _fetch_run(app, at, outcome="ok"):
    with transaction(app.sessions) as session:
        run_id = runs.start_run(session, "fetch", at, "h", 1)
        runs.finish_run(session, run_id, at + timedelta(minutes=1), outcome)


@pytest.fixture
def team_app(make_config):
    app = App(make_config({"digest": {"recipients": ["team@example.org"]}}))
    yield app
    app.close()


def test_no_digest_is_due_without_recipients(app):
    assert not digest_due(app, MONDAY_9)
    assert jobs_behind(app, MONDAY_9 + timedelta(hours=21, minutes=30)) == ["fetch"]


def test_a_store_begun_after_the_digest_time_is_not_behind_on_it(team_app):
    """The worker would otherwise run a digest job after every fetch until the first
    digest time, each one ending `not_started`."""
    _fetch_run(team_app, MONDAY_9)  # began after Monday's 08:00 digest time
    assert not digest_due(team_app, MONDAY_9 + timedelta(hours=3))
    assert jobs_behind(team_app, MONDAY_9 + timedelta(days=1)) == ["fetch"]
    assert digest_due(team_app, MONDAY_9 + timedelta(days=7))  # next Monday's is


def test_catch_up_after_downtime(team_app):
    app = team_app
    monday_8 = MONDAY_9 - timedelta(hours=1)
    # A new store: the fetch is behind; the digest is not (a store that began after the
    # digest time sends its first one at the next: send_digest's `not_started`).
    assert jobs_behind(app, MONDAY_9) == ["fetch"]
    _fetch_run(app, MONDAY_9 - timedelta(hours=3), "abandoned")  # cut off: does not count
    assert jobs_behind(app, MONDAY_9) == ["fetch", "digest"]  # but the store began before 8
    _fetch_run(app, MONDAY_9 - timedelta(hours=3), "failed")  # 06:00 fetch ran
    assert jobs_behind(app, MONDAY_9) == ["digest"]
    _sent_digest(app, monday_8 - timedelta(days=7))  # last week's digest is not enough
    assert digest_due(app, MONDAY_9)
    _sent_digest(app, monday_8)
    assert not digest_due(app, MONDAY_9) and jobs_behind(app, MONDAY_9) == []
    # Tuesday: the 06:00 fetch was missed; caught up within the grace time only.
    assert jobs_behind(app, MONDAY_9 + timedelta(hours=22)) == ["fetch"]
    assert jobs_behind(app, MONDAY_9 + timedelta(hours=22 + 6)) == []
    # A week later the digest is due again and pulls the missed fetch in with it.
    assert jobs_behind(app, MONDAY_9 + timedelta(days=7, hours=6)) == ["fetch", "digest"]


def test_catch_up_respects_the_zone(make_config):
    app = App(make_config({"schedule": {"timezone": "America/New_York"},
                           "digest": {"recipients": ["team@example.org"]}}))
    try:
        # 08:00 Monday in New York is 13:00 UTC: at 12:00 UTC that digest has not fired yet.
        _sent_digest(app, datetime(2026, 2, 23, 13, 0, tzinfo=UTC))
        assert not digest_due(app, datetime(2026, 3, 2, 12, 0, tzinfo=UTC))
        assert digest_due(app, datetime(2026, 3, 2, 13, 1, tzinfo=UTC))
    finally:
        app.close()


def test_the_lease_is_renewed_while_a_long_job_runs(app):
    expiries = []

    def long_job(app_, now):
        for _ in range(400):  # up to 20 s, for a loaded machine
            [lock] = _locks(app_)
            if expiries and lock.expires_at > expiries[0]:
                return JobResult("fetch", "ok")
            expiries.append(lock.expires_at)
            threading.Event().wait(0.05)
        return JobResult("fetch", "failed", error="lease never renewed")

    result = Runner(app, jobs={"fetch": long_job}, renew_seconds=0.05).run_job("fetch", MONDAY_9)
    assert result.outcome == "ok", result.error
    assert expiries[0] == MONDAY_9 + TTL and _locks(app) == []


def _serve_until(worker, started: threading.Event, run_now=True) -> bool:
    """Run worker.serve in this thread; ask it to stop once `started` is set."""
    def stop_when_started():
        started.wait(30)
        worker.stop_reason = "SIGTERM"
        worker.stop.set()

    threading.Thread(target=stop_when_started, daemon=True).start()
    return worker.serve(run_now=run_now)


def test_stop_lets_a_short_job_finish_and_starts_nothing_new(app):
    from tracker.scheduler import Worker

    started = threading.Event()

    def fetch(app_, now):
        started.set()
        assert runner.stopping.wait(30)  # still running when the stop arrives
        return JobResult("fetch", "ok", {"fetched": 1})

    digest_calls = []
    runner = Runner(app, jobs={"fetch": fetch,
                               "digest": lambda a, n: digest_calls.append(n) or JobResult(
                                   "digest", "ok")})
    assert _serve_until(Worker(runner, stop_grace=30), started) is True
    assert [(r.job, r.outcome) for r in _runs(app)] == [("fetch", "ok")]
    assert digest_calls == [] and _locks(app) == []


def test_stop_abandons_a_job_that_does_not_finish_in_time(app):
    from tracker.scheduler import Worker

    started, release = threading.Event(), threading.Event()

    def stuck(app_, now):
        started.set()
        release.wait(30)
        return JobResult("fetch", "ok")

    runner = Runner(app, jobs={"fetch": stuck})
    try:
        assert _serve_until(Worker(runner, stop_grace=0.2), started) is False
        [row] = _runs(app)
        assert row.outcome == "abandoned" and row.error == "worker stopped by SIGTERM"
        assert _locks(app) == []
    finally:
        release.set()


def test_a_run_whose_end_the_store_missed_is_closed_before_the_next_job(app, monkeypatch):
    """A store blip just as a job ends must not leave its lease held for lock_ttl_seconds
    (every fetch refused meanwhile): the end is recorded before the next job starts."""
    from sqlalchemy.exc import OperationalError

    finish = runs.finish_run
    blips = [OperationalError("UPDATE job_runs", {}, Exception("server closed the connection"))]

    def blipping(*args, **kwargs):
        if blips:
            raise blips.pop()
        return finish(*args, **kwargs)

    monkeypatch.setattr(runs, "finish_run", blipping)
    runner = Runner(app, jobs={"fetch": lambda app_, now: JobResult("fetch", "ok"),
                               "digest": lambda app_, now: JobResult("digest", "ok")})
    with pytest.raises(OperationalError):
        runner.run_job("fetch", MONDAY_9)
    assert [lk.name for lk in _locks(app)] == ["fetch"]  # held: its release was not committed

    assert runner.run_job("digest", MONDAY_9 + timedelta(minutes=5)).outcome == "ok"
    assert [(r.job, r.outcome) for r in _runs(app)] == [("fetch", "ok"), ("digest", "ok")]
    assert _locks(app) == []
    assert runner.run_job("fetch", MONDAY_9 + timedelta(minutes=10)).outcome == "ok"


def test_a_cron_fire_during_the_start_up_run_does_not_run_the_job_twice(app):
    """APScheduler queues a cron fire behind the start-up run (one executor thread):
    that queued run has nothing left to do. The next fire runs as usual."""
    from tracker.scheduler import Worker

    clock = [MONDAY_9.replace(hour=5, minute=58)]  # the 06:00 fetch fires during start-up
    calls = []

    def fetch(app_, now):
        calls.append(now)
        clock[0] += timedelta(minutes=4)  # a 4-minute fetch
        return JobResult("fetch", "ok")

    worker = Worker(Runner(app, jobs={"fetch": fetch}, clock=lambda: clock[0]))
    worker._startup(["fetch"], "missed while the worker was down")
    worker.run_scheduled("fetch")  # the 06:00 fire, queued until the start-up run ended
    assert len(calls) == 1
    clock[0] += timedelta(days=1)  # the next 06:00 fire
    worker.run_scheduled("fetch")
    assert len(calls) == 2
    assert [r.job for r in _runs(app)] == ["fetch", "fetch"]


def test_a_database_error_is_one_line_in_the_run_record_and_the_log(app, caplog):
    """SQLAlchemy's message adds a line ("Background on this error at: ...") and, for a
    statement, its SQL and parameters: a log event must stay one line, with no data."""
    from sqlalchemy.exc import OperationalError

    from tracker.scheduler import Worker

    error = OperationalError("SELECT * FROM papers WHERE id = ?", ("2401.00001",),
                             Exception("terminating connection due to administrator command"))
    assert "\n" in str(error)

    def lost(app_, now):
        raise error

    runner = Runner(app, jobs={"fetch": lost})
    assert runner.run_job("fetch", MONDAY_9).outcome == "failed"
    [run] = _runs(app)
    assert run.error == "database error: terminating connection due to administrator command"

    def unreachable(job, now=None):
        raise error

    runner.run_job = unreachable
    Worker(runner)._run("fetch")
    [record] = [r for r in caplog.records if "could not run" in r.getMessage()]
    assert record.getMessage() == ("fetch: could not run: database error: terminating "
                                   "connection due to administrator command")


def test_a_digest_abandoned_mid_send_frees_its_period_for_the_next_run(make_config):
    """Stopped while the SMTP server did not answer: the claim stayed 'sending', so the
    next worker took the period for "being sent by another process" for lock_ttl (3 h).
    Only this process's claim is freed: another sender's stays as it is."""
    import socket

    from tests.conftest import watched_since
    from tracker.pipeline import digest as digest_use_case
    from tracker.store import digests

    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never greets
    app = App(make_config({
        "digest": {"recipients": ["team@example.org"]},
        "smtp": {"host": "127.0.0.1", "port": silent.getsockname()[1], "security": "none",
                 "timeout_seconds": 5}}))
    watched_since(app, MONDAY_9 - timedelta(days=10))
    # a claim of another sender, left 'sending' 4 h ago (past lock_ttl: no longer in the way)
    other_end = MONDAY_9 - timedelta(days=30)
    with transaction(app.sessions) as session:
        digests.claim(session, other_end - timedelta(days=7), other_end,
                      MONDAY_9 - timedelta(hours=4), ["a@example.org"], MONDAY_9)
    runner = Runner(app)
    thread = threading.Thread(target=runner.run_job, args=("digest", MONDAY_9))
    thread.start()
    for _ in range(300):  # until it has claimed its period and is talking to the server
        if digest_use_case.SENDING:
            break
        threading.Event().wait(0.01)
    assert digest_use_case.SENDING
    runner.abandon("worker stopped by SIGTERM")
    with app.sessions() as session:
        rows = {row.period_end: row for row in session.scalars(select(DigestRow))}
    mine = rows[MONDAY_9.replace(hour=8)]
    assert (mine.status, mine.error) == ("failed", "abandoned (worker stopped by SIGTERM)")
    assert rows[other_end].status == "sending"
    thread.join(30)
    silent.close()
    app.close()
