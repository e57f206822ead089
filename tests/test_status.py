"""`tracker status`: store counts, last and next runs, source health and the last digest,
from a store filled by real fetches against the local server, as a table and as JSON."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select, update

from tests.arxiv_fake import FakeArxiv, make_entries
from tests.localserver import Reply
from tests.test_worker_process import write_config
from tracker.cli import cli
from tracker.pipeline import App
from tracker.pipeline.cycle import Runner
from tracker.pipeline.status import collect, render_table
from tracker.scheduler import next_fire_times
from tracker.store.db import transaction
from tracker.store.schema import DigestRow, LabelRow, PaperRow, PostRow

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)  # a Saturday
FEEDS = Path(__file__).parent / "data" / "feeds"
RSS = (FEEDS / "neuro_rss.xml").read_bytes()


def _raw(server) -> dict:
    return {
        "arxiv": {"api_url": server.url("/api/query"), "delay_seconds": 0, "page_size": 10,
                  "max_retries": 0, "timeout_seconds": 5},
        "feeds": [{"name": "neuro", "url": server.url("/neuro.xml")},
                  {"name": "gone", "url": server.url("/gone.xml")},
                  {"name": "broken", "url": server.url("/broken.xml")},
                  {"name": "paused", "url": server.url("/paused.xml"), "enabled": False}],
        "relevance": {"seed_papers": []},
        "schedule": {"timezone": "Europe/Berlin", "fetch": "0 7 * * *"},
    }


def _filled_app(make_config, local_server) -> App:
    local_server.route("/api/query", FakeArxiv(make_entries(7, NOW - timedelta(days=2))))
    local_server.route("/neuro.xml", Reply(200, RSS, {"Content-Type": "application/rss+xml"}))
    local_server.route("/gone.xml", Reply(404, "no such feed"))
    local_server.route("/broken.xml", Reply(200, (FEEDS / "broken_atom.xml").read_bytes(),
                                            {"Content-Type": "application/atom+xml"}))
    app = App(make_config(_raw(local_server)))
    runner = Runner(app)
    runner.run_job("fetch", NOW - timedelta(days=1))
    runner.run_job("fetch", NOW)
    with transaction(app.sessions) as session:
        first, second = session.scalars(select(PaperRow.id).order_by(PaperRow.id).limit(2))
        session.execute(update(PaperRow).values(score=None))  # only one scored item, so
        session.execute(update(PostRow).values(score=None))   # the count is checkable
        session.execute(update(PaperRow).where(PaperRow.id == first).values(score=0.9))
        session.add(LabelRow(paper_id=second, label="relevant", created_at=NOW))
        session.add(DigestRow(period_start=NOW - timedelta(days=12), period_end=NOW - timedelta(
            days=5), status="sent", recipients=["a@example.org", "b@example.org"],
            message_id="<1@tracker.example>", created_at=NOW - timedelta(days=5),
            sent_at=NOW - timedelta(days=5)))
    return app


def test_status_reports_counts_runs_schedule_health_and_digest(make_config, local_server):
    app = _filled_app(make_config, local_server)
    try:
        report = collect(app, next_fire_times(app.config, NOW), NOW)
    finally:
        app.close()
    posts = report["store"]["posts"]
    assert report["store"] == {"papers": 7, "posts": posts, "scored": 1, "labelled": 1}
    assert posts >= 2
    jobs = {job["job"]: job for job in report["jobs"]}
    # 07:00 Berlin = 06:00 UTC, which is NOW itself: the next fetch is tomorrow's.
    assert jobs["fetch"]["next_run"] == "2026-11-29T06:00:00+00:00"
    assert jobs["digest"]["next_run"] == "2026-11-30T07:00:00+00:00"
    last = jobs["fetch"]["last_run"]
    assert last["started_at"] == NOW.isoformat() and last["outcome"] == "ok"
    assert last["counts"]["failed_sources"] == 1 and "gone" in last["error"]
    assert jobs["digest"]["last_run"] is None
    assert [r["job"] for r in report["recent_runs"]] == ["fetch", "fetch"]
    health = {s["name"]: s for s in report["sources"]}
    assert list(health) == ["arxiv", "neuro", "gone", "broken"]  # configured and enabled ones
    assert health["arxiv"]["health"] == "ok" and health["arxiv"]["last_success_at"]
    assert health["neuro"]["consecutive_failures"] == 0
    assert health["gone"]["health"] == "failing"
    assert health["gone"]["consecutive_failures"] == 2 and "404" in health["gone"]["last_error"]
    assert health["broken"]["health"] == "ok"
    assert health["broken"]["last_warning"].startswith("ill-formed feed: SAXParseException")
    assert health["neuro"]["last_warning"] is None
    assert report["last_digest"]["status"] == "sent"
    assert report["last_digest"]["recipients"] == 2
    assert report["running"] == []
    table = render_table(report)
    rows = {cells[0]: cells for cells in (re.split(r" {2,}", line.strip())
                                          for line in table.splitlines())}
    assert rows["fetch"][:5] == ["fetch", "0 7 * * *", "2026-11-29 06:00 UTC",
                                 "2026-11-28 06:00", "ok"]
    assert rows["digest"] == ["digest", "0 8 * * mon", "2026-11-30 07:00 UTC", "-", "-", "-"]
    assert rows["gone"][:4] == ["gone", "failing", "-", "2"]
    assert rows["arxiv"][:4] == ["arxiv", "ok", "2026-11-28 06:00", "0"]
    assert rows["broken"][:5] == ["broken", "ok", "2026-11-28 06:00", "0", "-"]
    assert rows["broken"][5].startswith("ill-formed feed: SAXParseException")
    assert "cron (Europe/Berlin)" in table and "7 papers" in table
    assert "last digest  sent, period 2026-11-16 06:00 .. 2026-11-23 06:00 UTC" in table


def test_status_command_on_a_fresh_database_table_and_json(tmp_path, db_url):
    config = write_config(tmp_path / "t.toml", {"arxiv": {"enabled": False}})
    env = {"TRACKER_DATABASE_URL": db_url}
    # before anything made the store (or with a mistyped URL): said, and nothing created
    for _ in range(2):
        missing = CliRunner().invoke(cli, ["--config", str(config), "status"], env=env)
        assert missing.exit_code == 1
        assert re.search(r"error: (no database at|database .* holds no tracker store)",
                         missing.output)
    assert CliRunner().invoke(cli, ["--config", str(config), "db", "upgrade"],
                              env=env).exit_code == 0
    table = CliRunner().invoke(cli, ["--config", str(config), "status"], env=env)
    assert table.exit_code == 0, table.output
    assert "0 papers, 0 posts, 0 scored, 0 labelled" in table.output
    assert "last digest  none yet" in table.output
    result = CliRunner().invoke(cli, ["--config", str(config), "status", "--format", "json"],
                                env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["store"]["papers"] == 0 and report["sources"] == []
    assert [job["job"] for job in report["jobs"]] == ["fetch", "digest"]
    assert all(job["next_run"] and job["last_run"] is None for job in report["jobs"])


def test_status_never_prints_the_database_password(tmp_path):
    env = {"TRACKER_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"}
    assert CliRunner().invoke(cli, ["db", "upgrade"], env=env).exit_code == 0
    result = CliRunner().invoke(cli, ["status", "--format", "json"], env=env)
    assert json.loads(result.output)["database"] == env["TRACKER_DATABASE_URL"]
    env = {"TRACKER_DATABASE_URL": "postgresql+psycopg://me:s3cret@127.0.0.1:1/none"}
    result = CliRunner().invoke(cli, ["status"], env=env)
    assert result.exit_code == 1 and "s3cret" not in result.output
