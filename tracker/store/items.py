"""SQL for ingested items and source state: papers, paper_versions, posts, post_refs,
source_state. Callers pass a Session; the use case commits (one transaction per page/feed).

Upserts read the existing rows of a batch with one query and write new rows with one
executemany, so a 200-entry page costs a handful of statements, not hundreds.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from tracker.models import Paper, Post
from tracker.store import insert_rows
from tracker.store.schema import PaperRow, PaperVersionRow, PostRefRow, PostRow, SourceStateRow
from tracker.store.scores import StoredItem

_PAPER_FIELDS = ("version", "title", "abstract", "authors", "categories", "primary_category",
                 "published", "updated", "doi", "journal_ref", "comment")
_POST_FIELDS = ("link", "title", "author", "summary_text", "content_html", "published")


@dataclass
class Upserted:
    new: list = field(default_factory=list)  # ids
    updated: list = field(default_factory=list)
    # the new and updated items as stored, with their previous score: what ingest scores
    # (built from the parsed entries and the stored rows read, so scoring reads nothing)
    changed: list[StoredItem] = field(default_factory=list)
    scored: list = field(default_factory=list)  # ids written with their current score


def _paper_values(paper: Paper) -> dict:
    values = {name: getattr(paper, name) for name in _PAPER_FIELDS}
    values["authors"] = list(paper.authors)
    values["categories"] = list(paper.categories)
    return values


def upsert_papers(session: Session, papers: list[Paper], now: datetime,
                  score=None) -> Upserted:
    """Store papers under their version-less id. A higher version updates the record and
    adds a paper_versions row (an update, not a new paper); the same version refreshes the
    metadata arXiv may change without a new version (categories, DOI, journal ref).

    `score(changed)`, if given, is called with the new and updated papers before anything
    is written and returns (model version, {id: score}) or None; new and updated rows are
    then written with their score (one write per paper, not an insert and an update).
    `Upserted.scored` lists those ids; the rest of `changed` and all history are the
    caller's to write."""
    latest: dict[str, Paper] = {}
    for paper in papers:  # a batch may hold the same paper twice (cross-lists, overlaps)
        if paper.id not in latest or paper.version > latest[paper.id].version:
            latest[paper.id] = paper
    if not latest:
        return Upserted()
    stored = {row.id: row for row in session.execute(
        select(PaperRow.id, PaperRow.version, PaperRow.categories, PaperRow.score,
               PaperRow.score_model).where(PaperRow.id.in_(list(latest))))}
    result = Upserted()
    inserts, changes, refreshes, versions = [], [], [], []
    for pid, paper in latest.items():
        old = stored.get(pid)
        if old is None:
            inserts.append({"id": pid, **_paper_values(paper), "first_seen_at": now,
                            "version_seen_at": now})
            result.new.append(pid)
            previous = (None, None)
        elif paper.version > old.version:
            changes.append({"id": pid, **_paper_values(paper), "version_seen_at": now})
            result.updated.append(pid)
            previous = (old.score, old.score_model)
        else:
            if paper.version == old.version:  # older versions come from stale mirrors: ignored
                refreshes.append({"id": pid, "categories": list(paper.categories),
                                  "primary_category": paper.primary_category, "doi": paper.doi,
                                  "journal_ref": paper.journal_ref, "comment": paper.comment})
                if list(paper.categories) != list(old.categories or []):
                    # a new cross-list: categories count in the score, so it is scored again
                    result.changed.append(StoredItem("paper", pid, paper.title, paper.abstract,
                                                     paper.categories, old.score,
                                                     old.score_model))
            continue
        result.changed.append(StoredItem("paper", pid, paper.title, paper.abstract,
                                         paper.categories, *previous))
        versions.append({"paper_id": pid, "version": paper.version, "title": paper.title,
                         "updated": paper.updated, "seen_at": now})
    current = score(result.changed) if score is not None and result.changed else None
    if current is not None:
        version, values = current
        for row in inserts + changes:
            row["score"], row["score_model"] = values[row["id"]], version
        result.scored = result.new + result.updated
    _insert_papers(session, inserts)
    for rows in (changes, refreshes):
        if rows:  # ORM bulk updates by primary key
            session.execute(update(PaperRow), rows)
    insert_rows(session, PaperVersionRow.__table__, versions)
    return result


