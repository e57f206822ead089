"""The arXiv export API: polite paging, retries, and parsing of the Atom responses.

The `arxiv` package builds the query (Search, SortCriterion, SortOrder: the API's own names).
Its Client is not used for HTTP: it has no request timeout, ignores Retry-After, and hides
page boundaries (we commit one page per transaction and move the cursor per page). Its
feedparser-based parsing also tops out near 600 entries/s, so pages are parsed with lxml
instead (three times faster than the standard library's parser on a 200-entry page), each
entry's children read in one pass. HTTP goes through one requests.Session (the
package's own dependency), i.e. one connection, one request every `delay_seconds`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlencode

import arxiv
import requests
from lxml import etree

from tracker.errors import SourceError
from tracker.models import ARXIV_NEW_ID, ARXIV_OLD_ID, Paper, canonical_arxiv_id
from tracker.sources import composed, describe_request_error, read_body

log = logging.getLogger(__name__)

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"
OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
RESULT_CAP = 30_000  # the API serves at most this many results of one query
MAX_REREADS = 2  # times a window is read again when its listing changed under the pages
RETRY_AFTER_MAX = 300.0  # longer waits end the run; the next scheduled run resumes
USER_AGENT = "neuroai-tracker/0.1 (arXiv API client; +https://github.com/neuroai-tracker)"
_TITLE, _SUMMARY, _AUTHOR, _NAME, _CATEGORY = (
    f"{ATOM}{t}" for t in ("title", "summary", "author", "name", "category"))
_PRIMARY = f"{ARXIV}primary_category"
# The response is untrusted text: no external entities, no network.
_PARSER = etree.XMLParser(resolve_entities="internal", no_network=True)
_ENTRY_ID = re.compile(rf"/abs/(?P<id>{ARXIV_NEW_ID}|{ARXIV_OLD_ID})(?:v(?P<version>\d+))?$")


@dataclass(frozen=True)
class Page:
    total: int
    start: int
    papers: list[Paper]
    skipped: int = 0  # entries that could not be read (missing id/title)
    # every entry's (id text, updated text), readable or not: what window_pages checks
    # the pages follow on by
    entries: tuple[tuple[str, str], ...] = ()


class Retryable(Exception):
    """A failure worth another attempt; `wait` is what the server asked for, if anything."""

    def __init__(self, message: str, wait: float | None = None):
        super().__init__(message)
        self.wait = wait


class GaveUp(SourceError):
    """The API gave no usable answer within the retries (down, unreachable, overloaded)."""


class ArxivClient:
    def __init__(self, api_url: str, *, delay_seconds: float, timeout_seconds: float,
                 max_retries: int, sleep=time.sleep):
        self.api_url = api_url
        self.delay = delay_seconds
        self.timeout = timeout_seconds
        self.max_retries = max_retries
        self._sleep = sleep
        self._last_request: float | None = None
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT

    def close(self) -> None:
        self._session.close()

    def get_page(self, params: dict[str, str], *, expect_entries: bool) -> Page:
        """One page, retried on 429/5xx, timeouts, broken XML and unexpected empty pages."""
        for attempt in range(self.max_retries + 1):
            try:
                page = parse_page(self._request(params))
                # no entry at all (unreadable ones count: they are errors, not a glitch)
                if expect_entries and not page.entries and page.start < page.total:
                    raise Retryable(f"empty page at start={page.start} of {page.total}")
                return page
            except Retryable as exc:
                if attempt == self.max_retries:
                    raise GaveUp(
                        f"arXiv API: {exc} (gave up after {attempt + 1} attempts)",
                        hint="the next fetch resumes from the last stored page",
                    ) from None
                wait = exc.wait if exc.wait is not None else self.delay * 2 ** attempt
                log.warning("arXiv API: %s; retrying in %.1f s", exc, wait)
                self._sleep(min(wait, RETRY_AFTER_MAX))
        raise AssertionError("unreachable")

    def _request(self, params: dict[str, str]) -> bytes:
        self._pace()
        url = f"{self.api_url}?{urlencode(params)}"
        try:
            with self._session.get(url, timeout=self.timeout, stream=True) as resp:
                body = read_body(resp, self.timeout)
        except requests.Timeout:
            raise Retryable(f"no answer within {self.timeout:g} s") from None
        except requests.RequestException as exc:
            raise Retryable(f"connection failed: {describe_request_error(exc)}") from None
        finally:
            self._last_request = time.monotonic()
        if resp.status_code == 200:
            return body
        if resp.status_code == 429 or resp.status_code >= 500:
            wait = _retry_after(resp.headers.get("Retry-After"))
            if wait is not None and wait > RETRY_AFTER_MAX:
                raise SourceError(f"arXiv API: HTTP {resp.status_code}, asked to wait {wait:.0f} s",
                                  hint="try again later")
            raise Retryable(f"HTTP {resp.status_code}",
                            None if wait is None else max(wait, self.delay))
        raise SourceError(f"arXiv API: HTTP {resp.status_code}: {_api_error(body)}",
                          hint="check [arxiv] api_url, categories and query")

    def _pace(self) -> None:
        """arXiv's rule: at most one request every `delay` seconds."""
        if self._last_request is not None:
            remaining = self.delay - (time.monotonic() - self._last_request)
            if remaining > 0:
                self._sleep(remaining)


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _api_error(body: bytes) -> str:
    """The message of arXiv's error feed (an entry whose id is .../api/errors#...)."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError:
        return "(no readable error message)"
    for entry in root.iter(f"{ATOM}entry"):
        text, *_ = _children(entry)
        if "/api/errors" in (text.get(f"{ATOM}id") or ""):
            return _clean(text.get(_SUMMARY)) or "error"
    return "(no readable error message)"


def parse_page(body: bytes) -> Page:
    """Parse one API response. Broken XML is retryable; an error feed is not."""
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise Retryable(f"malformed XML ({exc})") from None
    if root.tag != f"{ATOM}feed":
        raise Retryable(f"not an Atom feed (root element {root.tag!r})")
    papers, skipped, entries = [], 0, []
    for entry in root.iter(f"{ATOM}entry"):
        text, authors, categories, primary = _children(entry)
        entry_id = text.get(f"{ATOM}id") or ""
        entries.append((entry_id.strip(), (text.get(f"{ATOM}updated") or "").strip()))
        if "/api/errors" in entry_id:
            raise SourceError(f"arXiv API error: {_clean(text.get(_SUMMARY))}",
                              hint="check [arxiv] categories and query")
        paper = _paper(entry_id, text, authors, categories, primary)
        if paper is None:
            skipped += 1
        else:
            papers.append(paper)
    total = _int(root.findtext(f"{OPENSEARCH}totalResults"), len(papers))
    start = _int(root.findtext(f"{OPENSEARCH}startIndex"), 0)
    return Page(total=total, start=start, papers=papers, skipped=skipped,
                entries=tuple(entries))


def _children(entry) -> tuple[dict, list, list, str | None]:
    """An entry's children in one pass (a findtext per field costs more than the parse):
    the text of the first child of each other tag, the author names, the distinct category
    terms and the primary category."""
    text: dict = {}
    authors, categories, primary = [], [], None
    for child in entry:
        tag = child.tag
        if tag == _AUTHOR:  # its first name element (findtext costs 3x this loop)
            authors.append(next((part.text for part in child if part.tag == _NAME), None))
        elif tag == _CATEGORY:
            term = child.get("term")
            if term and term not in categories:
                categories.append(term)
        elif tag == _PRIMARY:
            primary = child.get("term") if primary is None else primary
        elif tag not in text:
            text[tag] = child.text
    return text, authors, categories, primary


def _paper(entry_id: str, text: dict, authors: list, categories: list,
           primary: str | None) -> Paper | None:
    match = _ENTRY_ID.search(entry_id.strip())
    title = clean_text(text.get(_TITLE))
    if not match or not title:
        log.warning("skipping an arXiv entry without a usable id or title: %r", entry_id)
        return None
    # without a (readable) first-version date, the latest one's: a paper always has a date
    # to sort and filter by
    published = _date(text.get(f"{ATOM}published")) or _date(text.get(f"{ATOM}updated"))
    return Paper(
        id=canonical_arxiv_id(match["id"]),
        version=int(match["version"] or 1),
        title=title,
        abstract=clean_text(text.get(_SUMMARY)),
        authors=tuple(filter(None, map(clean_text, authors))),
        categories=tuple(categories),
        primary_category=primary,
        published=published,
        updated=_date(text.get(f"{ATOM}updated")) or published,
        # the paper's own DOI first; an erratum's may follow it in the same element
        doi=(_clean(text.get(f"{ARXIV}doi")).split() or [None])[0],
        journal_ref=_clean(text.get(f"{ARXIV}journal_ref")) or None,
        comment=_clean(text.get(f"{ARXIV}comment")) or None,
    )


# A LaTeX accent as abstracts (and a few names) spell them: Schr\"odinger, Erd\H{o}s,
# {\'e}, \'{\i}. Read as the letter it stands for, it displays, searches and scores as
# one word ("Schr" and "odinger" otherwise).
_ACCENT = re.compile(r"""(\{)?(?<!\\)\\(?:(["'`^~=.])\s*|([cvuHrk])\s*(?=\{))"""
                     r"(?:\{\s*(\\i|[A-Za-z])\s*\}|(\\i(?![A-Za-z]) ?|[A-Za-z]))(?(1)\})")
_MARKS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303",
          "=": "\u0304", ".": "\u0307", "c": "\u0327", "v": "\u030c", "u": "\u0306",
          "H": "\u030b", "r": "\u030a", "k": "\u0328"}


def _accented(match: re.Match) -> str:
    """The letter and the combining accent (composed into one letter by clean_text)."""
    letter = match[4] or match[5]
    base = "i" if letter.startswith("\\") else letter  # \i: a dotless i for the accent
    return base + _MARKS[match[2] or match[3]]


def clean_text(text: str | None) -> str:
    """_clean, and LaTeX accents as letters (titles, abstracts, names), composed: arXiv
    text as the store holds it (label files, which hold it as the API gives it, too)."""
    text = _clean(text)
    return composed(_ACCENT.sub(_accented, text) if "\\" in text else text)


def _clean(text: str | None) -> str:
    """Whitespace runs (arXiv wraps titles and abstracts) to one space; no NUL (PostgreSQL)."""
    if not text:
        return ""
    return " ".join(text.replace("\x00", "").split())  # split() is ~5x faster than re.sub


def _int(text: str | None, default: int) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        return default


def _date(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def window_query(categories: list[str], extra: str, since: datetime, until: datetime) -> str:
    """Entries in the categories (and the extra query) last updated within [since, until]:
    new submissions and new versions alike. The API's date resolution is a minute."""
    parts = []
    if categories:
        parts.append("(" + " OR ".join(f"cat:{c}" for c in categories) + ")")
    if extra.strip():
        parts.append(f"({extra.strip()})")
    stamp = "%Y%m%d%H%M"
    parts.append(f"lastUpdatedDate:[{since.astimezone(UTC):{stamp}} TO "
                 f"{until.astimezone(UTC):{stamp}}]")
    return " AND ".join(parts)


def _params(search: arxiv.Search, start: int, size: int) -> dict[str, str]:
    params = {"start": str(start), "max_results": str(size)}
    if search.query:
        params["search_query"] = search.query
        params["sortBy"] = search.sort_by.value
        params["sortOrder"] = search.sort_order.value
    if search.id_list:
        params["id_list"] = ",".join(search.id_list)
    return params


def window_pages(client: ArxivClient, categories: list[str], extra: str, since: datetime,
                 until: datetime, page_size: int) -> Iterator[Page]:
    """All papers of one date window, oldest update first, each once. A window with more
    results than the API serves is split in two.

    The listing can change between two requests: a paper revised meanwhile leaves the
    window (its new update time is past `until`), and every later entry moves up one place,
    so paging on by count would skip one. Each page therefore starts a few entries early
    and is yielded only if its first entry was read before, i.e. it follows on without a
    gap; if not, more moved up than that, and the window is read again from the start
    (papers already read are not yielded twice)."""
    search = arxiv.Search(query=window_query(categories, extra, since, until),
                          sort_by=arxiv.SortCriterion.LastUpdatedDate,
                          sort_order=arxiv.SortOrder.Ascending)
    # an empty first page that reports results is the API's flakiness too: retried
    first = client.get_page(_params(search, 0, page_size), expect_entries=True)
    if first.total > RESULT_CAP and until - since > timedelta(minutes=2):
        middle = since + (until - since) / 2
        yield from window_pages(client, categories, extra, since, middle, page_size)
        yield from window_pages(client, categories, extra, middle, until, page_size)
        return
    overlap = max(1, page_size // 40)
    read: set[tuple[str, int]] = set()
    seen: set[tuple[str, str]] = set()  # entries, readable or not (see Page.entries)
    page, start, rereads, asked = first, 0, 0, page_size
    while True:
        fresh = [p for p in page.papers if (p.id, p.version) not in read]
        read.update((p.id, p.version) for p in page.papers)
        new_entries = [e for e in page.entries if e not in seen]
        seen.update(new_entries)
        # unreadable entries counted once, not again when a page re-reads them
        yield Page(page.total, start, fresh, max(0, len(new_entries) - len(fresh)))
        start += len(page.papers) + page.skipped
        # a full page may have more behind it, whatever total the API reported this time
        # (it has shrunk between two pages: stopping there lost the rest for good)
        short = len(page.entries) < asked
        if not (page.papers or page.skipped) or start >= RESULT_CAP \
                or (start >= page.total and short):
            if page.total > RESULT_CAP:  # too short a window to split: the rest is out of reach
                lost = page.total - RESULT_CAP
                log.warning("arXiv lists %d entries updated %s .. %s; the API serves at most "
                            "%d: %d cannot be fetched", page.total, f"{since:%Y-%m-%d %H:%M}",
                            f"{until:%H:%M}", RESULT_CAP, lost)
                yield Page(page.total, start, [], lost)  # counted as errors
            return
        back = min(overlap, start)
        asked = size = min(page_size, RESULT_CAP - start + back)
        page = client.get_page(_params(search, start - back, size), expect_entries=True)
        start -= back
        if not page.entries or page.entries[0] not in seen:
            rereads += 1
            if rereads > MAX_REREADS:
                raise SourceError("the arXiv listing kept changing while it was read",
                                  hint="the next fetch reads this window again")
            log.info("arXiv listing changed while it was read; reading the window again")
            page, start = client.get_page(_params(search, 0, page_size), expect_entries=True), 0
            asked = page_size


def id_pages(client: ArxivClient, ids: list[str], chunk: int = 100) -> Iterator[Page]:
    """Papers by id (any version-less id, old or new style), `chunk` ids per request."""
    for i in range(0, len(ids), chunk):
        part = ids[i:i + chunk]
        search = arxiv.Search(id_list=part)
        yield client.get_page(_params(search, 0, len(part)), expect_entries=False)


def date_chunks(since: datetime, until: datetime, days: int) -> Iterator[tuple[datetime, datetime]]:
    """[since, until] cut into windows of `days` (the last one shorter)."""
    step = timedelta(days=days)
    start = since
    while start < until:
        end = min(start + step, until)
        yield start, end
        start = end
