"""Use cases for querying the store: search, show one item, export everything.
Read-only; each opens its own connection (Core only: no ORM import, so the commands start
fast). The SQL is in tracker/store/search.py."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from tracker.errors import StoreError
from tracker.models import named_version
from tracker.pipeline import App
from tracker.store import search as store
from tracker.store.search import Filters

__all__ = ["Filters", "export", "search", "show"]

log = logging.getLogger(__name__)


def search(app: App, text: str | None, filters: Filters | None = None, *,
           sort: str = "relevance", limit: int = 50, offset: int = 0) -> list[dict]:
    with _reading(app) as conn:
        return store.search(conn, text, filters or Filters(), sort=sort, limit=limit,
                            offset=offset)


def show(app: App, item_id: str) -> dict:
    """The stored record; a warning when the id names a version that is not stored (the
    record shown is the paper as stored, whatever version the id names)."""
    with _reading(app) as conn:
        record = store.show(conn, item_id)
    asked = named_version(item_id) if record["kind"] == "paper" else None
    stored = {v["version"] for v in record.get("versions", [])} | {record.get("version")}
    if asked is not None and asked not in stored:
        log.warning("%s: v%s is not stored; shown as stored, at v%s (`tracker fetch` brings "
                    "new versions)", record["id"], asked, record["version"])
    return record


def count_items(app: App) -> int:
    with _reading(app) as conn:
        return store.count_items(conn)


def export(app: App) -> Iterator[dict]:
    """Every item, streamed; the connection stays open while the caller iterates."""
    with _reading(app) as conn:
        yield from store.export(conn)


@contextmanager
def _reading(app: App) -> Iterator:
    """A connection for reading; a database failure becomes one StoreError line."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with app.database.connect() as conn:
            yield conn
    except SQLAlchemyError as exc:
        orig = getattr(exc, "orig", None) or exc
        first = (str(orig).splitlines() or [type(orig).__name__])[0]
        raise StoreError(f"search failed in the database: {first}",
                         hint="run `tracker db upgrade` if the schema is old") from None
