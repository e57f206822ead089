"""Migrations and the schema gate, on SQLite and PostgreSQL."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text

from tracker.errors import SchemaOutdatedError, StoreError
from tracker.store import db
from tracker.store.schema import LabelRow, PaperRow, PostRow, ScoreRow


def test_upgrade_from_empty_has_no_drift(db_url):
    engine = db.make_engine(db_url)
    before, after = db.upgrade(engine)
    assert before is None and after == db.head_revision(engine) == db.SCHEMA_REVISION
    db.check_drift(engine)  # raises if models and migrations disagree
    engine.dispose()


def test_new_database_is_created_on_first_use(app):
    with app.sessions() as session:
        assert session.scalars(select(PaperRow)).all() == []
    assert db.current_revision(app.engine) == db.head_revision(app.engine)


def test_outdated_database_is_refused_with_upgrade_hint(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0000_old'"))
    with pytest.raises(SchemaOutdatedError, match="tracker db upgrade"):
        db.ensure_schema(engine)
    engine.dispose()


def test_round_trip_keeps_aware_utc_datetimes_and_json(app):
    seen = datetime(2026, 3, 2, 9, 30, tzinfo=timezone(timedelta(hours=2)))
    with db.transaction(app.sessions) as session:
        session.add(PaperRow(
            id="math/0211159", version=2, title="T", abstract="A", authors=["Ada Ł"],
            categories=["math.DG"], first_seen_at=seen, version_seen_at=seen,
        ))
    with app.sessions() as session:
        row = session.get(PaperRow, "math/0211159")
        assert row.authors == ["Ada Ł"] and row.categories == ["math.DG"]
        assert row.first_seen_at == seen and row.first_seen_at.tzinfo is not None
        assert row.first_seen_at.utcoffset() == timedelta(0)


def test_json_lists_are_stored_as_json_dumps_writes_them(app):
    """Lists of strings take a fast path to JSON text: the stored text must be json.dumps'
    (SQL reads it with json_each, and the full-text index decodes author names from it)."""
    import json

    tricky = ['Zoë "Q" Ñ\\', "line\nbreak\ttab", "😀", "", "a, b"]
    cases = {"list": tricky, "mixed": ["a", 1, None, ["b"]], "empty": []}
    seen = datetime(2026, 3, 2, tzinfo=UTC)
    with db.transaction(app.sessions) as session:
        for pid, authors in cases.items():
            session.add(PaperRow(id=pid, version=1, title="T", abstract="A", authors=authors,
                                 categories=[], first_seen_at=seen, version_seen_at=seen))
    with app.engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, authors FROM papers")).all())
    with app.sessions() as session:
        for pid, authors in cases.items():
            assert session.get(PaperRow, pid).authors == authors
            if app.engine.dialect.name == "sqlite":  # PostgreSQL hands back parsed JSON
                assert stored[pid] == json.dumps(authors)


def test_timestamps_are_stored_as_sqlalchemy_stores_them_and_compare_in_sql(app):
    """SQLite keeps timestamps as text: what the store writes must be SQLAlchemy's own
    format, in UTC, so that text comparisons in SQL order them as times."""
    from sqlalchemy import DateTime

    dialect = app.engine.dialect
    bind = PaperRow.__table__.c.first_seen_at.type.bind_processor(dialect)
    plus5 = timezone(timedelta(hours=5))
    if dialect.name == "sqlite":
        stock = DateTime().dialect_impl(dialect).bind_processor(dialect)
        values = [datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
                  datetime(2026, 6, 1, 2, 59, 59, 999999, tzinfo=plus5),
                  datetime(999, 12, 31, 23, 0, tzinfo=UTC)]
        for value in values + values[::-1] + values[1:2] * 2:  # again: the last one is kept
            assert bind(value) == stock(value.astimezone(UTC).replace(tzinfo=None))
        with pytest.raises(ValueError, match="naive"):
            bind(datetime(2026, 1, 1))
    early, late = datetime(2026, 1, 1, 23, 0, tzinfo=UTC), datetime(2026, 1, 2, 1, tzinfo=plus5)
    with db.transaction(app.sessions) as session:  # late is 20:00 UTC, before early
        for pid, seen in (("a", early), ("b", late)):
            session.add(PaperRow(id=pid, version=1, title="T", abstract="A", authors=[],
                                 categories=[], first_seen_at=seen, version_seen_at=seen))
    with app.sessions() as session:
        ordered = session.scalars(select(PaperRow.id).order_by(PaperRow.first_seen_at)).all()
        after = session.scalars(select(PaperRow.id).where(
            PaperRow.first_seen_at > datetime(2026, 1, 1, 21, tzinfo=UTC))).all()
    assert ordered == ["b", "a"] and after == ["a"]


def test_bulk_insert_stores_exactly_what_the_orm_stores(app):
    """insert_rows (the ingest path) bypasses SQLAlchemy's parameter handling on SQLite: the
    stored values must still be the ORM's, byte for byte, or SQL comparisons and reads differ."""
    from tracker.store import insert_rows

    seen = datetime(2026, 6, 1, 2, 59, 59, 999999, tzinfo=timezone(timedelta(hours=5)))
    values = dict(version=2, title="T", abstract="A", authors=["Ada Łukasiewicz", "Bo"],
                  categories=["q-bio.NC"], primary_category=None, published=seen,
                  updated=seen.astimezone(UTC), doi=None, journal_ref=None, comment=None,
                  first_seen_at=seen, version_seen_at=seen, score=0.25, score_model="m")
    with db.transaction(app.sessions) as session:
        session.add(PaperRow(id="orm", **values))
        insert_rows(session, PaperRow.__table__, [{"id": "bulk", **values}])
    columns = ", ".join(values)
    with app.engine.connect() as conn:  # the stored text (SQLite) or values (PostgreSQL)
        rows = {r[0]: tuple(r[1:]) for r in conn.execute(text(f"SELECT id, {columns} "
                                                             "FROM papers"))}
    assert rows["bulk"] == rows["orm"]


