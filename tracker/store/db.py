"""Engine and session setup, and the schema gate: a brand-new database is created at the
current revision on first use; an existing one at an older revision is never migrated
silently (commands refuse and name `tracker db upgrade`)."""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError

from tracker.config import mask_url
from tracker.errors import InputError, SchemaOutdatedError, StoreError, TrackerError

if TYPE_CHECKING:  # the ORM is imported only by commands that use sessions
    from sqlalchemy.orm import Session, sessionmaker

_PACKAGE_DIR = Path(__file__).resolve().parent.parent

# The newest migration's revision. Kept here so the schema gate every command passes needs
# one SELECT and no Alembic import (tests check it equals Alembic's head).
SCHEMA_REVISION = "0009"
URL_HINT = "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DATABASE"


def migrations_dir() -> Path:
    """migrations/ in a source checkout, or the copy packed into the wheel."""
    for candidate in (_PACKAGE_DIR.parent / "migrations", _PACKAGE_DIR / "_migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise StoreError("the Alembic migrations folder is missing from this installation")


def _json_text(value) -> str:
    """json.dumps, with a fast path for a list of strings (authors, categories, a score's
    reasons: three per stored paper), the same text in a third of the time."""
    if type(value) is list:
        try:
            return "[" + ", ".join(map(encode_basestring_ascii, value)) + "]"
        except TypeError:  # not all strings
            return json.dumps(value)
    return json.dumps(value)


def make_engine(url: str) -> Engine:
    """Create an engine; SQLite gets WAL, foreign keys and a busy timeout."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        raise StoreError(f"invalid database URL {mask_url(url)!r}", hint=URL_HINT) from None
    if parsed.drivername in ("postgres", "postgresql"):  # psycopg 3 is the driver we ship
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if (file := _sqlite_file(parsed)) is not None:
            folder = file.parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create the folder {folder} of the SQLite database: "
                                 f"{exc.strerror}") from None
        engine = create_engine(parsed, module=sqlite_dbapi(), connect_args={"timeout": 30},
                               json_serializer=_json_text)
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; take it over so that a unit
        # of work (transaction() below) takes the write lock from the start.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise StoreError(f"unsupported database URL scheme {parsed.drivername!r}", hint=URL_HINT)
    try:
        engine = create_engine(parsed, pool_pre_ping=True, json_serializer=_json_text)
    except ModuleNotFoundError as exc:
        shipped = parsed.drivername == "postgresql+psycopg"  # what the extra installs
        raise StoreError(
            f"the driver for {parsed.drivername} is not installed ({exc.name})",
            hint="pip install 'neuroai-tracker[postgres]'" if shipped else
            "use a postgresql+psycopg:// URL (psycopg 3, which the [postgres] extra installs)",
        ) from None
    event.listen(engine, "connect", _postgres_settings)
    return engine


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, absolute (a relative one is read from the working
    directory); None for other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    file = _sqlite_file(parsed)
    return file.absolute() if file is not None else None


def _sqlite_file(parsed) -> Path | None:
    """The file a SQLite URL opens: its path, or with uri=true (sqlite:///file:PATH?mode=ro
    &uri=true) the path inside SQLite's own file: URI; None for an in-memory database."""
    database = parsed.database or ""
    if parsed.query.get("uri") in ("true", "1") and database.startswith("file:"):
        if parsed.query.get("mode") == "memory":
            return None
        database = unquote(urlsplit(database).path)
    if not database or database == ":memory:":
        return None
    path = Path(database)
    try:
        path.exists()  # False for a missing file, but raises for a name no file can have
    except OSError as exc:
        raise StoreError(f"cannot use {database!r} as the SQLite database: {exc.strerror}",
                         hint="check [database] url / $TRACKER_DATABASE_URL") from None
    return path


def require_file(url: str) -> None:
    """StoreError if `url` names a SQLite file that does not exist."""
    path = sqlite_path(url)
    if path is not None and not path.exists():
        raise StoreError(f"no database at {path}",
                         hint="`tracker fetch` creates it; a relative [database] url is read "
                              "from the working directory")


def sqlite_dbapi():
    """The newest SQLite at hand: pysqlite3-binary's where it is installed (the fast-sqlite
    extra), else the standard library's. Ranking full-text matches is most of a search's
    time, and SQLite 3.51 does it ~30% faster than the 3.40 many Python 3.11 builds ship
    (bench/search.py, 1M papers: a term matching 83k papers, 56 -> 39 ms)."""
    try:
        from pysqlite3 import dbapi2
    except ImportError:
        return sqlite3
    return dbapi2 if dbapi2.sqlite_version_info > sqlite3.sqlite_version_info else sqlite3


def _use_wal(cursor, wait_seconds: float = 30.0) -> None:
    """Switch the file to WAL (a setting of the file, kept once made). Two connections that
    switch a brand-new file at the same moment get "database is locked" at once, without
    SQLite's busy wait (seen about once in 20 concurrent first uses), so retry briefly."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except Exception as exc:  # noqa: BLE001 - OperationalError of whichever sqlite3 module
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


MMAP_BYTES = 1 << 40  # 1 TiB: more than any store; SQLite maps only the file's size


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    dbapi_conn.isolation_level = None  # let SQLAlchemy's "begin" event issue BEGIN
    cursor = dbapi_conn.cursor()
    _use_wal(cursor)
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Reads (full-text search above all) go through a memory map of the whole file and a
    # 64 MiB page cache; sorts that spill stay in memory. Address space only: nothing is
    # loaded up front. Pages past the map are read one call at a time into a page cache
    # that each `tracker search` process starts cold (1M papers, 2.9 GB: a filtered search
    # in a new process took 80 ms at the median with 1 GiB mapped, 31 ms with all of it).
    # SQLite caps the map at its build's limit: 2 GiB for Python 3.11's own 3.40.
    cursor.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    cursor.execute("PRAGMA cache_size=-65536")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _postgres_settings(dbapi_conn, _record) -> None:
    # The default random_page_cost (4) models spinning disks and makes the planner read a
    # whole large table (detoasting every tsvector) rather than use the GIN index for a
    # common search term; 1.1 suits SSDs and cached data (halves search p95 on 300k papers).
    # A common term matches tens of thousands of rows: with the default 4 MB work_mem their
    # bitmap turns lossy and every row of those pages is re-checked (its tsvector detoasted);
    # and such a query's cost estimate crosses jit_above_cost, so ~50 ms go to compiling
    # code for a query that is I/O bound. (1M papers, 200k matches: 3.7 s -> 3.0 s.)
    cursor = dbapi_conn.cursor()
    cursor.execute("SET random_page_cost = 1.1")
    cursor.execute("SET work_mem = '64MB'")
    cursor.execute("SET jit = off")
    cursor.close()
    dbapi_conn.commit()  # a SET inside a transaction that is later rolled back is undone


def _alembic_config(engine: Engine):
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None for a database Alembic has never touched; a
    database that cannot be read is one StoreError line."""
    return _checked(_revision, engine)


def _revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """Migrate to `revision`; return (before, after)."""
    from alembic import command
    from alembic.util import CommandError

    before = current_revision(engine)
    try:
        _checked(lambda e: command.upgrade(_alembic_config(e), revision), engine)
    except CommandError as exc:  # an unknown or older revision (upgrade never goes down)
        raise InputError(f"cannot upgrade to revision {revision!r}: {exc}",
                         hint=f"revisions: 0001 .. {SCHEMA_REVISION}, or head") from None
    return before, current_revision(engine)


def check_drift(engine: Engine) -> None:
    """Raise if the models and the migrations disagree (alembic check)."""
    from alembic import command

    command.check(_alembic_config(engine))


def ensure_schema(engine: Engine, *, create: bool = True) -> None:
    """The gate every command passes: create an empty database (unless not `create`: a
    command that only reads), refuse an outdated one."""
    current = current_revision(engine)
    if current is None and not create:
        raise StoreError(f"database {mask_url(str(engine.url))} holds no tracker store yet",
                         hint="`tracker fetch` creates it; check [database] url / "
                              "$TRACKER_DATABASE_URL")
    if current is None:
        # Several processes may meet a brand-new database at once (two workers, a worker and
        # a CLI command): one creates it, the others wait and then find it current.
        with _creation_lock(engine):
            current = current_revision(engine)
            if current is None:
                if _checked(lambda e: inspect(e).get_table_names(), engine):
                    raise SchemaOutdatedError(
                        f"database {mask_url(str(engine.url))} has tables but no migration "
                        "revision",
                        hint="point the tracker at an empty database or one it created",
                    )
                upgrade(engine)
                return
    if current != SCHEMA_REVISION:
        raise SchemaOutdatedError(
            f"database schema is at revision {current}, this version needs {SCHEMA_REVISION}",
            hint="run `tracker db upgrade` (back up the database first)",
        )


# Arbitrary constant naming the tracker's schema-creation advisory lock in PostgreSQL.
_PG_CREATION_LOCK = 0x7472_6163_6B72


@contextmanager
def _creation_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name == "postgresql":
        with _checked(lambda e: e.connect(), engine) as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _PG_CREATION_LOCK})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _PG_CREATION_LOCK})
                conn.commit()
        return
    database = _sqlite_file(engine.url)
    if database is None:
        yield
        return
    # flock on the database file itself: SQLite uses POSIX record locks, which are separate.
    with open(database, "ab") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _checked(fn, engine: Engine):
    try:
        return fn(engine)
    except OperationalError as exc:
        raise StoreError(
            f"cannot use database {mask_url(str(engine.url))}: {_first_line(exc.orig)}",
            hint=_hint(engine, exc) or "check [database] url / $TRACKER_DATABASE_URL and "
                                       "that the server is up",
        ) from None
    except SQLAlchemyError as exc:
        raise StoreError(describe_error(exc), hint=_hint(engine, exc)) from None


