"""PostgreSQL full-text search reads punctuation as a word break, as SQLite's FTS5 does

PostgreSQL's text parser keeps "3.5" as one number and reads "CIFAR-100" as "cifar" and
"-100", while a query (tracker/store/search_query.py) and FTS5 split both at the
punctuation: "3.5", "CIFAR-100" or "GPT-3.5" found papers on SQLite and none on PostgreSQL.
The vectors are now built from the text with ASCII punctuation turned into spaces. Rewrites
both tables (as 0003 did: about 5 minutes per million papers, the table locked); SQLite
is unchanged.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 09:05:00
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# table -> expressions weighted A, B, C, as in 0002 (title > authors > text)
COLUMNS = {
    "papers": ("title", "(authors::jsonb)::text", "abstract"),
    "posts": ("title", "author", "summary_text"),
}


def _vector(exprs: tuple, words_only: bool) -> str:
    def text(expr: str) -> str:
        value = f"coalesce({expr}, '')"
        # [:punct:] of the C locale: ASCII punctuation, whatever the database's locale
        return f"regexp_replace({value}, '[!-/:-@[-`{{-~]+', ' ', 'g')" if words_only else value

    return " || ".join(
        f"setweight(to_tsvector('english'::regconfig, {text(expr)}), '{weight}')"
        for expr, weight in zip(exprs, "ABC", strict=True))


def _rebuild(words_only: bool) -> None:
    if op.get_bind().dialect.name == "sqlite":
        return
    for table, exprs in COLUMNS.items():
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_search_vector")
        # One ALTER TABLE: the storage is set before the single rewrite (see 0003).
        op.execute(f"ALTER TABLE {table} DROP COLUMN search_vector, ADD COLUMN search_vector "
                   f"tsvector GENERATED ALWAYS AS ({_vector(exprs, words_only)}) STORED"
                   + (", ALTER COLUMN search_vector SET STORAGE MAIN"
                      if table == "papers" else ""))
        op.execute(f"CREATE INDEX ix_{table}_search_vector ON {table} USING gin (search_vector)")


def upgrade() -> None:
    _rebuild(words_only=True)


def downgrade() -> None:
    _rebuild(words_only=False)
