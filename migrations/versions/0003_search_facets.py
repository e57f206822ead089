"""search speed: narrow copy of the filtered paper columns (SQLite); tsvector kept inline
and indexes for newest-first / best-first listings (PostgreSQL)

SQLite.

A search with a text query and filters (--since/--until, --min-score, --category) tests
every paper the text matches: tens of thousands for a common word in a large store. Reading
`published`, `score` and `categories` from `papers` costs a seek into a table whose rows are
wide (the abstract is stored inline), about one page per match. `papers_facets` holds just
those columns, keyed by the same rowid as the FTS index, so the filters are tested on a
table about 30 times smaller (5x faster per match; see bench/search.py), and only the
page of results is read from `papers`; a text query sorted by date or score reads its sort
keys there too. Triggers keep it in step on insert, update of those columns and delete, as
0002's triggers do for the full-text index.

PostgreSQL. Ranking a common term reads the tsvector of every match; 0002's column has the
default EXTENDED storage, so most vectors live out of line in the TOAST table and each costs
a TOAST index lookup and more page reads. STORAGE MAIN keeps them compressed in the row
(the heap grows by half, the total stays about the same): ranking is 2-3x faster.
The setting only applies to rows written after it, so the column is dropped and added again
(the table is rewritten and the GIN index rebuilt: minutes on a million papers).
Listings sort `DESC NULLS LAST` (unscored items last), which an ascending index cannot give
PostgreSQL in order (SQLite reads its indexes backwards for that): two indexes in that order
let `--sort score` and newest-first listings with filters stop after one page.

None of these objects are in the SQLAlchemy models (migrations/env.py skips them), as 0002's.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 08:05:00
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

FACETS = "papers_facets"
COLUMNS = ("published", "score", "categories")  # the same values as in papers (no casts)


# The same vector as 0002 (title A, authors B, abstract C).
TSVECTOR = " || ".join(
    f"setweight(to_tsvector('english'::regconfig, coalesce({expr}, '')), '{weight}')"
    for expr, weight in (("title", "A"), ("(authors::jsonb)::text", "B"), ("abstract", "C")))
PG_INDEXES = {
    "ix_papers_published_desc": "published DESC NULLS LAST",
    "ix_papers_score_desc": "score DESC NULLS LAST, published DESC NULLS LAST",
}


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        _postgres_upgrade()
        return
    cols = ", ".join(COLUMNS)

    def values(row: str) -> str:
        return ", ".join(f"{row}.{c}" for c in COLUMNS)

    # rowid = papers.rowid (as papers_fts); no declared types, so values are stored as
    # papers stores them and compare the same way.
    op.execute(f"CREATE TABLE {FACETS} (rowid INTEGER PRIMARY KEY, {cols})")
    op.execute(f"INSERT INTO {FACETS} (rowid, {cols}) SELECT rowid, {cols} FROM papers")
    op.execute(f"CREATE TRIGGER {FACETS}_ai AFTER INSERT ON papers BEGIN "
               f"INSERT INTO {FACETS} (rowid, {cols}) VALUES (new.rowid, {values('new')}); END")
    op.execute(f"CREATE TRIGGER {FACETS}_ad AFTER DELETE ON papers BEGIN "
               f"DELETE FROM {FACETS} WHERE rowid = old.rowid; END")
    sets = ", ".join(f"{c} = new.{c}" for c in COLUMNS)
    op.execute(f"CREATE TRIGGER {FACETS}_au AFTER UPDATE OF {cols} ON papers BEGIN "
               f"UPDATE {FACETS} SET {sets} WHERE rowid = new.rowid; END")


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        for name in PG_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
        # Rows already written stay inline; later ones follow the default again.
        op.execute("ALTER TABLE papers ALTER COLUMN search_vector SET STORAGE EXTENDED")
        return
    for suffix in ("ai", "ad", "au"):
        op.execute(f"DROP TRIGGER IF EXISTS {FACETS}_{suffix}")
    op.execute(f"DROP TABLE IF EXISTS {FACETS}")


def _postgres_upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_papers_search_vector")
    # One ALTER TABLE: the storage is set before the single rewrite that fills the column.
    op.execute("ALTER TABLE papers DROP COLUMN search_vector, "
               f"ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({TSVECTOR}) STORED, "
               "ALTER COLUMN search_vector SET STORAGE MAIN")
    op.execute("CREATE INDEX ix_papers_search_vector ON papers USING gin (search_vector)")
    for name, columns in PG_INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON papers ({columns})")
