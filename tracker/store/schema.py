"""SQLAlchemy 2.0 schema for the whole product. Migrations in migrations/ must match it
(tests run `alembic check`).

The tables are plain SQLAlchemy Core `Table`s (`papers`, `posts`, ...), so read-only paths
such as `tracker search` never import the ORM. The ORM classes (`PaperRow`, `PostRow`, ...,
and `Base`) are mapped onto those same tables the first time one of them is imported:
`from tracker.store.schema import PaperRow` works as usual, and costs the ORM import once.

Items are papers (key: version-less arXiv id) and blog posts (key: integer id; identity is
(feed, guid)). Tables that refer to "an item" carry two nullable foreign keys, paper_id and
post_id, with a check that exactly one is set, so the database itself keeps them honest.
"""

from __future__ import annotations

import threading
from datetime import UTC

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
)

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; pass an aware one")
        return value.astimezone(UTC)

    def bind_processor(self, dialect):
        if dialect.name != "sqlite":
            return super().bind_processor(dialect)

        # The text SQLAlchemy's SQLite DATETIME stores ("2024-01-02 03:04:05.000000"), made
        # by datetime's C isoformat in one step: the generic path costs several times more,
        # which shows on every ingested page (seven timestamps per paper, four of them the
        # batch's one `now`: the last value's text is kept, as one tuple for threads).
        last = [(None, None)]

        def process(value):
            if value is None:
                return None
            seen, stored = last[0]
            if value is seen:
                return stored
            if value.tzinfo is None:
                raise ValueError(f"naive datetime {value!r} given to the store; "
                                 "pass an aware one")
            utc = value if value.tzinfo is UTC else value.astimezone(UTC)
            stored = utc.isoformat(" ", "microseconds")[:26]  # without the "+00:00"
            last[0] = (value, stored)
            return stored
        return process

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Timestamp = UTCDateTime()
ONE_ITEM = "(paper_id IS NULL) <> (post_id IS NULL)"


metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _col(name: str, type_, *args, null: bool = False, **kwargs) -> Column:
    """A column; NOT NULL unless null=True (primary keys are never null)."""
    return Column(name, type_, *args, nullable=null, **kwargs)


def _ref(name: str, target: str, *, null: bool = False, **kwargs) -> Column:
    """A foreign key column (type taken from the target) that cascades deletes."""
    return Column(name, ForeignKey(target, ondelete="CASCADE"), nullable=null, **kwargs)


papers = Table(
    "papers", metadata,
    _col("id", String(64), primary_key=True),
    _col("version", Integer),
    _col("title", Text),
    _col("abstract", Text),
    _col("authors", JSON, default=list),
    _col("categories", JSON, default=list),
    _col("primary_category", String(32), null=True),
    _col("published", Timestamp, null=True),
    _col("updated", Timestamp, null=True, index=True),
    _col("doi", String(255), null=True),
    _col("journal_ref", Text, null=True),
    _col("comment", Text, null=True),
    _col("first_seen_at", Timestamp, index=True),
    # When the current version was stored; differs from first_seen_at for updates.
    _col("version_seen_at", Timestamp, index=True),
    # Current relevance score (history in `scores`), denormalised for fast filters and sorts.
    _col("score", Float, null=True),
    _col("score_model", String(64), null=True),
    # newest-first listings test a --min-score in the index (migration 0004); listings by
    # score sort only rows tied on (score, published) (0005)
    Index("ix_papers_published_score", "published", "score"),
    Index("ix_papers_score_published", "score", "published"),
)

paper_versions = Table(
    "paper_versions", metadata,
    _ref("paper_id", "papers.id", primary_key=True),
    _col("version", Integer, primary_key=True),
    _col("title", Text),
    _col("updated", Timestamp, null=True),
    _col("seen_at", Timestamp),
)

posts = Table(
    "posts", metadata,
    _col("id", Integer, primary_key=True, autoincrement=True),
    _col("feed", String(128), index=True),
    _col("guid", String(1024)),
    _col("link", Text, null=True),
    _col("title", Text),
    _col("author", Text, null=True),
    _col("summary_text", Text, default=""),
    _col("content_html", Text, default=""),  # sanitized with nh3
    _col("published", Timestamp, null=True, index=True),
    _col("first_seen_at", Timestamp, index=True),
    _col("score", Float, null=True, index=True),
    _col("score_model", String(64), null=True),
    UniqueConstraint("feed", "guid"),
)

# An arXiv id or DOI mentioned in a post; joined to papers at query time, so a post links
# to a paper even when the paper is stored after the post.
post_refs = Table(
    "post_refs", metadata,
    _ref("post_id", "posts.id", primary_key=True),
    _col("kind", String(8), primary_key=True),  # arxiv | doi
    _col("value", String(255), primary_key=True, index=True),
)

