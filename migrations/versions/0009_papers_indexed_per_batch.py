"""papers' full-text index filled a batch at a time (SQLite)

0002's trigger indexes each inserted paper on its own. Run once a row, the trigger costs
about as much again as the indexing itself: on 10,000 papers stored 200 a transaction, 0.5 s
through the trigger against 0.25 s for one INSERT ... SELECT a batch (about a tenth of a
whole `tracker fetch`; bench/ingest.py). While papers_fts_deferred holds a row, the trigger
now stands aside and the store indexes the papers it has just inserted with one statement,
in the same transaction (tracker/store/items.py). Any other insert (by hand, by another
tool) is still indexed by the trigger. PostgreSQL is unchanged.

Like 0002's objects, the table is not in the SQLAlchemy models (migrations/env.py skips
the papers_fts prefix).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 12:10:00
"""

import importlib.util
from pathlib import Path

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

FLAG = "papers_fts_deferred"


def _insert_trigger(when: str) -> None:
    """0002's insert trigger on papers, with a WHEN clause (or none)."""
    path = Path(__file__).with_name("0002_full_text_search.py")
    spec = importlib.util.spec_from_file_location("tracker_migration_0002", path)
    fts = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fts)
    name, rowid, columns, _weights = fts.SQLITE_FTS["papers"]
    values = ", ".join(expr.format(row="new") for expr in columns.values())
    op.execute(f"DROP TRIGGER IF EXISTS {name}_ai")
    op.execute(f"CREATE TRIGGER {name}_ai AFTER INSERT ON papers {when} BEGIN "
               f"INSERT INTO {name}(rowid, {', '.join(columns)}) "
               f"VALUES (new.{rowid}, {values}); END")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute(f"CREATE TABLE {FLAG} (flag INTEGER)")
    _insert_trigger(f"WHEN NOT EXISTS (SELECT 1 FROM {FLAG})")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    _insert_trigger("")
    op.execute(f"DROP TABLE {FLAG}")
