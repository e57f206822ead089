"""`tracker search`, `tracker show` and `tracker export`."""

from __future__ import annotations

import json
import os
import shutil
import sys

import click

from tracker.cli import echo_json, get_app, log, parse_range
from tracker.errors import InputError, TrackerError

SEARCH_FORMATS = ("table", "json", "jsonl", "csv", "bibtex", "atom")


class ScoreType(click.FloatRange):
    """A number in [0, 1]. FloatRange alone accepts "nan": every comparison with NaN is
    false, so it passes both bounds."""

    def __init__(self):
        super().__init__(0, 1)

    def convert(self, value, param, ctx):
        number = super().convert(value, param, ctx)
        if number != number:  # NaN
            self.fail(f"{value!r} is not a number between 0 and 1", param, ctx)
        return number


@click.command("search")
@click.argument("query", nargs=-1)
@click.option("--since", metavar="DATE", help="Published on or after (YYYY-MM-DD, UTC).")
@click.option("--until", metavar="DATE", help="Published on or before (YYYY-MM-DD, inclusive).")
@click.option("--min-score", type=ScoreType(), help="Relevance score at least this.")
@click.option("--category", "categories", multiple=True, metavar="CAT",
              help="arXiv category, e.g. q-bio.NC (repeat for any of several; papers only).")
@click.option("--author", help="Author name words, each matched as a prefix (e.g. 'hinton g').")
@click.option("--kind", type=click.Choice(["paper", "post"]), help="Only papers or only posts.")
@click.option("--feed", metavar="NAME", help="Only posts from this feed.")
@click.option("--labelled", type=click.Choice(["relevant", "irrelevant"]),
              help="Only items you labelled so.")
@click.option("--sort", type=click.Choice(["relevance", "score", "date"]), default="relevance",
              show_default=True, help="relevance = text match (newest first without a query).")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0, 10**9), default=0, show_default=True)
@click.option("--format", "fmt", type=click.Choice(SEARCH_FORMATS),
              help="Output format [default: table on a terminal, else json].")
@click.pass_context
def search_command(ctx: click.Context, query: tuple[str, ...], since, until, min_score,
                   categories, author, kind, feed, labelled, sort, limit, offset, fmt) -> None:
    """Search stored papers and posts (title, abstract or summary, authors).

    QUERY: words (all must match), "exact phrases", prefix terms (spik*), AND, OR, NOT
    (upper case) and parentheses. Quote the whole query for your shell. No QUERY lists
    everything, newest first.

    \b
    Example:
      tracker search '"predictive coding" AND (dendrit* OR spik*) NOT retina'
      tracker search --min-score 0.7 --since 2026-01-01 --format atom > neuroai.xml
      tracker search hippocampus --category q-bio.NC --format bibtex > refs.bib
    """
    from tracker.pipeline.query import Filters, search

    start, end = parse_range(since, until)
    if feed is not None and not feed.strip():
        raise click.BadParameter("expected a feed name ([[feeds]] name), got nothing",
                                 param_hint="--feed")
    filters = Filters(since=start, until=end,
                      min_score=min_score, categories=tuple(categories), author=author,
                      kind=kind, feed=feed, labelled=labelled)
    text = " ".join(query)
    app = get_app(ctx, existing=True)
    items = search(app, text, filters, sort=sort, limit=limit, offset=offset)
    names = [f.name for f in app.config.feeds]
    if not items and feed is not None and feed not in names:  # a typo, say ("Colah")
        log.warning("no posts from a feed named %r; the config's feeds are: %s", feed,
                    ", ".join(names) or "none")
    fmt = fmt or ("table" if sys.stdout.isatty() else "json")
    key = json.dumps([text, repr(filters), sort], sort_keys=True)
    title = f"NeuroAI tracker: {text or 'all items'}" + (
        f" (score >= {min_score})" if min_score is not None else "")
    _to_stdout(fmt, items, title=title, feed_key=key)


