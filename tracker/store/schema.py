"""SQLAlchemy 2.0 schema for the whole product. Migrations in migrations/ must match it
(tests run `alembic check`).

Items are papers (key: version-less arXiv id) and blog posts (key: integer id; identity is
(feed, guid)). Tables that refer to "an item" carry two nullable foreign keys, paper_id and
post_id, with a check that exactly one is set, so the database itself keeps them honest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

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

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


Timestamp = UTCDateTime()
ONE_ITEM = "(paper_id IS NULL) <> (post_id IS NULL)"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class PaperRow(Base):
    __tablename__ = "papers"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text)
    authors: Mapped[list] = mapped_column(JSON, default=list)
    categories: Mapped[list] = mapped_column(JSON, default=list)
    primary_category: Mapped[str | None] = mapped_column(String(32))
    published: Mapped[datetime | None] = mapped_column(Timestamp, index=True)
    updated: Mapped[datetime | None] = mapped_column(Timestamp, index=True)
    doi: Mapped[str | None] = mapped_column(String(255))
    journal_ref: Mapped[str | None] = mapped_column(Text)
    comment: Mapped[str | None] = mapped_column(Text)
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    # When the current version was stored; differs from first_seen_at for updates.
    version_seen_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    # Current relevance score (history in `scores`), denormalised for fast filters and sorts.
    score: Mapped[float | None] = mapped_column(Float, index=True)
    score_model: Mapped[str | None] = mapped_column(String(64))


class PaperVersionRow(Base):
    __tablename__ = "paper_versions"

    paper_id: Mapped[str] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    updated: Mapped[datetime | None] = mapped_column(Timestamp)
    seen_at: Mapped[datetime] = mapped_column(Timestamp)


class PostRow(Base):
    __tablename__ = "posts"
    __table_args__ = (UniqueConstraint("feed", "guid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    feed: Mapped[str] = mapped_column(String(128), index=True)
    guid: Mapped[str] = mapped_column(String(1024))
    link: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(Text)
    summary_text: Mapped[str] = mapped_column(Text, default="")
    content_html: Mapped[str] = mapped_column(Text, default="")  # sanitized with nh3
    published: Mapped[datetime | None] = mapped_column(Timestamp, index=True)
    first_seen_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    score: Mapped[float | None] = mapped_column(Float, index=True)
    score_model: Mapped[str | None] = mapped_column(String(64))


class PostRefRow(Base):
    """An arXiv id or DOI mentioned in a post; joined to papers at query time, so a post
    links to a paper even when the paper is stored after the post."""

    __tablename__ = "post_refs"

    post_id: Mapped[int] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # arxiv | doi
    value: Mapped[str] = mapped_column(String(255), primary_key=True, index=True)


class SourceStateRow(Base):
    """Per-source cursor and health. name is 'arxiv' or a feed name."""

    __tablename__ = "source_state"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # arxiv | feed
    cursor: Mapped[datetime | None] = mapped_column(Timestamp)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_success_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(Timestamp)
    last_warning: Mapped[str | None] = mapped_column(Text)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)


class ScoreRow(Base):
    """Score history: one row per (item, scoring run that changed it)."""

    __tablename__ = "scores"
    __table_args__ = (CheckConstraint(ONE_ITEM, name="one_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    paper_id: Mapped[str | None] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), index=True
    )
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    value: Mapped[float] = mapped_column(Float)
    model_version: Mapped[str] = mapped_column(String(64))
    config_hash: Mapped[str] = mapped_column(String(32))
    why: Mapped[list] = mapped_column(JSON, default=list)  # top terms/keywords, short strings
    scored_at: Mapped[datetime] = mapped_column(Timestamp)


class LabelRow(Base):
    """User feedback: this item is relevant / irrelevant."""

    __tablename__ = "labels"
    __table_args__ = (
        CheckConstraint(ONE_ITEM, name="one_item"),
        CheckConstraint("label IN ('relevant', 'irrelevant')", name="label_value"),
        UniqueConstraint("paper_id"),
        UniqueConstraint("post_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    paper_id: Mapped[str | None] = mapped_column(ForeignKey("papers.id", ondelete="CASCADE"))
    post_id: Mapped[int | None] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(Timestamp)


class DigestRow(Base):
    """The send ledger. A period is claimed by inserting its row (unique period_end), so two
    senders racing for the same period cannot both send."""

    __tablename__ = "digests"
    __table_args__ = (
        UniqueConstraint("period_end"),
        CheckConstraint("status IN ('sending', 'sent', 'failed')", name="status_value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    period_start: Mapped[datetime] = mapped_column(Timestamp)
    period_end: Mapped[datetime] = mapped_column(Timestamp)
    status: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str | None] = mapped_column(String(255))
    recipients: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(Timestamp)
    sent_at: Mapped[datetime | None] = mapped_column(Timestamp)
    error: Mapped[str | None] = mapped_column(Text)


class DigestItemRow(Base):
    __tablename__ = "digest_items"
    __table_args__ = (CheckConstraint(ONE_ITEM, name="one_item"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    digest_id: Mapped[int] = mapped_column(
        ForeignKey("digests.id", ondelete="CASCADE"), index=True
    )
    paper_id: Mapped[str | None] = mapped_column(
        ForeignKey("papers.id", ondelete="CASCADE"), index=True
    )
    post_id: Mapped[int | None] = mapped_column(
        ForeignKey("posts.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column(Integer)
    section: Mapped[str] = mapped_column(Text, default="")
    score: Mapped[float | None] = mapped_column(Float)


class JobRunRow(Base):
    __tablename__ = "job_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job: Mapped[str] = mapped_column(String(64), index=True)
    started_at: Mapped[datetime] = mapped_column(Timestamp, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(Timestamp)
    outcome: Mapped[str] = mapped_column(String(16))  # running | ok | failed | abandoned
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)


class LockRow(Base):
    """A named lease in the database, so two workers never run the same job at once.
    A holder that crashed stops blocking others once expires_at has passed."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(Timestamp)
    expires_at: Mapped[datetime] = mapped_column(Timestamp)

