"""`tracker worker` as a real process: start-up logging (text and JSON), --run-now in
pipeline order, and clean stops on SIGINT and on SIGTERM in the middle of a fetch."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.arxiv_fake import FakeArxiv, make_entries
from tests.localserver import Reply
from tracker.cli import cli
from tracker.config import from_dict
from tracker.pipeline import App, utcnow
from tracker.store.schema import JobRunRow, LockRow, PaperRow, SourceStateRow


def toml(config: dict) -> str:
    """Enough TOML for test configs (JSON scalars and lists are valid TOML values)."""
    tables = {k: v for k, v in config.items() if isinstance(v, dict) or (
        isinstance(v, list) and v and isinstance(v[0], dict))}
    lines = [f"{k} = {json.dumps(v)}" for k, v in config.items() if k not in tables]
    for section, values in tables.items():
        for table in values if isinstance(values, list) else [values]:
            lines.append(f"[[{section}]]" if isinstance(values, list) else f"[{section}]")
            lines += [f"{k} = {json.dumps(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def write_config(path: Path, config: dict) -> Path:
    path.write_text(toml({"feeds": [], **config}))
    return path


def worker_config(server=None, **sections) -> dict:
    """No feeds; arXiv pointed at the local server (or disabled); no seed lookups."""
    arxiv = ({"api_url": server.url("/api/query"), "delay_seconds": 0, "page_size": 5,
              "timeout_seconds": 30, "max_retries": 0} if server else {"enabled": False})
    return {"arxiv": arxiv | sections.pop("arxiv", {}),
            "relevance": {"seed_papers": []}, **sections}


class WorkerProcess:
    def __init__(self, tmp_path: Path, db_url: str, config: dict, *args: str, name="worker"):
        self.config_path = write_config(tmp_path / f"{name}.toml", config)
        self.log_path = tmp_path / f"{name}.log"
        self.db_url = db_url
        env = {**os.environ, "TRACKER_DATABASE_URL": db_url, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tracker", "--config", str(self.config_path), *args],
                cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=log)

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, sig=signal.SIGTERM, timeout=30) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def wait_for(predicate, timeout=60.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def open_app(db_url: str, config: dict | None = None) -> App:
    raw = {"feeds": [], **(config or {}), "database": {"url": db_url}}
    return App(from_dict(raw))


def job_runs(db_url: str) -> list[JobRunRow]:
    app = open_app(db_url)
    try:
        with app.sessions() as session:
            return list(session.scalars(select(JobRunRow).order_by(JobRunRow.id)))
    finally:
        app.close()


def test_run_now_in_order_json_logs_and_sigint_stop(tmp_path, db_url):
    worker = WorkerProcess(tmp_path, db_url, worker_config(), "--log-format", "json",
                           "worker", "--run-now")
    try:
        # Watch the log, not the database: opening the store while the worker creates it
        # would race its schema creation.
        wait_for(lambda: worker.log.count('"event": "finished"') >= 2,
                 what="both start-up jobs")
        assert worker.stop(signal.SIGINT) == 0
    finally:
        worker.kill()
    entries = [json.loads(line) for line in worker.log.splitlines()]  # every line is JSON
    events = [(e.get("event"), e.get("job")) for e in entries if e.get("event")]
    assert events[0] == ("worker_started", None)
    assert {("scheduled", "fetch"), ("scheduled", "digest")} <= set(events)
    jobs = [e for e in events if e[0] in ("started", "finished")]
    assert jobs == [("started", "fetch"), ("finished", "fetch"),
                    ("started", "digest"), ("finished", "digest")]
    assert events[-2:] == [("stopping", None), ("stopped", None)]
    scheduled = [e for e in entries if e.get("event") == "scheduled"]
    assert all(e["next_run"] and e["level"] == "info" for e in scheduled)
    assert [r.job for r in job_runs(db_url)] == ["fetch", "digest"]


def test_sigterm_during_a_fetch_exits_0_and_leaves_a_consistent_store(
        tmp_path, db_url, local_server):
    start = utcnow().replace(microsecond=0) - timedelta(days=2)
    entries = make_entries(12, start, step=timedelta(hours=2))
    fake = FakeArxiv(entries, faults={1: Reply(503, "", delay=60)})  # page 2 hangs
    local_server.route("/api/query", fake)
    config = worker_config(local_server, schedule={"stop_grace_seconds": 1})
    worker = WorkerProcess(tmp_path, db_url, config, "worker", "--run-now")
    try:
        wait_for(lambda: fake.served >= 2, what="the second arXiv page request")
        assert worker.stop(signal.SIGTERM) == 0
    finally:
        worker.kill()
    assert "Traceback" not in worker.log and "fetch: abandoned" in worker.log
    [run] = job_runs(db_url)  # the digest never started
    assert (run.job, run.outcome) == ("fetch", "abandoned") and "SIGTERM" in run.error
    app = open_app(db_url)
    try:
        with app.sessions() as session:
            assert session.scalars(select(LockRow)).all() == []  # no lease left behind
            stored = session.scalars(select(PaperRow).order_by(PaperRow.id)).all()
            cursor = session.get(SourceStateRow, "arxiv").cursor
        # exactly the first page, complete, and the cursor covers no more than that
        assert [p.id for p in stored] == [e.id for e in entries[:5]]
        assert all(p.title and p.abstract and p.version == 1 for p in stored)
        assert cursor == entries[4].updated
    finally:
        app.close()
    # The next cycle completes the set without duplicates.
    fake.faults.clear()
    result = CliRunner().invoke(cli, ["--config", str(worker.config_path), "run"],
                                env={"TRACKER_DATABASE_URL": db_url})
    assert "fetch: ok" in result.output, result.output
    app = open_app(db_url)
    try:
        with app.sessions() as session:
            ids = session.scalars(select(PaperRow.id)).all()
        assert sorted(ids) == sorted(e.id for e in entries)
    finally:
        app.close()


@pytest.mark.parametrize("command", ["run", "fetch"])
def test_sigterm_stops_tracker_run_and_fetch_and_frees_the_lease(tmp_path, db_url,
                                                                 local_server, command):
    start = utcnow().replace(microsecond=0) - timedelta(days=2)
    fake = FakeArxiv(make_entries(3, start), faults={0: Reply(503, "", delay=60)})
    local_server.route("/api/query", fake)
    run = WorkerProcess(tmp_path, db_url, worker_config(local_server), command, name=command)
    try:
        wait_for(lambda: fake.served >= 1, what="the arXiv request")
        assert run.stop(signal.SIGTERM) == 130  # like Ctrl-C: interrupted
    finally:
        run.kill()
    assert "interrupted" in run.log and "Traceback" not in run.log
    [record] = job_runs(db_url)
    assert (record.job, record.outcome, record.error) == ("fetch", "abandoned", "interrupted")
    app = open_app(db_url)
    try:
        with app.sessions() as session:
            assert session.scalars(select(LockRow)).all() == []
    finally:
        app.close()


def test_sigterm_stops_a_backfill_saying_where_to_resume(tmp_path, db_url, local_server):
    """As Ctrl-C (SIGTERM used to end it at once, exit 143, without a word)."""
    fake = FakeArxiv([], faults={0: Reply(503, "", delay=60)})
    local_server.route("/api/query", fake)
    run = WorkerProcess(tmp_path, db_url, worker_config(local_server), "backfill",
                        "--since", "2026-11-01", "--until", "2026-11-03", name="backfill")
    try:
        wait_for(lambda: fake.served >= 1, what="the arXiv request")
        assert run.stop(signal.SIGTERM) == 130
    finally:
        run.kill()
    assert "re-run with --since 2026-11-01 --until 2026-11-03" in run.log
    assert "interrupted" in run.log and "Traceback" not in run.log
