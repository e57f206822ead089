"""The `locks` lease table on SQLite and PostgreSQL: exclusive, renewable, releasable, and
a crashed holder stops blocking once its lease expires; racing acquirers get one winner."""

import threading
from datetime import UTC, datetime, timedelta

from tracker.store import db, runs
from tracker.store.db import transaction

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
TTL = timedelta(minutes=10)


def _acquire(factory, holder, now, name="digest"):
    with transaction(factory) as session:
        return runs.acquire_lock(session, name, holder, now, TTL)


def test_lease_is_exclusive_until_released_or_expired(app):
    factory = app.sessions
    assert _acquire(factory, "a", T0)
    assert not _acquire(factory, "b", T0 + timedelta(minutes=5))
    assert _acquire(factory, "a", T0 + timedelta(minutes=5))  # the holder may re-take it
    assert _acquire(factory, "b", T0, name="fetch")  # other names are independent
    with transaction(factory) as session:
        assert runs.renew_lock(session, "digest", "a", T0 + timedelta(minutes=9), TTL)
        assert not runs.renew_lock(session, "digest", "b", T0 + timedelta(minutes=9), TTL)
    # renewed at +9 min: still held at +15 min, expired at +20 min
    assert not _acquire(factory, "b", T0 + timedelta(minutes=15))
    assert _acquire(factory, "b", T0 + timedelta(minutes=20))
    with transaction(factory) as session:
        assert not runs.release_lock(session, "digest", "a")  # no longer a's to release
        assert not runs.renew_lock(session, "digest", "a", T0 + timedelta(minutes=21), TTL)
        assert runs.release_lock(session, "digest", "b")
    assert _acquire(factory, "a", T0 + timedelta(minutes=21))


def test_live_locks_lists_only_unexpired(app):
    assert _acquire(app.sessions, "a", T0)
    assert _acquire(app.sessions, "a", T0 - timedelta(hours=1), name="fetch")
    with app.sessions() as session:
        assert [lk.name for lk in runs.live_locks(session, T0 + timedelta(minutes=1))] == [
            "digest"]


def _race(db_url, now, contenders=6):
    """Each contender has its own engine (like separate processes) and starts together."""
    engines = [db.make_engine(db_url) for _ in range(contenders)]
    barrier = threading.Barrier(contenders)
    wins, errors = [], []

    def contend(i):
        factory = db.session_factory(engines[i])
        barrier.wait()
        try:
            if _acquire(factory, f"w{i}", now):
                wins.append(i)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    assert errors == []
    return wins


def test_racing_acquirers_get_exactly_one_winner(app, db_url):
    app.sessions  # noqa: B018 -- create the schema first
    for round_ in range(3):
        assert len(_race(db_url, T0 + timedelta(hours=round_))) == 1


def test_racing_takeover_of_an_expired_lease_has_one_winner(app, db_url):
    assert _acquire(app.sessions, "crashed", T0 - timedelta(hours=2))
    wins = _race(db_url, T0)
    assert len(wins) == 1
    with app.sessions() as session:
        holders = [lk.holder for lk in runs.live_locks(session, T0)]
    assert holders == [f"w{wins[0]}"]


def test_a_lease_of_a_gone_local_process_is_taken_over_a_live_one_is_not(app):
    import os
    import socket
    import subprocess
    import sys

    from tracker.pipeline.cycle import JobResult, Runner, holder_gone
    from tracker.pipeline.status import collect, render_table
    from tracker.scheduler import next_fire_times

    def report() -> dict:
        return collect(app, next_fire_times(app.config, datetime.now(UTC)))

    def status() -> str:
        return render_table(report())

    def fetch_outcome() -> str:
        [job] = [job for job in report()["jobs"] if job["job"] == "fetch"]
        return job["last_run"]["outcome"]

    ran = []
    runner = Runner(app, jobs={"fetch": lambda a, now: ran.append(now) or JobResult("fetch", "ok")})
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = f"{socket.gethostname()}:{other.pid}:feedbeef"
        assert _acquire(app.sessions, holder, datetime.now(UTC), name="fetch")
        with transaction(app.sessions) as session:
            runs.start_run(session, "fetch", datetime.now(UTC), socket.gethostname(), other.pid)
        assert fetch_outcome() == "running"
        skipped = runner.run_job("fetch")  # alive on this machine: respected
        assert skipped.outcome == "skipped" and holder in skipped.error and not ran
        assert "running now: fetch on " + holder in status()
    finally:
        other.kill()
        other.wait()
    # a pid that is gone here says nothing about a process of another machine
    assert not holder_gone(f"another-host:{other.pid}:feedbeef")
    # our own pid with another tag: a dead holder before a restart (pid 1 in a container)
    assert holder_gone(f"{socket.gethostname()}:{os.getpid()}:deadbeef")
    assert not holder_gone(runner.holder)
    shown = status()  # not "running now" for hours
    assert "running now" not in shown and f"lease of {holder}, a process of this machine " \
        "that is gone" in shown
    assert fetch_outcome() == "abandoned"  # its record says running until the next run
    result = runner.run_job("fetch")  # gone now: taken over at once, not after the TTL
    assert result.outcome == "ok" and len(ran) == 1
    with app.sessions() as session:
        assert runs.live_locks(session, datetime.now(UTC)) == []  # released after the run
