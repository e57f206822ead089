"""Typed objects that cross layers. Components never hand ORM rows or library dicts around."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from tracker.errors import InputError

# arXiv ids: 2210.08340 since 2007, math/0211159 before (where a subject class may be
# written in, math.AG/0211159, though it is not part of the id)
ARXIV_NEW_ID = r"\d{4}\.\d{4,5}"
ARXIV_OLD_ID = r"[a-z][a-z\-]+(?:\.[A-Za-z]{2})?/\d{7}"


def safe_url(url: str | None) -> str:
    """The URL if it is http(s)/mailto with no control characters, else '': what the digest,
    Atom and BibTeX output link to (a feed may give javascript: or data: links)."""
    if not url:
        return ""
    url = url.strip()
    if any(ord(ch) < 32 or ch in "\x7f" for ch in url):
        return ""
    return url if urlsplit(url).scheme.lower() in ("http", "https", "mailto") else ""


def canonical_arxiv_id(value: str) -> str:
    """math.AG/0211159 -> math/0211159; new-style ids are left as they are."""
    if "/" in value:
        archive, number = value.split("/", 1)
        return f"{archive.split('.', 1)[0].lower()}/{number}"
    return value


def parse_item_id(item_id: str) -> tuple[str, str | int]:
    """("post", 12) for "post:12"; ("paper", "2210.08340") for an arXiv id, with or
    without a version, "arXiv:" prefix or abs/pdf URL. Malformed text is bad input; whether
    the item exists is the caller's question."""
    text = item_id.strip()
    if text.lower().startswith("post:"):
        number = text[5:].strip()
        # ASCII digits (str.isdigit() also passes '²') that fit the id column, a 32-bit
        # integer on PostgreSQL
        if not re.fullmatch(r"[0-9]{1,10}", number) or int(number) > 2**31 - 1:
            raise InputError(f"bad item id {item_id!r}", hint="blog posts look like post:12")
        return "post", int(number)
    # an arXiv id without its version or .pdf; other text (a label file's own ids) as it is
    text, found = _arxiv_form(text)
    text = found.group(1) if found else text
    if not text or any(c.isspace() for c in text):
        raise InputError(f"bad item id {item_id!r}", hint="e.g. 2210.08340 or post:12")
    return "paper", canonical_arxiv_id(text)


def named_version(item_id: str) -> int | None:
    """The version an arXiv id names (2210.08340v2, .../pdf/2210.08340v2.pdf: 2), or None."""
    _, found = _arxiv_form(item_id)
    return int(found.group(2)) if found and found.group(2) else None


_ARXIV_PREFIX = re.compile(r"^(?:https?://(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/|arxiv:)",
                           re.I)
_ARXIV_FORM = re.compile(rf"({ARXIV_NEW_ID}|{ARXIV_OLD_ID})(?:v(\d+))?(?:\.pdf)?", re.I)


def _arxiv_form(text: str) -> tuple[str, re.Match | None]:
    """(the text without an abs/pdf URL or "arXiv:" prefix, its match as an arXiv id)."""
    text = _ARXIV_PREFIX.sub("", text.strip())
    return text, _ARXIV_FORM.fullmatch(text)


def item_key(item_id: str) -> str:
    """The key an id is stored under ("2210.08340", "math/0211159", "post:12") whatever form
    it was written in, or the text itself when it is no item id (ids in label files)."""
    try:
        kind, key = parse_item_id(item_id)
    except InputError:
        return item_id.strip()
    return key if kind == "paper" else f"post:{key}"


@dataclass(frozen=True)
class Paper:
    """One arXiv paper, identified by its version-less id (e.g. 2210.08340, math/0211159)."""

    id: str
    version: int
    title: str
    abstract: str
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    primary_category: str | None = None
    published: datetime | None = None
    updated: datetime | None = None
    doi: str | None = None
    journal_ref: str | None = None
    comment: str | None = None

    @property
    def abs_url(self) -> str:
        return f"https://arxiv.org/abs/{self.id}"

    @property
    def pdf_url(self) -> str:
        return f"https://arxiv.org/pdf/{self.id}v{self.version}"


@dataclass(frozen=True)
class Post:
    """One blog entry. `guid` is the identity within its feed (guid, else link, else a hash;
    store/items.upsert_posts tells apart entries that share one)."""

    feed: str
    guid: str
    title: str
    link: str | None = None
    author: str | None = None
    summary_text: str = ""
    content_html: str = ""
    published: datetime | None = None
    refs: tuple[tuple[str, str], ...] = ()  # ("arxiv", "2210.08340") / ("doi", "10.1/x")
    # the date is the entry's last update (it gives no publication date): an edit moves it
    dated_by_update: bool = False


@dataclass(frozen=True)
class Score:
    """A relevance score in [0, 1] with the model that produced it and a short reason."""

    value: float
    model_version: str
    why: tuple[str, ...] = field(default_factory=tuple)
