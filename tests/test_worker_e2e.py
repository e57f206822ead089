"""End to end with the real fetch and digest: the fake arXiv API and a blog feed on the local
HTTP server, a real SMTP server (aiosmtpd), real SQLite and PostgreSQL.

- one cycle with a controllable clock; `tracker run` from the command line
- a digest missed while no worker ran is sent once when the worker comes back
- two workers on one database send one digest
"""

from __future__ import annotations

import json
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.arxiv_fake import FakeArxiv, make_entries
from tests.conftest import watched_since
from tests.localserver import Reply
from tests.smtpd import SmtpServer
from tests.test_worker_process import (
    WorkerProcess,
    job_runs,
    open_app,
    wait_for,
    write_config,
)
from tracker.cli import cli
from tracker.pipeline import App, utcnow
from tracker.pipeline.cycle import jobs_behind, run_cycle
from tracker.store.schema import DigestRow, PaperRow, PostRow

RSS = (Path(__file__).parent / "data" / "feeds" / "neuro_rss.xml").read_bytes()
MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)  # the "0 8 * * mon" digest fired at 08:00
TEAM = ["team@example.org", "lab@example.org"]


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def _config(smtp, server=None) -> dict:
    raw = {"digest": {"recipients": TEAM, "sender": "tracker@example.org"},
           "smtp": smtp.config(), "relevance": {"seed_papers": []}}
    if server is None:
        raw["arxiv"] = {"enabled": False}
        return raw
    raw["arxiv"] = {"api_url": server.url("/api/query"), "delay_seconds": 0, "page_size": 10,
                    "max_retries": 0, "timeout_seconds": 10}
    raw["feeds"] = [{"name": "neuro", "url": server.url("/neuro.xml")}]
    return raw


def _serve(server, now: datetime) -> FakeArxiv:
    fake = FakeArxiv(make_entries(14, now.replace(microsecond=0) - timedelta(days=3),
                                  step=timedelta(hours=4)))
    server.route("/api/query", fake)
    server.route("/neuro.xml", Reply(200, RSS, {"Content-Type": "application/rss+xml"}))
    return fake


def _count(app, row) -> int:
    with app.sessions() as session:
        return len(session.scalars(select(row)).all())


def _digests(app) -> list[DigestRow]:
    with app.sessions() as session:
        return list(session.scalars(select(DigestRow).order_by(DigestRow.period_end)))


def test_cycles_with_a_controllable_clock(make_config, local_server, smtp):
    _serve(local_server, MONDAY_9)
    app = App(make_config(_config(smtp, local_server)))
    try:
        # Installed on the Saturday before: it fetches, and sends no digest for the week
        # before it existed (that digest time has passed, but nobody watched that week).
        first = run_cycle(app, MONDAY_9 - timedelta(days=2))
        assert [(r.job, r.outcome) for r in first] == [("fetch", "ok"), ("digest", "ok")]
        assert first[0].counts["new"] >= 7 and first[1].counts["status"] == "not_started"
        assert smtp.messages == [] and _digests(app) == []
        # Monday after 08:00: the first digest, with what Saturday's fetch found.
        monday = run_cycle(app, MONDAY_9)
        assert [(r.job, r.outcome) for r in monday] == [("fetch", "ok"), ("digest", "ok")]
        assert monday[1].counts["status"] == "sent"
        assert _count(app, PaperRow) == 14 and _count(app, PostRow) >= 2
        [digest] = _digests(app)
        assert digest.status == "sent" and digest.period_end == MONDAY_9 - timedelta(hours=1)
        assert len(smtp.messages) == 1 and sorted(smtp.envelopes[0].rcpt_tos) == sorted(TEAM)
        # Later the same day and on Tuesday: fetch only, no second digest.
        for later in (MONDAY_9 + timedelta(hours=1), MONDAY_9 + timedelta(days=1)):
            assert [r.job for r in run_cycle(app, later)] == ["fetch"]
        # The next Monday after 08:00 the next digest is due and covers the week since.
        assert [r.job for r in run_cycle(app, MONDAY_9 + timedelta(days=7))] == [
            "fetch", "digest"]
        periods = [(d.period_start, d.period_end) for d in _digests(app)]
        assert periods[1] == (periods[0][1], periods[0][1] + timedelta(days=7))
        assert len(smtp.messages) == 2
    finally:
        app.close()


def test_missed_digest_is_sent_once_when_the_worker_comes_back_controlled_clock(
        make_config, smtp):
    from tracker.pipeline.cycle import Runner

    app = App(make_config(_config(smtp)))
    watched_since(app, MONDAY_9 - timedelta(days=7))
    try:
        # The worker was down over Monday 08:00; it restarts at 09:00, then again at 09:30.
        for restart in (MONDAY_9, MONDAY_9 + timedelta(minutes=30)):
            runner = Runner(app)
            runner.run_sequence(jobs_behind(app, restart), restart)
        assert len(smtp.messages) == 1
        assert [d.period_end for d in _digests(app)] == [MONDAY_9 - timedelta(hours=1)]
    finally:
        app.close()