# SQLite: new papers' full-text index rows, as migration 0002's insert trigger writes them
# (a test compares the two); the rowids after `?` are the batch just inserted.
_INDEX_PAPERS_AFTER = (
    "INSERT INTO papers_fts(rowid, title, abstract, authors) "
    "SELECT rowid, title, abstract, (SELECT group_concat(value, '; ') "
    "FROM json_each(papers.authors)) FROM papers WHERE rowid > ?")


def _insert_papers(session: Session, rows: list[dict]) -> None:
    """On SQLite, with the per-row index trigger standing aside, then indexed in one
    statement: the trigger costs as much again as the indexing (migration 0009)."""
    connection = session.connection()
    if not rows or connection.dialect.name != "sqlite":
        insert_rows(session, PaperRow.__table__, rows)
        return
    # new rows get rowids past the largest (no AUTOINCREMENT); the write lock is held
    before = connection.exec_driver_sql("SELECT coalesce(max(rowid), 0) FROM papers").scalar()
    connection.exec_driver_sql("INSERT INTO papers_fts_deferred VALUES (1)")
    try:
        insert_rows(session, PaperRow.__table__, rows)
    finally:
        connection.exec_driver_sql("DELETE FROM papers_fts_deferred")
    connection.exec_driver_sql(_INDEX_PAPERS_AFTER, (before,))


