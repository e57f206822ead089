"""Alembic environment. The tracker passes its engine in `config.attributes["engine"]`;
run by hand (`alembic upgrade head`) it reads the URL the same way the tracker does."""

from alembic import context

from tracker.store.schema import Base

target_metadata = Base.metadata


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
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
run_migrations()