def test_item_references_need_exactly_one_item(app):
    now = datetime.now(UTC)
    with db.transaction(app.sessions) as session:
        post = PostRow(feed="f", guid="g", title="t", first_seen_at=now)
        session.add(post)
    with pytest.raises(Exception, match="(?i)check|constraint"):
        with db.transaction(app.sessions) as session:
            session.add(ScoreRow(paper_id=None, post_id=None, value=0.1, model_version="m",
                                 config_hash="h", scored_at=now))
    with pytest.raises(Exception, match="(?i)foreign key|violates"):
        with db.transaction(app.sessions) as session:
            session.add(LabelRow(paper_id="nope", label="relevant", created_at=now))


def test_concurrent_first_use_creates_the_schema_once(db_url):
    from concurrent.futures import ThreadPoolExecutor

    def first_use(_):
        engine = db.make_engine(db_url)  # one engine each, like separate processes
        try:
            db.ensure_schema(engine)
            return db.current_revision(engine)
        finally:
            engine.dispose()

    with ThreadPoolExecutor(max_workers=4) as pool:
        revisions = list(pool.map(first_use, range(4)))
    assert revisions == [db.SCHEMA_REVISION] * 4


def test_a_unit_of_work_that_reads_then_writes_waits_for_another_writer(sqlite_url):
    """SQLite: a transaction() holds the write lock from its start. With a plain BEGIN,
    another process committing between our read and our write made the write fail at once
    with "database is locked" (a WAL read snapshot cannot be upgraded once out of date)."""
    import threading

    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    factory = db.session_factory(engine)
    other = db.make_engine(sqlite_url)  # another process's connection, in a thread
    errors = []

    def write_meanwhile():
        try:
            with other.begin() as conn:
                conn.execute(text("UPDATE source_state SET kind = 'feed'"))
                conn.execute(text("INSERT INTO source_state (name, kind, consecutive_failures) "
                                  "VALUES ('other', 'feed', 0)"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with db.transaction(factory) as session:
        session.execute(text("SELECT count(*) FROM source_state")).scalar()  # read first
        writer = threading.Thread(target=write_meanwhile)
        writer.start()
        writer.join(0.5)  # it waits for our lock (with a plain BEGIN it commits meanwhile)
        session.execute(text("INSERT INTO source_state (name, kind, consecutive_failures) "
                             "VALUES ('ours', 'feed', 0)"))
    writer.join(10)
    with engine.connect() as conn:
        names = conn.execute(text("SELECT name FROM source_state ORDER BY name")).scalars().all()
    engine.dispose()
    other.dispose()
    assert errors == [] and names == ["other", "ours"]


def test_a_sqlite_store_is_read_through_a_map_of_the_whole_file(sqlite_url, tmp_path):
    """Pages past the mapped size are read one call at a time into a page cache that each
    new `tracker search` process starts cold: a large store must be mapped whole, as far
    as the SQLite library allows."""
    probe = db.sqlite_dbapi().connect(tmp_path / "probe.db")
    probe.execute(f"PRAGMA mmap_size={1 << 62}")
    library_limit = probe.execute("PRAGMA mmap_size").fetchone()[0]
    probe.close()
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        mapped = conn.exec_driver_sql("PRAGMA mmap_size").scalar()
    engine.dispose()
    assert mapped >= min(library_limit, 1 << 40)  # a terabyte: more than any store holds


def test_a_database_error_is_described_in_one_line_without_the_statement(app):
    from sqlalchemy.exc import SQLAlchemyError

    secret = "a page of text " * 50
    with pytest.raises(SQLAlchemyError) as info, app.sessions() as session:
        session.execute(text("SELECT no_such_column FROM papers WHERE title = :t"), {"t": secret})
    assert "[SQL:" in str(info.value)  # what SQLAlchemy says: statement and parameters
    described = db.describe_error(info.value)
    assert described.startswith("database error: ") and "no_such_column" in described
    assert "\n" not in described and "[SQL:" not in described and secret not in described
    assert db.describe_error(ValueError("bad\nvalue")) == "ValueError: bad"


def test_a_sqlite_file_uri_opens_that_file_read_only(tmp_path, monkeypatch):
    """sqlite:///file:PATH?mode=ro&uri=true names PATH: nothing is created beside it (a
    folder called "file:" once was) and a missing file is reported by its path."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "store" / "tracker.db"
    read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
    assert db.sqlite_path(read_only) == path
    assert db.sqlite_path("sqlite:///file:x?mode=memory&uri=true") is None
    with pytest.raises(Exception, match=f"no database at {path} "):
        db.require_file(read_only)
    writer = db.make_engine(f"sqlite:///{path}")
    with writer.begin() as conn:
        conn.execute(text("CREATE TABLE t (x)"))
    writer.dispose()
    engine = db.make_engine(read_only)
    with engine.connect() as conn, pytest.raises(Exception, match="readonly"):
        conn.execute(text("INSERT INTO t VALUES (1)"))
    engine.dispose()
    missing = db.make_engine(f"sqlite:///file:{tmp_path}/none.db?mode=ro&uri=true")
    with pytest.raises(StoreError) as info:
        db.ensure_schema(missing)
    assert "opens the file read-only (mode=ro)" in info.value.hint
    missing.dispose()
    # a new store through such a URL is created (under a lock on the file it names)
    created = db.make_engine(f"sqlite:///file:{path.parent}/new.db?mode=rwc&uri=true")
    db.ensure_schema(created)
    assert db.current_revision(created) == db.SCHEMA_REVISION
    created.dispose()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store"]
