"""Blog feeds: HTTP with a timeout, a size cap and conditional GET; parsing with feedparser.

feedparser gets the bytes, never a URL, so it does no network I/O of its own; the response
headers that change how a feed is read (charset in Content-Type, Content-Location for
relative links, Content-Language) are passed along with them.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import feedparser
import nh3
import requests

from tracker.errors import SourceError
from tracker.models import ARXIV_NEW_ID, ARXIV_OLD_ID, Post, canonical_arxiv_id
from tracker.sources import BodyTooLarge, composed, describe_request_error, read_body

log = logging.getLogger(__name__)

_PASSED_HEADERS = ("content-type", "content-location", "content-language")
_ARXIV_LINK = re.compile(
    rf"arxiv\.org/(?:(?:abs|pdf|html)/|ftp/arxiv/papers/\d{{4}}/)({ARXIV_NEW_ID}|{ARXIV_OLD_ID})"
    r"(?:v\d+)?", re.IGNORECASE)
_ARXIV_TEXT = re.compile(rf"\barxiv:\s?({ARXIV_NEW_ID}|{ARXIV_OLD_ID})(?:v\d+)?", re.IGNORECASE)
_ARXIV_DOI = re.compile(rf"10\.48550/arxiv\.({ARXIV_NEW_ID})", re.IGNORECASE)
_DOI = re.compile(r"\b(10\.\d{4,9}/[^\s\"'<>&]+)")
# what a publisher's URL adds after the DOI: a query or fragment, a page or format suffix
_DOI_TAIL = re.compile(
    r"[?#].*$|/(?:full|html|pdf|epdf|abstract|fulltext|full-text|meta|figures|references)/?$"
    r"|\.(?:full|pdf|abstract|html|full-text|article-info|article-metrics)$", re.IGNORECASE)
_BIORXIV_VERSION = re.compile(r"^(10\.1101/[\d.]+)v\d+$")  # bioRxiv/medRxiv: ...522222v1
# a tag that starts a new line on screen: its text must not run into the text before it
_BLOCK_TAG = re.compile(
    r"<(?=/?(?:p|br|div|li|dt|dd|h[1-6]|tr|td|th|blockquote|pre|hr|section|article|figcaption"
    r"|ul|ol|table)\b)", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
# C0 and C1 control characters but tab and line breaks (made spaces in text): NUL, which
# PostgreSQL refuses, and ESC and the like, which would reach terminals, HTML and TeX
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x84\x86-\x9f]")  # \x85: a line break
GUID_MAX = 1024
TEXT_MAX = 100_000  # characters of a post's plain text (a long essay is 50,000)
LINK_MAX = 4096  # longer is no link a reader could follow (servers refuse URLs over 8 kB)
AUTHOR_MAX = 300


@dataclass(frozen=True)
class FeedResponse:
    status: int  # 200 or 304
    body: bytes = b""
    headers: dict[str, str] | None = None
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    posts: list[Post]
    warning: str | None = None  # feedparser had to recover from broken input
    skipped: int = 0


def fetch(url: str, *, etag: str | None, last_modified: str | None, timeout: float,
          max_bytes: int, user_agent: str) -> FeedResponse:
    """GET the feed; 304 when unchanged since the stored ETag/Last-Modified."""
    headers = {"User-Agent": user_agent, "Accept": "application/atom+xml, application/rss+xml, "
               "application/rdf+xml;q=0.9, application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        with requests.get(url, headers=headers, timeout=timeout, stream=True) as resp:
            if resp.status_code == 304:
                return FeedResponse(304, etag=etag, last_modified=last_modified)
            if resp.status_code != 200:
                busy = resp.status_code == 429 or resp.status_code >= 500
                raise SourceError(f"HTTP {resp.status_code} from {url}",
                                  hint="the server is busy or down; the next fetch tries "
                                       "again" if busy else "check the feed URL in [[feeds]]")
            try:
                body = read_body(resp, timeout, max_bytes)
            except BodyTooLarge:
                raise SourceError(f"{url} is larger than {max_bytes} bytes",
                                  hint="raise [feed_fetch] max_bytes if the feed is genuine"
                                  ) from None
            resp_headers = {k.lower(): v for k, v in resp.headers.items()}
            # after a redirect, relative links resolve against where the feed really is
            resp_headers.setdefault("content-location", resp.url)
    except requests.Timeout:
        raise SourceError(f"no answer from {url} within {timeout:g} s") from None
    except requests.RequestException as exc:
        raise SourceError(f"cannot fetch {url}: {describe_request_error(exc)}") from None
    return FeedResponse(200, body, resp_headers, resp_headers.get("etag"),
                        resp_headers.get("last-modified"))


def parse(name: str, url: str, body: bytes, headers: dict[str, str] | None) -> ParsedFeed:
    """Posts from a feed body. Keeps whatever feedparser recovers from broken XML (with a
    warning); raises SourceError only when nothing feed-like could be read at all."""
    passed = {k: v for k, v in (headers or {}).items() if k in _PASSED_HEADERS}
    passed.setdefault("content-location", url)  # the document URI, for relative links
    parsed = feedparser.parse(body, response_headers=passed)
    warning = None
    problem = parsed.get("bozo_exception")
    # a feed served as text/html or text/plain, or whose declared charset was not its real
    # one (text/xml without a charset means us-ascii), is read all the same: nothing to report
    benign = (feedparser.NonXMLContentType, feedparser.CharacterEncodingOverride)
    if parsed.bozo and not isinstance(problem, benign):
        warning = f"ill-formed feed: {_describe(problem)}"
    if not parsed.entries and not parsed.get("version"):
        raise SourceError(f"{url} is not an RSS/Atom feed ({warning or 'no feed elements'})",
                          hint="open the URL in a browser; is it still the blog's feed?")
    posts, skipped = [], 0
    for entry in parsed.entries:
        if not (entry.get("title") or entry.get("link") or _content_html(entry)):
            skipped += 1  # a fragment (e.g. cut off mid-entry): nothing to show or identify
            continue
        try:
            posts.append(_post(name, entry))
        except (TypeError, ValueError, AttributeError) as exc:  # one odd entry, not the feed
            skipped += 1
            log.warning("feed %s: skipped an entry: %s", name, exc)
    if skipped:
        warning = (warning + "; " if warning else "") + f"{skipped} entries skipped"
    return ParsedFeed(posts, warning, skipped)


def _describe(exc) -> str:
    text = str(exc) if exc is not None else "unknown problem"
    return f"{type(exc).__name__}: {text}"[:300] if exc is not None else text


def _post(feed: str, entry) -> Post:
    title = _shortened(_title(entry), 1_000) or "(untitled)"
    link = _CONTROL.sub("", entry.get("link") or "") or None  # PostgreSQL refuses NUL
    if link and len(link) > LINK_MAX:
        link = None
    dated = _date(entry.get("published_parsed") or entry.get("updated_parsed"))
    dated_by_update = dated is not None and not entry.get("published_parsed")
    # identity takes the date as given: one that becomes plausible later is the same entry
    published = dated if dated and _FIRST_POSSIBLE <= dated <= datetime.now(UTC) + _CLOCK_SKEW \
        else None
    content = _content_html(entry)
    # a summary that is only markup (an image, say) says less than the content
    summary = _shortened(plain_text(entry.get("summary", "")) or plain_text(content))
    author = (entry.get("author_detail") or {}).get("name") or entry.get("author", "")
    searchable = " ".join([link or "", content, entry.get("summary", ""),
                           *(lk.get("href", "") for lk in entry.get("links", []))])
    return Post(
        feed=feed,
        guid=_identity(entry, title, dated, summary),  # from the text as given, as before
        title=composed(title),
        link=link,
        author=composed(_shortened(plain_text(author), AUTHOR_MAX)) or None,
        summary_text=composed(summary),
        # after cleaning: it decodes entities (&#27;) into the characters
        content_html=_CONTROL.sub("", nh3.clean(content)) if content else "",
        published=published,
        refs=extract_refs(searchable),
        dated_by_update=dated_by_update,
    )


# No post predates the web; one dated ahead of the clock would head date-sorted listings
# for years. Such a date says nothing, and the post is stored undated (first seen decides).
_FIRST_POSSIBLE = datetime(1991, 1, 1, tzinfo=UTC)
_CLOCK_SKEW = timedelta(days=1)


def _shortened(text: str, limit: int = TEXT_MAX) -> str:
    """At most `limit` characters, cut at a word break: the digest shows an excerpt, and
    PostgreSQL refuses a search vector over 1 MB (it failed the whole feed)."""
    if len(text) <= limit:
        return text
    return text[:limit - 1].rsplit(" ", 1)[0] + "…"


def _title(entry) -> str:
    """The title as text. A plain-text title is text already: `List<String>` is not a tag."""
    title = entry.get("title", "")
    if (entry.get("title_detail") or {}).get("type") == "text/plain":
        return _SPACE.sub(" ", _CONTROL.sub("", title)).strip()
    return plain_text(title)


def _identity(entry, title: str, published: datetime | None, summary: str) -> str:
    """guid, else link, else a hash of title + date; over-long values are hashed too.
    An entry with neither title nor date is told apart by its text."""
    value = (entry.get("id") or "").strip() or (entry.get("link") or "").strip()
    value = value.replace("\x00", "")
    if not value:
        stamp = published.isoformat() if published else ""
        key = f"{title}\n{stamp}"
        if title == "(untitled)" and not stamp:
            key += f"\n{summary}"
        value = "sha256:" + hashlib.sha256(key.encode()).hexdigest()
    if len(value) > GUID_MAX:
        value = "sha256:" + hashlib.sha256(value.encode()).hexdigest()
    return value


def _content_html(entry) -> str:
    """The fullest HTML the entry has: content:encoded / atom content, else the summary."""
    for item in entry.get("content", []) or []:
        if item.get("value"):
            return item["value"]
    return entry.get("summary", "") or ""


def plain_text(fragment: str) -> str:
    """HTML to one line of text: tags (and script/style bodies) dropped, entities decoded,
    a space where a block or line break kept words apart."""
    if not fragment:
        return ""
    spaced = _BLOCK_TAG.sub(" <", _CONTROL.sub("", fragment))
    stripped = nh3.clean(spaced, tags=set(), attributes={})
    # entities may encode control characters too (&#27;)
    return _SPACE.sub(" ", _CONTROL.sub("", html.unescape(stripped))).strip()


def _date(parsed) -> datetime | None:
    if not parsed:
        return None
    try:
        return datetime.fromtimestamp(calendar.timegm(parsed), UTC)
    except (OverflowError, ValueError, OSError):
        return None


def _doi_proper(found: str) -> str:
    """The DOI in a match that may run on into a URL's tail or the sentence around it."""
    doi = found.rstrip(".,;:)]}")
    while (shorter := _DOI_TAIL.sub("", doi).rstrip(".,;:)]}/")) != doi:
        doi = shorter
    return _BIORXIV_VERSION.sub(r"\1", doi)


def extract_refs(text: str) -> tuple[tuple[str, str], ...]:
    """arXiv ids (version-less) and DOIs mentioned in links or text."""
    refs = set()
    for pattern in (_ARXIV_LINK, _ARXIV_TEXT, _ARXIV_DOI):
        refs.update(("arxiv", canonical_arxiv_id(m.group(1))) for m in pattern.finditer(text))
    for match in _DOI.finditer(text):
        doi = _doi_proper(match.group(1))
        if not doi.lower().startswith("10.48550/arxiv."):
            refs.add(("doi", doi.lower()))
    return tuple(sorted(refs))
