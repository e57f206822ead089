"""Output writers for item dicts (see tracker.store.search.item_dict): table (rich), json,
jsonl, csv, bibtex and atom. Each takes an iterable of items and a text stream; jsonl and
csv write as they go, so an export of the whole store never sits in memory.

Standard library only at module level (rich is imported by the table writer), so the CLI
starts fast.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import unicodedata
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import quote

from tracker.models import safe_url

FORMATS = ("table", "json", "jsonl", "csv", "bibtex", "atom")
FIELDS = ("id", "kind", "title", "url", "published", "updated", "score", "categories",
          "authors", "version", "feed", "primary_category", "doi", "label", "first_seen_at",
          "summary")
LIST_SEPARATOR = "; "  # categories and authors in a CSV cell
ATOM_NS = "http://www.w3.org/2005/Atom"


def jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: jsonable(v) for key, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def write(fmt: str, items, out, **options) -> int:
    """Write items in `fmt`; returns how many were written."""
    return WRITERS[fmt](items, out, **options)


def write_json(items, out, **_) -> int:
    data = [jsonable(item) for item in items]
    json.dump(data, out, indent=2, ensure_ascii=False)
    out.write("\n")
    return len(data)


def write_jsonl(items, out, **_) -> int:
    count = 0
    for item in items:
        count += 1
        out.write(json.dumps(jsonable(item), ensure_ascii=False) + "\n")
    return count


def write_csv(items, out, **_) -> int:
    writer = csv.DictWriter(out, fieldnames=FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    count = 0
    for item in items:
        count += 1
        row = jsonable(item)
        for key in ("categories", "authors"):
            row[key] = LIST_SEPARATOR.join(row.get(key) or [])
        writer.writerow({key: _inert(value) for key, value in row.items()})
    return count


def _inert(value):
    """A text cell a spreadsheet would run as a formula (=, +, -, @ first; a feed's title
    can be '=HYPERLINK(...)') gets a leading apostrophe, which shows it as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


# --- BibTeX ----------------------------------------------------------------------------