def _hint(engine, exc: BaseException) -> str | None:
    """What to check when a SQLite file cannot be opened or written (the usual causes)."""
    path = _sqlite_file(engine.url) if engine.url.get_backend_name() == "sqlite" else None
    if path is None:
        return None
    if engine.url.query.get("mode") == "ro":
        return "[database] url opens the file read-only (mode=ro)"
    if path.is_dir():
        return f"{path} is a directory; [database] url must name a file"
    if "readonly" in str(exc) or not os.access(path if path.exists() else path.parent,
                                               os.W_OK):
        return (f"this user cannot write {path} or its folder {path.parent}: "
                "check their permissions and owner")
    return None


def describe_error(exc: BaseException) -> str:
    """One line for a failure: a database error without SQLAlchemy's dump of the statement
    and its parameters (the text of a whole page, or a password in a URL)."""
    if isinstance(exc, TrackerError):
        return str(exc)
    if isinstance(exc, SQLAlchemyError):
        line = f"database error: {_first_line(getattr(exc, 'orig', None) or exc)}"
        if "readonly database" in line:  # SQLite: the file, or its folder (journal), is not
            line += (" (hint: this user cannot write the database file or its folder, or "
                     "[database] url opens it read-only)")
        return line
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(error: object) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def session_factory(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error. On SQLite it holds the
    write lock from its start (BEGIN IMMEDIATE): a unit that reads and then writes would
    otherwise fail with "database is locked" when another process wrote in between (WAL
    cannot upgrade a read snapshot that is out of date), whatever the busy timeout."""
    with factory() as session, session.begin():
        session.connection(execution_options={"write_unit": True})
        yield session


def _sqlite_begin(conn) -> None:
    immediate = conn.get_execution_options().get("write_unit")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
