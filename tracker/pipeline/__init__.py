"""Use cases that wire the components (sources, scoring, store, digest) together.

`App` carries what every use case needs: the validated config and, opened lazily, the
database engine behind the schema gate. Use cases take `now` as a parameter where a
decision depends on time, and commit their own transactions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine

from tracker.config import Config
from tracker.store import db

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class App:
    config: Config
    # for commands that only read: a database without the tracker's tables (or a SQLite
    # file that is not there) is an error, not a new empty store (a relative path read from
    # another working directory, or the wrong PostgreSQL database, looks the same)
    existing: bool = False
    _checked: bool = field(default=False, repr=False)

    @cached_property
    def engine(self) -> Engine:
        if self.existing:
            db.require_file(self.config.database_url)
        return db.make_engine(self.config.database_url)

    @property
    def database(self) -> Engine:
        """The engine of a database at the current schema (created if brand new); for
        read-only Core queries, which need no ORM session."""
        if not self._checked:
            db.ensure_schema(self.engine, create=not self.existing)
            self._checked = True
        return self.engine

    @property
    def sessions(self) -> sessionmaker[Session]:
        """Session factory for a database at the current schema (created if brand new)."""
        return db.session_factory(self.database)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
