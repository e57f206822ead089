"""Typed objects that cross layers. Components never hand ORM rows or library dicts around."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

# arXiv ids: 2210.08340 since 2007, math/0211159 before (where a subject class may be
# written in, math.AG/0211159, though it is not part of the id)
ARXIV_NEW_ID = r"\d{4}\.\d{4,5}"
ARXIV_OLD_ID = r"[a-z][a-z\-]+(?:\.[A-Za-z]{2})?/\d{7}"


def canonical_arxiv_id(value: str) -> str:
    """math.AG/0211159 -> math/0211159; new-style ids are left as they are."""
    if "/" in value:
        archive, number = value.split("/", 1)
        return f"{archive.split('.', 1)[0].lower()}/{number}"
    return value


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


@dataclass(frozen=True)
class Score:
    """A relevance score in [0, 1] with the model that produced it and a short reason."""

    value: float
    model_version: str
    why: tuple[str, ...] = field(default_factory=tuple)
