"""A `tracker fetch` process killed with SIGKILL in the middle of a fetch leaves a
consistent store (whole pages only, cursor matching what is stored), and the next run
completes the set without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, func, select, text

from tests.arxiv_fake import FakeArxiv, make_entries
from tracker.store.schema import PaperRow, PaperVersionRow, SourceStateRow

REPO = Path(__file__).resolve().parents[1]
PAGE = 10


def _config(tmp_path: Path, db_url: str, api_url: str) -> Path:
    path = tmp_path / "tracker.toml"
    path.write_text(f"""
[database]
url = "{db_url}"

[arxiv]
api_url = "{api_url}"
delay_seconds = 0
page_size = {PAGE}
lookback_days = 7

[relevance]
seed_papers = []
""")
    return path


def _run(config: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen([sys.executable, "-m", "tracker", "--config", str(config), "fetch"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)


def _snapshot(engine):
    with engine.connect() as conn:
        stored = dict(conn.execute(select(PaperRow.id, PaperRow.updated)).all())
        versions = conn.scalar(select(func.count()).select_from(PaperVersionRow))
        cursor = conn.scalar(select(SourceStateRow.cursor).where(SourceStateRow.name == "arxiv"))
    return stored, versions, cursor


def _wait_for_rows(engine, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with engine.connect() as conn:
                if conn.scalar(select(func.count()).select_from(PaperRow)) >= at_least:
                    return
        except Exception:  # noqa: BLE001 - the schema may not exist yet
            pass
        time.sleep(0.05)
    raise AssertionError(f"fewer than {at_least} papers stored within {timeout} s")


def test_sigkill_mid_fetch_leaves_a_consistent_store(db_url, tmp_path, local_server):
    now = datetime.now(UTC).replace(microsecond=0)  # the API has second resolution
    entries = make_entries(120, now - timedelta(days=6), step=timedelta(hours=1))  # one window
    fake = FakeArxiv(entries)
    fake.delay = 0.15  # slow pages, so the kill lands mid-fetch
    local_server.route("/api/query", fake)
    config = _config(tmp_path, db_url, local_server.url("/api/query"))
    engine = create_engine(db_url)
    try:
        proc = _run(config)
        _wait_for_rows(engine, 3 * PAGE)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL

        stored, versions, cursor = _snapshot(engine)
        assert 0 < len(stored) < len(entries)
        # whole pages only, one transaction each (each page after the first starts one
        # entry early, to notice a listing that changed under it)
        assert (len(stored) - PAGE) % (PAGE - 1) == 0
        oldest_first = sorted(entries, key=lambda e: e.updated)
        assert set(stored) == {e.id for e in oldest_first[:len(stored)]}  # no gap
        assert versions == len(stored)  # every paper has its version row
        assert cursor == max(stored.values())  # the cursor covers exactly what is stored

        fake.delay = 0.0
        done = _run(config)
        out, err = done.communicate(timeout=60)
        assert done.returncode == 0, err.decode()
        assert b"arxiv: fetched" in out
        # the killed run's lease is taken over at once (its process is gone), not after
        # lock_ttl_seconds, and the killed run is recorded as abandoned
        assert b"took over the lease" in err
        with engine.connect() as conn:
            outcomes = conn.execute(text("SELECT outcome FROM job_runs ORDER BY id")).scalars()
            assert list(outcomes) == ["abandoned", "ok"]
        stored, versions, cursor = _snapshot(engine)
        assert set(stored) == {e.id for e in entries} and versions == len(entries)
        assert cursor == max(e.updated for e in entries)
    finally:
        if proc.poll() is None:
            proc.kill()
        engine.dispose()
