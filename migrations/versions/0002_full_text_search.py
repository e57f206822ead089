"""full-text search over papers and posts

SQLite: FTS5 external-content indexes (papers_fts, posts_fts) that store only the index, not
a second copy of the text, kept in sync by triggers on insert / update / delete.
PostgreSQL: a stored generated tsvector column per table (title weight A, authors B,
abstract or summary C) with a GIN index; the database keeps it current on every write.

Both stem English (FTS5 porter, PostgreSQL 'english'), so "networks" finds "network" and a
prefix term is stemmed the same way on both. Both fold case but keep accents (PostgreSQL
would need the unaccent extension to drop them), so "Díaz" and "Diaz" differ on both.
These objects are not in the SQLAlchemy models; migrations/env.py tells `alembic check` to
ignore them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:45:00
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The authors column holds a JSON array, which the store writes with \u escapes for
# non-ASCII letters; the index gets the decoded names (json_each / jsonb), or "Díaz" would
# be indexed as "D\u00edaz".
AUTHORS_SQLITE = "(SELECT group_concat(value, '; ') FROM json_each({row}.authors))"

# table -> (FTS table, rowid column, {column: value expression}, bm25 weights per column)
SQLITE_FTS = {
    "papers": ("papers_fts", "rowid",
               {"title": "{row}.title", "abstract": "{row}.abstract", "authors": AUTHORS_SQLITE},
               "4.0, 1.0, 2.0"),
    "posts": ("posts_fts", "id",
              {"title": "{row}.title", "summary_text": "{row}.summary_text",
               "author": "{row}.author"},
              "4.0, 1.0, 2.0"),
}
# table -> expressions weighted A, B, C: title > authors > text, as the bm25 weights above
POSTGRES_TSV = {
    "papers": ("title", "(authors::jsonb)::text", "abstract"),
    "posts": ("title", "author", "summary_text"),
}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, spec in SQLITE_FTS.items():
            _sqlite_create(table, *spec)
    else:
        for table, exprs in POSTGRES_TSV.items():
            _postgres_create(table, exprs)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for fts, *_rest in SQLITE_FTS.values():
            _sqlite_drop(fts)
    else:
        for table in POSTGRES_TSV:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_vector")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")


TOKENIZER = "porter unicode61 remove_diacritics 0"


def _sqlite_drop(fts: str) -> None:
    for suffix in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS {fts}_{suffix}")
    op.execute(f"DROP TABLE IF EXISTS {fts}")


def _sqlite_create(table: str, fts: str, rowid: str, columns: dict, weights: str,
                   tokenizer: str = TOKENIZER) -> None:
    cols = ", ".join(columns)

    def values(row: str) -> str:
        return ", ".join(expr.format(row=row) for expr in columns.values())

    # No prefix='...' indexes: they halve insert speed; prefix terms need 3+ letters
    # instead (tracker/store/search_query.py), which keeps their term scans short.
    op.execute(
        f"CREATE VIRTUAL TABLE {fts} USING fts5({cols}, content='{table}', "
        f"content_rowid='{rowid}', tokenize=\"{tokenizer}\")"
    )
    op.execute(f"INSERT INTO {fts}({fts}, rank) VALUES ('rank', 'bm25({weights})')")
    # Rows stored before this migration. (Not FTS5 'rebuild': it would read the raw JSON.)
    op.execute(f"INSERT INTO {fts}(rowid, {cols}) SELECT {rowid}, {values(table)} FROM {table}")
    # An external-content index must be told the OLD values to remove them, hence 'delete'.
    delete = (f"INSERT INTO {fts}({fts}, rowid, {cols}) "
              f"VALUES ('delete', old.{rowid}, {values('old')});")
    insert = f"INSERT INTO {fts}(rowid, {cols}) VALUES (new.{rowid}, {values('new')});"
    op.execute(f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {table} BEGIN {insert} END")
    op.execute(f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {table} BEGIN {delete} END")
    # Only text changes touch the index (score updates do not).
    op.execute(f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {cols} ON {table} BEGIN "
               f"{delete} {insert} END")


def _postgres_create(table: str, exprs: tuple) -> None:
    weighted = " || ".join(
        f"setweight(to_tsvector('english'::regconfig, coalesce({expr}, '')), '{weight}')"
        for expr, weight in zip(exprs, "ABC", strict=True)
    )
    op.execute(
        f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
        f"GENERATED ALWAYS AS ({weighted}) STORED"
    )
    op.execute(f"CREATE INDEX ix_{table}_search_vector ON {table} USING gin (search_vector)")