# Text is escaped to print literally. Braces become commands with balanced braces,
# because BibTeX counts braces even when they are backslash-escaped.
_TEX = {"\\": r"\textbackslash{}", "{": r"\textbraceleft{}", "}": r"\textbraceright{}",
        "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def _tex(text: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in " ".join((text or "").split()))


def _ascii_word(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _bib_key(item: dict, seen: set[str]) -> str:
    authors = item.get("authors") or []
    last = _ascii_word(authors[0].split()[-1]) if authors and authors[0].split() else ""
    year = str(item["published"].year) if item.get("published") else ""
    words = [_ascii_word(w) for w in (item.get("title") or "").split()]
    word = next((w for w in words if len(w) >= 4), "")
    base = (last + year + word) or _ascii_word(item["id"]) or "item"
    key, n = base, 0
    while key in seen:
        n += 1
        key = base + (chr(ord("a") + n - 1) if n <= 26 else str(n))
    seen.add(key)
    return key


def _bib_fields(item: dict) -> list[tuple[str, str]]:
    fields = [("title", _tex(item.get("title") or ""))]
    if item.get("authors"):
        # a name holding " and " ("Google Quantum AI and Collaborators") is braced, or
        # BibTeX reads two authors in it
        fields.append(("author", " and ".join(
            f"{{{_tex(a)}}}" if " and " in f" {a.lower()} " else _tex(a)
            for a in item["authors"])))
    if item.get("published"):
        fields.append(("year", str(item["published"].year)))
    if item["kind"] == "paper":
        primary = item.get("primary_category") or next(iter(item.get("categories") or []), "")
        fields += [("eprint", item["id"]), ("archivePrefix", "arXiv")]
        if primary:
            fields.append(("primaryClass", _tex(primary)))
        if item.get("doi"):
            fields.append(("doi", _tex(item["doi"])))
    else:
        fields.append(("note", _tex(f"Blog post, {item.get('feed') or 'feed'}")))
    if url := safe_url(item.get("url")):  # not a feed's javascript: or data: link
        fields.append(("url", url.replace("{", "%7B").replace("}", "%7D")))
    return fields


def write_bibtex(items, out, **_) -> int:
    seen: set[str] = set()
    count = 0
    for item in items:
        count += 1
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in _bib_fields(item))
        out.write(f"@misc{{{_bib_key(item, seen)},\n{body}\n}}\n\n")
    return count


# --- Atom ------------------------------------------------------------------------------

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _clean(text) -> str:
    return _XML_INVALID.sub("", str(text or ""))


def _rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sub(parent, tag: str, text=None, **attrs):
    element = ET.SubElement(parent, tag, {k: _clean(v) for k, v in attrs.items()})
    if text is not None:
        element.text = _clean(text)
    return element


def _atom_entry(feed, item: dict) -> datetime:
    entry = _sub(feed, "entry")
    stamp = item.get("updated") or item.get("published") or item["first_seen_at"]
    _sub(entry, "id", item["url"] if item["kind"] == "paper" else
         f"urn:neuroai-tracker:{item['id']}:{quote(item.get('feed') or '', safe='')}")
    _sub(entry, "title", item.get("title") or item["id"], type="text")
    _sub(entry, "updated", _rfc3339(stamp))
    if item.get("published"):
        _sub(entry, "published", _rfc3339(item["published"]))
    for name in item.get("authors") or []:
        _sub(_sub(entry, "author"), "name", name)
    for term in item.get("categories") or []:
        _sub(entry, "category", term=term)
    if url := safe_url(item.get("url")):  # an entry needs an alternate link or content
        _sub(entry, "link", rel="alternate", href=url)
        _sub(entry, "summary", item.get("summary") or "", type="text")
    else:
        _sub(entry, "content", item.get("summary") or "", type="text")
    return stamp


def write_atom(items, out, *, title: str = "NeuroAI tracker search", feed_key: str = "",
               now: datetime | None = None, **_) -> int:
    """A valid Atom 1.0 feed. Its id derives from `feed_key` (the query and filters), so
    a feed reader sees the same feed each time the same search is exported."""
    feed = ET.Element("feed", xmlns=ATOM_NS)
    digest = hashlib.sha1(feed_key.encode()).hexdigest()[:16]
    _sub(feed, "id", f"urn:neuroai-tracker:search:{digest}")
    _sub(feed, "title", title, type="text")
    updated = _sub(feed, "updated")
    _sub(_sub(feed, "author"), "name", "NeuroAI tracker")
    _sub(feed, "generator", "NeuroAI tracker")
    stamps = [_atom_entry(feed, item) for item in items]
    updated.text = _rfc3339(max(stamps, default=now or datetime.now(UTC)))
    ET.indent(feed)
    out.write('<?xml version="1.0" encoding="utf-8"?>\n')
    out.write(ET.tostring(feed, encoding="unicode"))
    out.write("\n")
    return len(stamps)


# --- table -----------------------------------------------------------------------------

def write_table(items, out, **_) -> int:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(show_lines=False, header_style="bold")
    table.add_column("id", no_wrap=True)
    table.add_column("date", no_wrap=True)
    table.add_column("score", justify="right", no_wrap=True)
    table.add_column("title / authors", ratio=1)
    count = 0
    for item in items:
        count += 1
        date = item["published"] or item["first_seen_at"]
        score = "-" if item["score"] is None else f"{item['score']:.2f}"
        who = item["feed"] if item["kind"] == "post" else ", ".join(item["authors"][:3])
        if item["kind"] == "paper" and len(item["authors"]) > 3:
            who += " et al."
        cell = Text(item["title"] or "")
        cell.append("\n" + (who or ""), style="dim")
        # Text cells: titles are data, never rich markup.
        table.add_row(Text(item["id"]), date.strftime("%Y-%m-%d") if date else "-", score, cell)
    Console(file=out).print(table if count else "no matching items")
    return count


WRITERS = {"table": write_table, "json": write_json, "jsonl": write_jsonl, "csv": write_csv,
           "bibtex": write_bibtex, "atom": write_atom}
