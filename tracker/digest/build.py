"""Pure digest decisions: which period, which items, in which sections, which warnings.

Nothing here touches the database, the clock or the network: every function takes what it
needs (including `now`/period bounds) so the choices can be tested on plain values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

FIRST_PERIOD = timedelta(days=7)
# An item its source dates this long before the period is archive, not news: a newly added
# feed brings its whole back catalogue at once, a backfill years of papers.
ARCHIVE_AGE = timedelta(days=7)
POSTS_SECTION = "From the blogs"


@dataclass(frozen=True)
class Item:
    """One paper or post as the digest shows it (plain text everywhere; render escapes)."""

    kind: str  # paper | post
    id: str  # "2210.08340" or "post:12"
    title: str
    url: str | None
    score: float | None  # None: in by the user's label alone, not scored yet
    seen_at: datetime
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    why: tuple[str, ...] = ()
    abstract: str = ""
    source: str = "arXiv"  # feed name for posts
    updated_version: int | None = None  # set when this is a new version of an older paper
    refs: tuple[str, ...] = ()  # arXiv ids a post links to
    published: datetime | None = None  # posts: the date the blog gives, if any


@dataclass(frozen=True)
class SourceHealth:
    name: str
    last_attempt_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    consecutive_failures: int = 0


@dataclass
class Entry:
    item: Item
    related: list[Item] = field(default_factory=list)  # posts that link to this paper


@dataclass
class Section:
    title: str
    entries: list[Entry]


@dataclass
class Digest:
    start: datetime
    end: datetime
    sections: list[Section]
    fetched: int = 0
    relevant: int = 0
    warnings: list[str] = field(default_factory=list)
    omitted: int = 0  # relevant items left out (max_items, size cap)

    @property
    def items(self) -> list[Item]:
        """Every item shown, in reading order (posts beside papers included)."""
        return [item for section in self.sections for entry in section.entries
                for item in (entry.item, *entry.related)]

    @property
    def empty(self) -> bool:
        """Nothing relevant at all (not even items left out for size)."""
        return not self.sections and not self.omitted


def period(last_end: datetime | None, period_end: datetime) -> tuple[datetime, datetime] | None:
    """The period to send: from the end of the last sent digest (or a week back for the first
    one) to `period_end`; None when that period was already sent."""
    if last_end is not None and last_end >= period_end:
        return None
    return (last_end or period_end - FIRST_PERIOD), period_end


def _rank(score: float | None) -> tuple:
    """Sort key, best first; unscored items last."""
    return (score is None, -(score or 0.0))


def select(candidates: list[Item], max_items: int) -> tuple[list[Item], int]:
    """Best first (score, then newest, then id for a stable order), at most max_items.
    A post that several feeds carry (same link) is one entry, the best-scored copy, naming
    every feed. Returns (chosen, how many were left out)."""
    ranked = sorted(candidates, key=lambda i: (*_rank(i.score), -i.seen_at.timestamp(), i.id))
    feeds_of: dict[str, list[str]] = {}
    for item in ranked:
        if item.kind == "post" and item.url:
            feeds_of.setdefault(item.url, []).append(item.source)
    unique, shown = [], set()
    for item in ranked:
        if item.kind == "post" and item.url:
            if item.url in shown:
                continue
            shown.add(item.url)
            item = replace(item, source=", ".join(dict.fromkeys(feeds_of[item.url])))
        unique.append(item)
    return unique[:max_items], max(0, len(unique) - max_items)


def assemble(start: datetime, end: datetime, papers: list[Item], posts: list[Item],
             themes: list[tuple[str, list[int]]], *, fetched: int = 0, relevant: int = 0,
             warnings: list[str] | None = None, omitted: int = 0) -> Digest:
    """Lay out the chosen items: themed paper sections (`themes` index into `papers`), then
    the blog posts. A post that links to a paper in the digest sits beside that paper."""
    by_paper = {paper.id: Entry(paper) for paper in papers}
    own_posts = []
    for post in posts:
        home = next((by_paper[ref] for ref in post.refs if ref in by_paper), None)
        if home is None:
            own_posts.append(post)
        else:
            home.related.append(post)
    sections = [Section(title, [by_paper[papers[i].id] for i in members])
                for title, members in themes if members]
    if own_posts:
        sections.append(Section(POSTS_SECTION, [Entry(post) for post in own_posts]))
    return Digest(start, end, sections, fetched=fetched, relevant=relevant,
                  warnings=list(warnings or []), omitted=omitted)


def trimmed(digest: Digest, keep: int) -> Digest:
    """The same digest with only its `keep` most relevant entries, in their places; used to
    stay under the email size cap. Dropped items count as omitted."""
    entries = [entry for section in digest.sections for entry in section.entries]
    best = sorted(range(len(entries)), key=lambda i: _rank(entries[i].item.score))[:max(keep, 0)]
    return keeping(digest, {id(entries[i]) for i in best})


def keeping(digest: Digest, kept: set[int]) -> Digest:
    """The same digest with only the entries whose id() is in `kept`, in their places.
    Dropped items count as omitted."""
    sections = []
    for section in digest.sections:
        shown = [entry for entry in section.entries if id(entry) in kept]
        if shown:
            sections.append(Section(section.title, shown))
    dropped = len(digest.items) - sum(1 + len(e.related) for s in sections for e in s.entries)
    return Digest(digest.start, digest.end, sections, digest.fetched, digest.relevant,
                  digest.warnings, digest.omitted + dropped)


def entry_count(digest: Digest) -> int:
    return sum(len(section.entries) for section in digest.sections)


MAX_WARNINGS = 20  # source lines in one digest; with MAX_ERROR_CHARS, a few kB at most
MAX_ERROR_CHARS = 200


def health_warnings(sources: list[SourceHealth], configured: list[str], start: datetime,
                    end: datetime) -> list[str]:
    """One line per configured source that did not work in the period, so a source that
    failed all week is visible in the digest rather than silently missing."""
    state = {source.name: source for source in sources}
    warnings = []
    for name in configured:
        source = state.get(name)
        in_a_row = (f"{source.consecutive_failures} failure"
                    f"{'' if source.consecutive_failures == 1 else 's'} in a row") if source else ""
        # the error in short, on one line: `tracker status` has it whole
        error = excerpt(source.last_error or "", MAX_ERROR_CHARS) if source else ""
        detail = f"; last error: {error}" if error else ""
        if source is None or source.last_attempt_at is None:
            warnings.append(f"{name}: never fetched")
        elif source.last_success_at is None or source.last_success_at < start:
            since = "ever" if source.last_success_at is None else "all period"
            if source.last_attempt_at < start:
                warnings.append(f"{name}: not fetched this period{detail}")
            else:
                warnings.append(f"{name}: no successful fetch {since} ({in_a_row}{detail})")
        elif source.consecutive_failures > 0:
            warnings.append(f"{name}: failing since its last success ({in_a_row}{detail})")
    if len(warnings) > MAX_WARNINGS:  # an outage of many feeds: the email must still fit
        rest = len(warnings) - MAX_WARNINGS + 1
        warnings[MAX_WARNINGS - 1:] = [f"and {rest} more sources with problems (`tracker "
                                       "status` lists them all)"]
    return warnings


def short_authors(authors: tuple[str, ...], keep: int = 3) -> str:
    if len(authors) <= keep:
        return ", ".join(authors)
    return ", ".join(authors[:keep]) + " et al."


def excerpt(text: str, limit: int) -> str:
    """The first `limit` characters of `text`, cut at a word, whitespace collapsed."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(",;:.") + "…"