def stored_paper_ids(session: Session, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    return set(session.scalars(select(PaperRow.id).where(PaperRow.id.in_(ids))))


def upsert_posts(session: Session, posts: list[Post], now: datetime) -> Upserted:
    """Store posts by (feed, guid). A re-fetched entry is never new; if its text changed
    it is updated in place (and reported as updated). Refs are replaced with the post."""
    if not posts:
        return Upserted()
    groups: dict[tuple[str, str], dict[str, Post]] = {}
    for post in posts:  # the same entry twice in a feed: the first occurrence wins
        groups.setdefault((post.feed, post.guid), {}).setdefault(_locator(post), post)
    feeds = {feed for feed, _ in groups}
    wanted = {(feed, g) for feed, guid in groups for g in (guid, _other_scheme(guid))} | {
        (feed, _shared_guid(guid, post)) for (feed, guid), group in groups.items()
        for post in group.values()}
    rows = session.execute(
        select(PostRow.id, PostRow.feed, PostRow.guid, PostRow.score, PostRow.score_model,
               *[getattr(PostRow, f) for f in _POST_FIELDS])
        .where(PostRow.feed.in_(feeds), PostRow.guid.in_({g for _, g in wanted}))).all()
    stored = {(row.feed, row.guid): row for row in rows}
    result = Upserted()
    for (feed, guid), post in _keys(session, groups, stored):
        values = {name: getattr(post, name) for name in _POST_FIELDS}
        row = stored.get((feed, guid))
        if row is None:
            post_id = session.execute(insert(PostRow).values(
                feed=feed, guid=guid, first_seen_at=now, **values)
                .returning(PostRow.id)).scalar_one()
            result.new.append(post_id)
            previous = (None, None)
        else:
            post_id = row.id
            if all(getattr(row, k) == v for k, v in values.items()):
                continue
            session.execute(update(PostRow).where(PostRow.id == post_id).values(**values))
            result.updated.append(post_id)
            previous = (row.score, row.score_model)
        result.changed.append(StoredItem("post", post_id, post.title, post.summary_text or "",
                                         (), *previous))
        _replace_refs(session, post_id, post.refs)
    return result


# Some feeds give one id to several entries (a per-series counter, say: three posts with
# <id>/posts/1</id>). Such entries are told apart by their link, under a key of their own,
# "<guid> #<hash of the link>"; the entry that had the plain guid first keeps it.

def _locator(post: Post) -> str:
    return post.link or post.title


def _shared_prefix(guid: str) -> str:
    base = guid if len(guid) <= 1000 else "sha256:" + hashlib.sha256(guid.encode()).hexdigest()
    return f"{base} #"


def _shared_guid(guid: str, post: Post) -> str:
    return _shared_prefix(guid) + hashlib.sha256(_locator(post).encode()).hexdigest()[:16]


def _keys(session: Session, groups, stored) -> list[tuple[tuple[str, str], Post]]:
    """The (feed, stored guid) of every post of the batch."""
    keys = []
    for (feed, guid), group in groups.items():
        plain = stored.get((feed, guid))
        if plain is None and (feed, _other_scheme(guid)) in stored:
            # the blog moved to https (or a relative id now resolves against https)
            guid = _other_scheme(guid)
            plain = stored[(feed, guid)]
        for post in group.values():
            shared = (feed, _shared_guid(guid, post))
            if shared in stored:
                keys.append((shared, post))
            elif plain is None:
                keys.append(((feed, guid) if len(group) == 1 else shared, post))
            elif (plain.link or plain.title) == _locator(post):
                keys.append(((feed, guid), post))
            elif len(group) == 1 and not _reused(session, feed, guid, plain, post):
                keys.append(((feed, guid), post))  # the same entry; its link has changed
            else:
                keys.append((shared, post))
    return keys


def _other_scheme(guid: str) -> str:
    for this, other in (("http://", "https://"), ("https://", "http://")):
        if guid.startswith(this):
            return other + guid[len(this):]
    return guid


def _reused(session: Session, feed: str, guid: str, plain, post: Post) -> bool:
    """Whether the feed has given `guid` to another entry than the stored one: another
    publication date says so (an update date moves with every edit), as do entries that
    share the guid already."""
    if not post.dated_by_update and plain.published and post.published \
            and plain.published != post.published:
        return True
    prefix = _shared_prefix(guid)
    found = session.scalar(select(PostRow.id).where(  # substr: LIKE ignores case in SQLite
        PostRow.feed == feed, func.substr(PostRow.guid, 1, len(prefix)) == prefix).limit(1))
    return found is not None


def _replace_refs(session: Session, post_id: int, refs) -> None:
    session.execute(delete(PostRefRow).where(PostRefRow.post_id == post_id))
    unique = sorted({(kind, value[:255]) for kind, value in refs})
    if unique:
        session.execute(insert(PostRefRow), [
            {"post_id": post_id, "kind": kind, "value": value} for kind, value in unique])


def counts(session: Session) -> dict[str, int]:
    return {"papers": session.scalar(select(func.count()).select_from(PaperRow)),
            "posts": session.scalar(select(func.count()).select_from(PostRow))}


# --- source state: cursor and health -------------------------------------------------

def source_state(session: Session, name: str, kind: str) -> SourceStateRow:
    """The state row of a source, created on first use (flushed, not committed)."""
    row = session.get(SourceStateRow, name)
    if row is None:
        row = SourceStateRow(name=name, kind=kind, consecutive_failures=0)
        session.add(row)
        session.flush()
    return row


def advance_cursor(session: Session, name: str, kind: str, cursor: datetime | None) -> None:
    """Move the cursor forward (never back) to the newest item stored in this transaction."""
    if cursor is None:
        return
    row = source_state(session, name, kind)
    if row.cursor is None or cursor > row.cursor:
        row.cursor = cursor


KEEP = object()  # record_success(warning=KEEP): leave the last warning as it is (HTTP 304)


def http_cache(session: Session, name: str, url: str) -> tuple[str | None, str | None]:
    """The stored ETag and Last-Modified of a feed, for a conditional GET of `url`: none
    when they came from another URL (the feed moved in the config)."""
    row = session.get(SourceStateRow, name)
    if row is None or row.validators_url != url:
        return None, None
    return row.etag, row.last_modified


def record_success(session: Session, name: str, kind: str, now: datetime, *,
                   warning=None, url: str | None = None, etag: str | None = None,
                   last_modified: str | None = None) -> None:
    """Health after a good fetch; with `url`, the ETag/Last-Modified that came with what
    was just stored from it."""
    row = source_state(session, name, kind)
    row.last_attempt_at = now
    row.last_success_at = now
    row.consecutive_failures = 0
    if warning is not KEEP:
        row.last_warning = warning
    if url is not None:
        row.validators_url, row.etag, row.last_modified = url, etag, last_modified


def record_failure(session: Session, name: str, kind: str, now: datetime, error: str) -> None:
    row = source_state(session, name, kind)
    row.last_attempt_at = now
    row.last_error = error[:2000]
    row.last_error_at = now
    row.consecutive_failures = (row.consecutive_failures or 0) + 1


def source_health(session: Session) -> list[dict]:
    """Cursor and health of every source that has run, for `tracker status`."""
    rows = session.scalars(select(SourceStateRow).order_by(SourceStateRow.name))
    return [{"name": r.name, "kind": r.kind, "cursor": r.cursor,
             "last_attempt_at": r.last_attempt_at, "last_success_at": r.last_success_at,
             "last_error": r.last_error, "last_error_at": r.last_error_at,
             "last_warning": r.last_warning, "consecutive_failures": r.consecutive_failures,
             "healthy": not r.consecutive_failures} for r in rows]
