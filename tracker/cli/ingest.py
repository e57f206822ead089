"""`tracker fetch` and `tracker backfill`."""

from __future__ import annotations

import sys

import click

from tracker.cli import echo_json, get_app, parse_range, sigterm_interrupts


def _line(rep) -> str:
    counts = f"fetched {rep.fetched}, new {rep.new}, updated {rep.updated}, errors {rep.errors}"
    if rep.error:
        return f"{rep.name}: FAILED ({counts}): {rep.error}"
    if rep.unchanged:
        return f"{rep.name}: unchanged since the last fetch (HTTP 304)"
    return f"{rep.name}: {counts}"


def _as_dict(rep) -> dict:
    return {"source": rep.name, "fetched": rep.fetched, "new": rep.new, "updated": rep.updated,
            "errors": rep.errors, "error": rep.error, "unchanged": rep.unchanged}


@click.command("fetch")
@click.option("--source", "only", metavar="arxiv|feeds|NAME",
              help="Fetch only arXiv, only the feeds, or the one feed with this name.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
@click.pass_context
def fetch_command(ctx: click.Context, only: str | None, fmt: str) -> None:
    """Fetch new papers and posts from every enabled source and store them.

    Prints one line per source: fetched / new / updated / errors. A failing source is
    recorded (see `tracker status`) and the others still run; the exit code is 1 only
    when every source failed, or when a fetch (the worker's or another) is already running.

    \b
    Example:
      tracker fetch
      tracker fetch --source arxiv
      tracker fetch --source colah --format json
    """
    from tracker.pipeline.ingest import fetch_under_lease

    app = get_app(ctx)
    with sigterm_interrupts():  # as `tracker run`: the run abandoned, the lease released
        report = fetch_under_lease(app, only=only,
                                   progress=fmt == "text" and sys.stdout.isatty())
    if fmt == "json":
        echo_json([_as_dict(rep) for rep in report.sources])
    elif not report.sources:
        click.echo("no sources enabled (see [arxiv] enabled and [[feeds]] in the config)")
    for rep in report.sources if fmt == "text" else []:
        click.echo(_line(rep))
    if report.all_failed:
        ctx.exit(1)


@click.command("backfill")
@click.option("--since", required=True, metavar="DATE", help="First day (YYYY-MM-DD, UTC).")
@click.option("--until", metavar="DATE", help="Last day, included (YYYY-MM-DD, UTC; default: now).")
@click.pass_context
def backfill_command(ctx: click.Context, since: str, until: str | None) -> None:
    """Pull arXiv history for the configured categories between two dates.

    Works in day-sized windows that stay under the API's result cap, at the configured
    pace (one request every delay_seconds). Safe to interrupt and re-run: papers are
    stored once, and an interrupted run says from which date to resume.

    \b
    Example:
      tracker backfill --since 2024-01-01 --until 2024-03-31
    """
    from tracker.pipeline.ingest import backfill

    app = get_app(ctx)
    from tracker.pipeline import utcnow

    now = utcnow()
    start, end = parse_range(since, until)
    with sigterm_interrupts():  # as Ctrl-C: it says from which date to resume
        rep = backfill(app, since=start, until=min(end, now) if end else None,
                       now=now, progress=sys.stdout.isatty())
    click.echo(_line(rep))
    if rep.error:
        ctx.exit(1)


COMMANDS = [fetch_command, backfill_command]