def test_tracker_run_end_to_end(tmp_path, db_url, local_server, smtp):
    _serve(local_server, utcnow())
    config = write_config(tmp_path / "tracker.toml", _config(smtp, local_server))
    env = {"TRACKER_DATABASE_URL": db_url}
    _watched_last_week(db_url)
    first = CliRunner().invoke(cli, ["--config", str(config), "run"], env=env)
    assert first.exit_code == 0, first.output
    assert re.search(r"^fetch: ok \(fetched \d+, new \d+", first.output, re.M)
    assert re.search(r"^digest: ok \(status sent", first.output, re.M)
    [message] = smtp.messages
    assert message["From"] == "tracker@example.org"
    again = CliRunner().invoke(cli, ["--config", str(config), "run"], env=env)
    assert again.exit_code == 0, again.output
    assert re.search(r"^digest: not due \(next \d{4}-\d\d-\d\d \d\d:\d\d UTC\)$",
                     again.output, re.M), again.output
    assert len(smtp.messages) == 1
    status = CliRunner().invoke(cli, ["--config", str(config), "status", "--format", "json"],
                                env=env)
    report = json.loads(status.output)
    assert report["store"]["papers"] == 14 and report["last_digest"]["status"] == "sent"
    # newest first (the last one is last week's)
    assert [r["job"] for r in report["recent_runs"]] == ["fetch", "digest", "fetch", "fetch"]
    assert all(r["outcome"] == "ok" for r in report["recent_runs"])


def test_first_tracker_run_of_a_new_install_sends_no_empty_digest(tmp_path, db_url,
                                                                   local_server, smtp):
    _serve(local_server, utcnow())
    config = write_config(tmp_path / "tracker.toml", _config(smtp, local_server))
    env = {"TRACKER_DATABASE_URL": db_url}
    first = CliRunner().invoke(cli, ["--config", str(config), "run"], env=env)
    assert first.exit_code == 0, first.output
    assert re.search(r"^digest: ok \(status not_started.*began after the last digest time.*"
                     r"the first goes out \d{4}-\d\d-\d\d 08:00 UTC", first.output, re.M)
    assert smtp.messages == []
    shown = CliRunner().invoke(cli, ["--config", str(config), "digest", "preview", "--text"],
                               env=env)
    assert shown.exit_code == 0
    fetched = re.search(r"^(\d+) fetched", shown.output, re.M)
    assert fetched and int(fetched.group(1)) >= 14  # what the first digest holds so far


def _watched_last_week(db_url: str) -> None:
    app = open_app(db_url)
    try:
        watched_since(app, utcnow() - timedelta(days=8))
    finally:
        app.close()


def _digest_done(worker: WorkerProcess) -> bool:
    return re.search(r"digest: (ok|failed|skipped)", worker.log) is not None


def test_missed_digest_sent_once_across_worker_restarts(tmp_path, db_url, smtp):
    config = _config(smtp)
    _watched_last_week(db_url)
    for round_ in range(2):
        worker = WorkerProcess(tmp_path, db_url, config, "worker", name=f"worker{round_}")
        try:
            if round_ == 0:  # came back after the scheduled digest: catches up
                wait_for(lambda w=worker: _digest_done(w), what="the catch-up digest")
            else:  # nothing missed: it only waits for the schedule
                wait_for(lambda w=worker: "digest: next run" in w.log, what="start-up")
            assert worker.stop(signal.SIGTERM) == 0
        finally:
            worker.kill()
        assert "Traceback" not in worker.log
    assert "start-up run (missed while the worker was down): fetch, digest" in (
        tmp_path / "worker0.log").read_text()
    assert "start-up run" not in (tmp_path / "worker1.log").read_text()
    assert len(smtp.messages) == 1
    assert [r.job for r in job_runs(db_url)] == ["fetch", "fetch", "digest"]


def test_two_workers_on_one_database_send_one_digest(tmp_path, db_url, smtp):
    config = _config(smtp)
    setup = open_app(db_url)
    setup.sessions  # noqa: B018 -- schema first, as `tracker db upgrade` does in compose
    setup.close()
    _watched_last_week(db_url)
    workers = [WorkerProcess(tmp_path, db_url, config, "worker", "--run-now", name=f"w{i}")
               for i in range(2)]
    try:
        for worker in workers:
            wait_for(lambda w=worker: _digest_done(w), what="each worker's digest job")
        assert [worker.stop(signal.SIGTERM) for worker in workers] == [0, 0]
    finally:
        for worker in workers:
            worker.kill()
    assert len(smtp.messages) == 1
    digests = [r for r in job_runs(db_url) if r.job == "digest"]
    assert [r.counts.get("status") for r in digests].count("sent") == 1


def test_a_failed_digest_is_retried_after_the_next_scheduled_fetch(make_config, smtp):
    from tracker.pipeline.cycle import Runner
    from tracker.scheduler import Worker

    app = App(make_config(_config(smtp)))
    watched_since(app, utcnow() - timedelta(days=8))
    try:
        worker = Worker(Runner(app))
        smtp.refuse("451 4.3.0 try again later")
        assert worker.runner.run_job("digest").outcome == "failed"  # the cron digest run
        assert smtp.messages == []
        worker.run_scheduled("fetch")  # the next cron fetch sends the overdue digest
        worker.run_scheduled("fetch")  # and nothing more after that
        assert len(smtp.messages) == 1
        records = [(r.job, r.outcome) for r in job_runs(app.config.database_url)]
        assert records == [("fetch", "ok"), ("digest", "failed"), ("fetch", "ok"), ("digest", "ok"),
                           ("fetch", "ok")]
    finally:
        app.close()