# Per-source cursor and health. name is 'arxiv' or a feed name.
source_state = Table(
    "source_state", metadata,
    _col("name", String(128), primary_key=True),
    _col("kind", String(16)),  # arxiv | feed
    _col("cursor", Timestamp, null=True),
    _col("etag", Text, null=True),
    _col("last_modified", Text, null=True),
    _col("validators_url", Text, null=True),  # the feed URL etag/last_modified came from
    _col("last_attempt_at", Timestamp, null=True),
    _col("last_success_at", Timestamp, null=True),
    _col("last_error", Text, null=True),
    _col("last_error_at", Timestamp, null=True),
    _col("last_warning", Text, null=True),
    _col("consecutive_failures", Integer, default=0),
)

# Score history: one row per (item, scoring run that changed it).
scores = Table(
    "scores", metadata,
    _col("id", Integer, primary_key=True, autoincrement=True),
    _ref("paper_id", "papers.id", null=True, index=True),
    _ref("post_id", "posts.id", null=True, index=True),
    _col("value", Float),
    _col("model_version", String(64)),
    _col("config_hash", String(32)),
    _col("why", JSON, default=list),  # top terms/keywords, short strings
    _col("scored_at", Timestamp),
    CheckConstraint(ONE_ITEM, name="one_item"),
)

# User feedback: this item is relevant / irrelevant.
labels = Table(
    "labels", metadata,
    _col("id", Integer, primary_key=True, autoincrement=True),
    _ref("paper_id", "papers.id", null=True),
    _ref("post_id", "posts.id", null=True),
    _col("label", String(16)),
    _col("created_at", Timestamp),
    CheckConstraint(ONE_ITEM, name="one_item"),
    CheckConstraint("label IN ('relevant', 'irrelevant')", name="label_value"),
    UniqueConstraint("paper_id"),
    UniqueConstraint("post_id"),
)

# The send ledger. A period is claimed by inserting its row (unique period_end), so two
# senders racing for the same period cannot both send.
digests = Table(
    "digests", metadata,
    _col("id", Integer, primary_key=True, autoincrement=True),
    _col("period_start", Timestamp),
    _col("period_end", Timestamp),
    _col("status", String(16)),
    _col("message_id", String(255), null=True),
    _col("recipients", JSON, default=list),
    _col("created_at", Timestamp),
    _col("sent_at", Timestamp, null=True),
    _col("error", Text, null=True),
    UniqueConstraint("period_end"),
    CheckConstraint("status IN ('sending', 'sent', 'failed')", name="status_value"),
)

digest_items = Table(
    "digest_items", metadata,
    _col("id", Integer, primary_key=True, autoincrement=True),
    _ref("digest_id", "digests.id", index=True),
    _ref("paper_id", "papers.id", null=True, index=True),
    _ref("post_id", "posts.id", null=True, index=True),
    _col("position", Integer),
    _col("section", Text, default=""),
    _col("score", Float, null=True),
    CheckConstraint(ONE_ITEM, name="one_item"),
)

job_runs = Table(
    "job_runs", metadata,
    _col("id", Integer, primary_key=True, autoincrement=True),
    _col("job", String(64), index=True),
    _col("started_at", Timestamp, index=True),
    _col("finished_at", Timestamp, null=True),
    _col("outcome", String(16)),  # running | ok | failed | abandoned
    _col("counts", JSON, default=dict),
    _col("error", Text, null=True),
    _col("host", String(255), null=True),
    _col("pid", Integer, null=True),
)

# A named lease in the database, so two workers never run the same job at once. A holder
# that crashed stops blocking others once expires_at has passed.
locks = Table(
    "locks", metadata,
    _col("name", String(64), primary_key=True),
    _col("holder", String(255)),
    _col("acquired_at", Timestamp),
    _col("expires_at", Timestamp),
)


# --- ORM classes, mapped onto the tables above on first import ----------------------------

_ORM_TABLES = {
    "PaperRow": papers, "PaperVersionRow": paper_versions, "PostRow": posts,
    "PostRefRow": post_refs, "SourceStateRow": source_state, "ScoreRow": scores,
    "LabelRow": labels, "DigestRow": digests, "DigestItemRow": digest_items,
    "JobRunRow": job_runs, "LockRow": locks,
}
_orm_lock = threading.Lock()


def __getattr__(name: str):
    if name != "Base" and name not in _ORM_TABLES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    with _orm_lock:
        if "Base" not in globals():
            _map_orm_classes()
    return globals()[name]


def _map_orm_classes() -> None:
    from sqlalchemy.orm import DeclarativeBase

    class Base(DeclarativeBase):
        metadata = globals()["metadata"]

    rows = {name: type(name, (Base,), {"__table__": table, "__module__": __name__})
            for name, table in _ORM_TABLES.items()}
    globals().update(rows, Base=Base)
