"""Alembic environment. The tracker passes its engine in `config.attributes["engine"]`;
run by hand (`alembic upgrade head`) it reads the URL the same way the tracker does."""

from alembic import context

from tracker.store.schema import Base

target_metadata = Base.metadata

# Search objects made by migrations 0002, 0003 and 0009 live outside the models (FTS5
# virtual tables with their shadow tables, papers_fts_deferred and papers_facets on SQLite;
# a generated tsvector column, its GIN index and two DESC NULLS LAST listing indexes on
# PostgreSQL), so `alembic check` must not report them as drift.
SEARCH_TABLE_PREFIXES = ("papers_fts", "posts_fts", "papers_facets")
SEARCH_COLUMNS = {"search_vector"}
SEARCH_INDEXES = {"ix_papers_search_vector", "ix_posts_search_vector",
                  "ix_papers_published_desc", "ix_papers_score_desc"}


def include_name(name, type_, parent_names) -> bool:
    return not (type_ == "table" and name and name.startswith(SEARCH_TABLE_PREFIXES))


def include_object(obj, name, type_, reflected, compare_to) -> bool:
    if type_ == "column" and reflected and name in SEARCH_COLUMNS:
        return False
    return not (type_ == "index" and name in SEARCH_INDEXES)


def _engine():
    engine = context.config.attributes.get("engine")
    if engine is not None:
        return engine
    from tracker import config as tracker_config
    from tracker.store.db import make_engine

    return make_engine(tracker_config.load().database_url)


def run_migrations() -> None:
    engine = _engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=include_name,
            include_object=include_object,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations()
