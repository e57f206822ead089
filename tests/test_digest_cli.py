"""`tracker digest preview|send|list` end to end (real clock, real SMTP server, both
backends), including two `tracker digest send` processes racing for the same period."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import update

from tests.conftest import watched_since
from tests.smtpd import SmtpServer
from tests.test_digest_send import add_paper, ledger
from tracker.cli import cli
from tracker.config import from_dict, previous_fire_time
from tracker.pipeline import App, utcnow
from tracker.store.db import transaction
from tracker.store.schema import DigestRow


def _toml(db_url: str, port: int) -> str:
    return f"""
feeds = []
[database]
url = "{db_url}"
[arxiv]
enabled = false
[digest]
recipients = ["ada@example.org"]
[smtp]
host = "127.0.0.1"
port = {port}
security = "none"
timeout_seconds = 10
"""


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def setup(tmp_path, db_url, smtp, make_config):
    """A config file on the test database with two relevant papers in the due period."""
    path = tmp_path / "tracker.toml"
    path.write_text(_toml(db_url, smtp.port), encoding="utf-8")
    app = App(make_config({"arxiv": {"enabled": False}}))
    fire = previous_fire_time("0 8 * * mon", "UTC", utcnow())
    with transaction(app.sessions) as session:
        add_paper(session, "2611.00001", fire - timedelta(days=1), 0.9,
                  title="Spiking networks and cortex")
        add_paper(session, "2611.00002", fire - timedelta(days=2), 0.7,
                  title="Predictive coding in V1")
    yield path, app
    app.close()


def run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_preview_writes_html_or_prints_text_and_records_nothing(setup, tmp_path, smtp):
    config, app = setup
    out = tmp_path / "digest.html"
    result = run("--config", str(config), "digest", "preview", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"wrote {out} (NeuroAI digest:")
    assert "2 item(s)" in result.output
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and "Spiking networks and cortex" in page

    text = run("--config", str(config), "digest", "preview", "--text")
    assert text.exit_code == 0
    assert "* Spiking networks and cortex" in text.stdout and "<" not in text.stdout.split("\n")[0]
    assert ledger(app) == [] and not smtp.envelopes


def test_send_dry_run_then_send_then_nothing_then_list(setup, smtp):
    config, app = setup
    dry = run("--config", str(config), "digest", "send", "--dry-run")
    assert dry.exit_code == 0 and dry.output.startswith("dry_run: would send")
    assert not smtp.envelopes and ledger(app) == []

    sent = run("--config", str(config), "digest", "send")
    assert sent.exit_code == 0 and sent.output.startswith("sent: ")
    again = run("--config", str(config), "digest", "send")
    assert again.exit_code == 0 and again.output.startswith("already_sent: ")
    assert len(smtp.envelopes) == 1

    table = run("--config", str(config), "digest", "list")
    assert table.exit_code == 0
    header, row = table.output.splitlines()
    assert header.split()[:3] == ["id", "period", "(UTC)"] and " sent " in row
    listed = json.loads(run("--config", str(config), "digest", "list", "--format", "json").output)
    assert [(d["status"], d["items"], d["recipients"]) for d in listed] == [
        ("sent", 2, ["ada@example.org"])]


def test_send_with_smtp_down_is_one_error_line_and_exit_1(tmp_path, db_url):
    down = SmtpServer()  # nothing listening on its port
    config = tmp_path / "tracker.toml"
    config.write_text(_toml(db_url, down.port), encoding="utf-8")
    app = App(from_dict({"database": {"url": db_url}}))
    watched_since(app, utcnow() - timedelta(days=10))
    result = CliRunner().invoke(cli, ["--config", str(config), "digest", "send"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot connect to SMTP server 127.0.0.1:")
    assert len(result.stderr.strip().splitlines()) == 1
    listed = CliRunner().invoke(cli, ["--config", str(config), "digest", "list"])
    [row] = listed.output.splitlines()[1:]
    assert "failed" in row and "Connection refused" in row  # the reason, not cut off
    with transaction(app.sessions) as session:  # a server's multi-line reply, as stored
        session.execute(update(DigestRow).values(error="451 Try later\n451 (greylisted)"))
    listed = CliRunner().invoke(cli, ["--config", str(config), "digest", "list"])
    [row] = listed.output.splitlines()[1:]
    assert row.endswith("  451 Try later 451 (greylisted)")
    app.close()


def test_two_processes_racing_send_one_email(setup, smtp, tmp_path):
    config, app = setup
    command = [sys.executable, "-m", "tracker", "--config", str(config), "digest", "send"]
    procs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [proc.communicate(timeout=60) for proc in procs]

    assert [proc.returncode for proc in procs] == [0, 0], outputs
    statuses = sorted(out.split(":")[0] for out, _ in outputs)
    assert statuses[0] in ("already_sent", "in_progress") and statuses[1] == "sent"
    assert len(smtp.envelopes) == 1
    assert [row.status for row in ledger(app)] == ["sent"]

