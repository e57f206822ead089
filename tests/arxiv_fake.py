"""A stand-in for the arXiv export API, served by tests/localserver.py (and bench/ingest.py).

Entries are written in the current API output format (see ../shared/fixtures/arxiv_api/
recorded_json): namespaces on <feed>, opensearch counts, pdf link last, <published> after
<category>. The server side honours what the real API does with our queries: the
lastUpdatedDate range in search_query, ascending order by update, start/max_results
paging, id_list lookups, and an empty feed past the end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

from tests.localserver import Reply, Request

HEAD = """<?xml version='1.0' encoding='UTF-8'?>
<feed xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/" \
xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns="http://www.w3.org/2005/Atom">
  <id>https://arxiv.org/api/SyntheticFeedId0000000000000</id>
  <title>arXiv Query: {query}</title>
  <updated>2026-04-12T22:09:27Z</updated>
  <link href="https://arxiv.org/api/query?{query}" type="application/atom+xml"/>
  <opensearch:itemsPerPage>{per_page}</opensearch:itemsPerPage>
  <opensearch:totalResults>{total}</opensearch:totalResults>
  <opensearch:startIndex>{start}</opensearch:startIndex>
"""

WORDS = ("neural cortex spiking plasticity representation learning dynamics brain model "
         "recurrent network hippocampus encoding prediction inference data signal").split()


@dataclass(frozen=True)
class Entry:
    id: str  # version-less
    version: int
    updated: datetime
    published: datetime
    title: str
    categories: tuple[str, ...] = ("q-bio.NC", "cs.LG")
    doi: str | None = None

    def bumped(self, when: datetime, title: str | None = None) -> Entry:
        return replace(self, version=self.version + 1, updated=when,
                       title=title or self.title + " (revised)")


def stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def entry_xml(e: Entry) -> str:
    words = " ".join(WORDS[(sum(map(ord, e.id)) + i) % len(WORDS)] for i in range(160))
    authors = "".join(f"""
    <author>
      <name>Author {i} {e.id[-3:]}</name>
    </author>""" for i in range(4))
    cats = "".join(f'\n    <category term="{c}" scheme="http://arxiv.org/schemas/atom"/>'
                   for c in e.categories)
    doi = f"\n    <arxiv:doi>{e.doi}</arxiv:doi>" if e.doi else ""
    vid = f"{e.id}v{e.version}"
    return f"""  <entry>
    <id>http://arxiv.org/abs/{vid}</id>
    <title>{escape(e.title)}</title>
    <updated>{stamp(e.updated)}</updated>
    <link href="https://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>
    <link href="https://arxiv.org/pdf/{vid}" rel="related" type="application/pdf" title="pdf"/>
    <summary>{escape(words)} &amp; more.</summary>{cats}
    <published>{stamp(e.published)}</published>
    <arxiv:comment>12 pages, 4 figures</arxiv:comment>
    <arxiv:primary_category term="{e.categories[0]}"/>{authors}{doi}
  </entry>
"""


def feed_xml(entries: list[Entry], total: int, start: int, per_page: int, query="q") -> str:
    head = HEAD.format(query=escape(query), per_page=per_page, total=total, start=start)
    return head + "".join(entry_xml(e) for e in entries) + "</feed>\n"


def make_entries(n: int, start: datetime, step=timedelta(minutes=7), prefix="2611") -> list[Entry]:
    return [Entry(id=f"{prefix}.{i:05d}", version=1, updated=start + i * step,
                  published=start + i * step, title=f"Synthetic paper {i} on neural coding")
            for i in range(n)]


_RANGE = re.compile(r"lastUpdatedDate:\[(\d{12}) TO (\d{12})\]")


class FakeArxiv:
    """A callable route: `server.route("/api/query", FakeArxiv(entries))`.
    `faults` maps a request number (0-based) to a Reply served instead of the real page."""

    def __init__(self, entries: list[Entry], faults: dict[int, Reply] | None = None):
        self.entries = list(entries)
        self.faults = dict(faults or {})
        self.outage: Reply | None = None  # when set, served to every request
        self.delay = 0.0  # seconds before each normal page (to kill a client mid-fetch)
        self.served = 0

    def __call__(self, request: Request) -> Reply:
        number, self.served = self.served, self.served + 1
        if self.outage is not None:
            return self.outage
        if number in self.faults:
            return self.faults[number]
        return Reply(200, self.page(parse_qs(request.query)),
                     {"Content-Type": "application/atom+xml; charset=UTF-8"}, delay=self.delay)

    def select(self, args: dict) -> list[Entry]:
        if args.get("id_list"):
            wanted = args["id_list"][0].split(",")
            return [e for e in self.entries if e.id in wanted]
        match = _RANGE.search(args.get("search_query", [""])[0])
        chosen = self.entries
        if match:
            low, high = (datetime.strptime(v, "%Y%m%d%H%M").replace(tzinfo=UTC)
                         for v in match.groups())
            high += timedelta(seconds=59)  # the range is inclusive to the minute
            chosen = [e for e in chosen if low <= e.updated <= high]
        return sorted(chosen, key=lambda e: e.updated)

    def page(self, args: dict) -> str:
        chosen = self.select(args)
        start = int(args.get("start", ["0"])[0])
        size = int(args.get("max_results", ["10"])[0])
        return feed_xml(chosen[start:start + size], len(chosen), start, size)
