"""Output writers: every format parses back with the data intact, including hostile text."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime

import feedparser

from tracker.cli import formats

NASTY = 'A {brace} \\cmd 50% & $x_1$ #2 ~ ^ "q" <b>&amp;</b> ]] ☃'


def items() -> list[dict]:
    when = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    base = {"updated": None, "doi": None, "label": None, "first_seen_at": when}
    return [
        {**base, "id": "2603.01234", "kind": "paper", "title": NASTY,
         "url": "https://arxiv.org/abs/2603.01234", "published": when, "score": 0.83,
         "categories": ["q-bio.NC", "cs.NE"], "authors": ["Zoë Ñúñez", "Bob O'Neil"],
         "version": 2, "feed": None, "primary_category": "q-bio.NC", "doi": "10.1/x_y",
         "summary": "Line one,\nline \"two\"; three\x0b\x00.", "label": "relevant"},
        {**base, "id": "math/0211159", "kind": "paper", "title": "Ricci flow",
         "url": "https://arxiv.org/abs/math/0211159", "published": datetime(2002, 11, 11,
                                                                           tzinfo=UTC),
         "score": None, "categories": ["math.DG"], "authors": ["Grigori Perelman"],
         "version": 1, "feed": None, "primary_category": "math.DG", "summary": "Geometry."},
        {**base, "id": "post:7", "kind": "post", "title": "[bold]not markup[/bold], a post",
         "url": None, "published": None, "score": None, "categories": [], "authors": [],
         "version": None, "feed": "colah", "primary_category": None, "summary": "<p>hi</p>"},
    ]


def render(fmt: str, data=None, **options) -> str:
    out = io.StringIO()
    count = formats.write(fmt, data if data is not None else items(), out, **options)
    assert count == len(data if data is not None else items())
    return out.getvalue()


def test_json_and_jsonl_parse_back():
    for parsed in (json.loads(render("json")),
                   [json.loads(line) for line in render("jsonl").splitlines()]):
        assert [p["id"] for p in parsed] == ["2603.01234", "math/0211159", "post:7"]
        assert parsed[0]["title"] == NASTY and parsed[0]["published"] == "2026-03-02T09:30:00+00:00"
        assert parsed[1]["score"] is None and parsed[2]["version"] is None
    assert render("json", []) == "[]\n"


def test_csv_parses_back():
    rows = list(csv.DictReader(io.StringIO(render("csv"))))
    assert [r["id"] for r in rows] == ["2603.01234", "math/0211159", "post:7"]
    assert rows[0]["title"] == NASTY
    assert rows[0]["summary"] == items()[0]["summary"]  # newlines and quotes survive
    assert rows[0]["authors"].split(formats.LIST_SEPARATOR) == ["Zoë Ñúñez", "Bob O'Neil"]
    assert rows[0]["categories"] == "q-bio.NC; cs.NE" and rows[1]["score"] == ""
    assert list(rows[0]) == list(formats.FIELDS)


def test_csv_cells_a_spreadsheet_would_run_are_shown_as_text():
    hostile = [{**items()[2], "title": '=HYPERLINK("http://evil/","x") brain',
                "summary": "@SUM(1) brain", "authors": ["-2+3", "Ada"], "feed": "+cmd",
                "url": "https://blog.example/a-b"}]
    [row] = csv.DictReader(io.StringIO(render("csv", hostile)))
    assert row["title"] == '\'=HYPERLINK("http://evil/","x") brain'
    assert (row["summary"], row["authors"], row["feed"]) == ("'@SUM(1) brain", "'-2+3; Ada",
                                                            "'+cmd")
    assert row["url"] == "https://blog.example/a-b" and row["id"] == "post:7"


# A small BibTeX reader: entries, then fields whose values are brace-balanced groups.
_ENTRY = re.compile(r"@(\w+)\{([^,\s{}]+),\n(.*?)\n\}\n", re.S)
_UNTEX = {v: k for k, v in formats._TEX.items()}


def _braced(text: str, start: int) -> tuple[str, int]:
    assert text[start] == "{"
    depth = 0
    for pos in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[pos], 0)
        if depth == 0:
            return text[start + 1:pos], pos + 1
    raise AssertionError("unbalanced braces")


def parse_bibtex(text: str) -> list[tuple[str, str, dict]]:
    entries = []
    for kind, key, body in _ENTRY.findall(text):
        fields, pos = {}, 0
        while (match := re.compile(r"\s*(\w+) = ").match(body, pos)):
            value, pos = _braced(body, match.end())
            fields[match.group(1)] = value
            pos += 1 if body[pos:pos + 1] == "," else 0
        assert body[pos:].strip() == "", body[pos:]
        entries.append((kind, key, fields))
    return entries


def untex(value: str) -> str:
    for tex in sorted(_UNTEX, key=len, reverse=True):
        value = value.replace(tex, "\0" + str(ord(_UNTEX[tex])) + "\0")
    return re.sub("\0(\\d+)\0", lambda m: chr(int(m.group(1))), value)


def test_bibtex_entries_are_valid_with_arxiv_fields():
    text = render("bibtex")
    entries = parse_bibtex(text)
    assert len(entries) == 3 and text.count("@misc{") == 3
    (_, key1, paper), (_, _, old), (_, _, post) = entries
    assert key1 == "nunez2026brace"
    assert paper["eprint"] == "2603.01234" and paper["archivePrefix"] == "arXiv"
    assert paper["primaryClass"] == "q-bio.NC" and paper["year"] == "2026"
    assert untex(paper["title"]) == NASTY  # nothing lost...
    bare = paper["title"]
    for tex in sorted(_UNTEX, key=len, reverse=True):
        bare = bare.replace(tex, "")
    assert not set(bare) & set("{}\\%&$#_~^")  # ...and every TeX special escaped
    assert paper["author"] == "Zoë Ñúñez and Bob O'Neil"
    assert old["eprint"] == "math/0211159" and old["primaryClass"] == "math.DG"
    assert "eprint" not in post and "colah" in post["note"]
    team = [{**items()[1], "authors": ["Google Quantum AI and Collaborators", "Ada Lovelace"]}]
    [(_, _, fields)] = parse_bibtex(render("bibtex", team))
    assert fields["author"] == "{Google Quantum AI and Collaborators} and Ada Lovelace"
    twice = parse_bibtex(render("bibtex", items()[:1] * 3))
    assert len({key for _, key, _ in twice}) == 3  # duplicate keys get a suffix


def test_atom_is_a_valid_feed():
    xml = render("atom", title="NeuroAI: score >= 0.7 & <more>", feed_key="q1")
    feed = feedparser.parse(xml.encode())
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10" and feed.feed.title == "NeuroAI: score >= 0.7 & <more>"
    assert feed.feed.id.startswith("urn:neuroai-tracker:search:")
    first, old, post = feed.entries
    assert first.title == NASTY and first.link == "https://arxiv.org/abs/2603.01234"
    assert first.id == "https://arxiv.org/abs/2603.01234"
    assert [a.name for a in first.authors] == ["Zoë Ñúñez", "Bob O'Neil"]
    assert [t.term for t in first.tags] == ["q-bio.NC", "cs.NE"]
    assert first.summary == 'Line one,\nline "two"; three.'  # control characters dropped
    assert post.title == "[bold]not markup[/bold], a post" and post.content[0].value == "<p>hi</p>"
    assert feed.feed.updated == "2026-03-02T09:30:00Z"
    same = feedparser.parse(render("atom", feed_key="q1").encode())
    other = feedparser.parse(render("atom", feed_key="q2").encode())
    assert same.feed.id == feed.feed.id != other.feed.id  # stable per search
    empty = feedparser.parse(render("atom", [], now=datetime(2026, 1, 1, tzinfo=UTC)).encode())
    assert not empty.bozo and empty.entries == []
    # a feed's javascript: or data: link is no link to follow, in Atom or BibTeX
    for link in ("javascript:alert(1)", "JaVaScRiPt:alert(2)", "java\tscript:alert(3)",
                 "data:text/html;base64,PHNjcmlwdD4="):
        hostile = [{**items()[2], "url": link}]
        xml = render("atom", hostile)
        [entry] = feedparser.parse(xml.encode()).entries
        assert "<link" not in xml and entry.content[0].value == "<p>hi</p>"
        [(_, _, fields)] = parse_bibtex(render("bibtex", hostile))
        assert "url" not in fields
    spaced = [{**items()[2], "feed": "my feed {x}"}]  # an id must be an IRI: no spaces
    [entry] = feedparser.parse(render("atom", spaced).encode()).entries
    assert entry.id == "urn:neuroai-tracker:post:7:my%20feed%20%7Bx%7D"


def test_table_prints_text_literally():
    out = render("table")
    assert "2603.01234" in out and "post:7" in out and "[bold]not markup" in out
    assert "0.83" in out and "colah" in out
    assert "no matching items" in render("table", [])