def _to_stdout(fmt: str, items, **options) -> None:
    from tracker.cli import formats

    try:
        formats.write(fmt, items, sys.stdout, **options)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader stopped early (`| head`): not an error. Point stdout at /dev/null so
        # the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except OSError as exc:  # e.g. a full disk behind `> file`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise TrackerError(f"cannot write to standard output: {exc.strerror or exc}") from None


@click.command("show")
@click.argument("item_id", metavar="ID")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def show_command(ctx: click.Context, item_id: str, fmt: str) -> None:
    """Show everything stored about one item: versions, scores over time, label, linked
    posts or papers, and the digests it appeared in.

    ID is an arXiv id (2210.08340, math/0211159; a version suffix is ignored) or a post
    id like post:12 (see `tracker search`).

    \b
    Example:
      tracker show 2210.08340
      tracker show post:12 --format json
    """
    from tracker.cli.formats import jsonable
    from tracker.pipeline.query import show

    record = show(get_app(ctx, existing=True), item_id)
    if fmt == "json":
        echo_json(jsonable(record))
        return
    for line in _record_lines(jsonable(record)):
        click.echo(line)


def _record_lines(r: dict):
    yield f"{r['id']}  ({r['kind']}{', v' + str(r['version']) if r['version'] else ''})"
    yield f"title:      {r['title']}"
    for name in ("authors", "categories"):
        if r[name]:
            yield f"{name + ':':<11} {', '.join(r[name])}"
    for name in ("feed", "url", "published", "updated", "doi", "journal_ref", "comment"):
        if r.get(name):
            yield f"{name + ':':<11} {r[name]}"
    yield f"score:      {'-' if r['score'] is None else round(r['score'], 3)}"
    yield f"label:      {r['label'] or '-'}" + (f" ({r['label_at']})" if r['label_at'] else "")
    yield ""
    yield r["summary"] or "(no text)"
    for v in r.get("versions", []):
        yield f"version v{v['version']}: seen {v['seen_at']}  {v['title']}"
    for s in r["scores"]:
        why = f"  ({'; '.join(s['why'])})" if s["why"] else ""
        yield f"scored {s['value']:.3f} by {s['model_version']} at {s['scored_at']}{why}"
    for linked in r.get("posts", []) + r.get("papers", []):
        yield f"linked: {linked['id']}  {linked['title']}"
    for d in r["digests"]:
        yield (f"digest #{d['id']} ({d['period_start'][:10]} .. {d['period_end'][:10]}, "
               f"{d['status']}): position {d['position']} {d['section']}".rstrip())


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, writable=True),
              help="Write to this file (default: standard output).")
@click.pass_context
def export_command(ctx: click.Context, fmt: str, out: str | None) -> None:
    """Export every paper and post in the store, streamed (memory stays flat).

    With --out the file is written under a temporary name and renamed at the end, so an
    interrupted export never leaves a truncated file behind (through a symlink, the file it
    points to; a named pipe is written into directly).

    \b
    Example:
      tracker export --format csv --out store.csv
      tracker export | gzip > store.jsonl.gz
    """
    from pathlib import Path

    from tracker.cli import formats
    from tracker.pipeline.query import count_items, export

    app = get_app(ctx, existing=True)
    total = count_items(app) if sys.stderr.isatty() else 0
    with click.progressbar(length=total, label="exporting", file=sys.stderr,
                           hidden=not sys.stderr.isatty()) as bar:
        items = _counted(export(app), bar)
        if out is None:
            _to_stdout(fmt, items)
            return
        target = Path(out).resolve()
        special = target.exists() and not target.is_file()  # a named pipe, a device
        partial = target if special else target.with_name(target.name + ".part")
        try:
            with open(partial, "w", encoding="utf-8", newline="") as stream:
                count = formats.write(fmt, items, stream)
            if not special:
                if target.exists():
                    shutil.copymode(target, partial)  # the replaced file's permissions
                os.replace(partial, target)
        except OSError as exc:
            raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
        finally:
            if not special and partial.exists():
                partial.unlink()
    click.echo(f"exported {count} items to {out}", err=True)


def _counted(items, bar):
    for item in items:
        yield item
        bar.update(1)


COMMANDS = [search_command, show_command, export_command]
