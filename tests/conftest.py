"""Shared fixtures: databases (SQLite always, PostgreSQL when TRACKER_TEST_POSTGRES_URL is
set), an App wired to them, a local HTTP server, and the read-only ../shared data."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.localserver import LocalServer
from tracker import config as tracker_config
from tracker.pipeline import App

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TEST_DATA = Path(__file__).resolve().parent / "data"
POSTGRES_URL = os.environ.get("TRACKER_TEST_POSTGRES_URL")

BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=pytest.mark.skipif(
        not POSTGRES_URL, reason="TRACKER_TEST_POSTGRES_URL not set")),
]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch, tmp_path):
    """No test sees the developer's config, database URL or password, or writes to cwd."""
    for name in ("TRACKER_CONFIG", "TRACKER_DATABASE_URL", "TRACKER_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present (third-party fixtures live there)")
    return SHARED


def _postgres_schema_url() -> tuple[str, str]:
    """A fresh schema in the test database, selected through search_path."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    sep = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{sep}options=-csearch_path%3D{schema}", schema


def _drop_postgres_schema(schema: str) -> None:
    engine = create_engine(POSTGRES_URL)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request, tmp_path) -> str:
    """An empty database on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'tracker.db'}"
        return
    url, schema = _postgres_schema_url()
    yield url
    _drop_postgres_schema(schema)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'tracker.db'}"


@pytest.fixture
def make_config(db_url):
    """Build a validated Config from TOML-shaped overrides, on the test database."""

    def build(raw: dict | None = None) -> tracker_config.Config:
        raw = dict(raw or {})
        raw.setdefault("database", {"url": db_url})
        raw.setdefault("feeds", [])
        return tracker_config.from_dict(raw, source="<test>")

    return build


@pytest.fixture
def app(make_config):
    """An App on an empty database (each backend), default config, no feeds."""
    application = App(make_config())
    yield application
    application.close()


@pytest.fixture
def local_server():
    with LocalServer() as server:
        yield server


def watched_since(app: App, when) -> None:
    """Record a finished fetch run at `when`: the store has been running since then. (A first
    digest is sent only for a period the store was watching; see pipeline/digest.py.)"""
    from tracker.store import runs
    from tracker.store.db import transaction

    with transaction(app.sessions) as session:
        run_id = runs.start_run(session, "fetch", when, "earlier-host", 1)
        runs.finish_run(session, run_id, when, "ok")
