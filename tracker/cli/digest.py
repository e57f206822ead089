"""`tracker digest preview|send|list`."""

from __future__ import annotations

from pathlib import Path

import click

from tracker.cli import echo_json, get_app


@click.group()
def digest() -> None:
    """Preview, send and list the weekly digest email.

    \b
    Example:
      tracker digest preview --out digest.html
    """


@digest.command("preview")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of stdout.")
@click.option("--text", is_flag=True, help="The plain-text part instead of the HTML part.")
@click.pass_context
def preview_command(ctx: click.Context, out: Path | None, text: bool) -> None:
    """Render the next digest without sending or recording anything.

    Shows the digest that is due (if it was not sent yet), else everything relevant seen
    since the last digest.

    \b
    Example:
      tracker digest preview --out digest.html && xdg-open digest.html
      tracker digest preview --text | less
    """
    from tracker.errors import InputError
    from tracker.pipeline import utcnow
    from tracker.pipeline.digest import preview

    prepared = preview(get_app(ctx, existing=True), now=utcnow())
    rendered = prepared.rendered
    body = rendered.text if text else rendered.html
    digest = prepared.digest
    summary = (f"{prepared.subject}: {len(digest.items)} item(s), "
               f"{rendered.html_bytes / 1000:.1f} KB HTML"
               + (f", {digest.omitted} left out" if digest.omitted else ""))
    if out is None:
        click.echo(body, nl=False)
        click.echo(summary, err=True)
        return
    try:
        out.write_text(body, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"wrote {out} ({summary})")


@digest.command("send")
@click.option("--dry-run", is_flag=True, help="Build the digest and say what would be sent.")
@click.option("--force", is_flag=True,
              help="End the period now instead of at the last scheduled digest time.")
@click.pass_context
def send_command(ctx: click.Context, dry_run: bool, force: bool) -> None:
    """Send the digest for the period that ended at the last scheduled digest time.

    Exactly once per period: a second run sends nothing; a failed send is retried by the
    next run. --force sends now the items seen since the last digest (never items that
    were already sent).

    \b
    Example:
      TRACKER_SMTP_PASSWORD=... tracker digest send
      tracker digest send --dry-run
    """
    from tracker.pipeline import utcnow
    from tracker.pipeline.digest import send_digest

    outcome = send_digest(get_app(ctx, existing=dry_run), now=utcnow(), dry_run=dry_run,
                          force=force)
    click.echo(f"{outcome.status}: {outcome.message}")


@digest.command("list")
@click.option("--limit", type=click.IntRange(1, 10_000), default=20, show_default=True)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_context
def list_command(ctx: click.Context, limit: int, fmt: str) -> None:
    """Show past digests: period, status, items, recipients, errors (newest first).

    \b
    Example:
      tracker digest list --format json
    """
    from tracker.pipeline.digest import list_digests

    rows = list_digests(get_app(ctx, existing=True), limit=limit)
    if fmt == "json":
        echo_json([{**row, **{k: _iso(row[k]) for k in
                              ("period_start", "period_end", "claimed_at", "sent_at")}}
                   for row in rows])
        return
    if not rows:
        click.echo("no digests yet")
        return
    header = ("id", "period (UTC)", "status", "items", "to", "sent at", "error")
    table = [header] + [(str(r["id"]), f"{_short(r['period_start'])} .. {_short(r['period_end'])}",
                         r["status"], str(r["items"]), str(len(r["recipients"])),
                         _short(r["sent_at"]), " ".join((r["error"] or "-").split()))
                        for r in rows]
    # the error is the last column, in full (on one line): its reason comes at the end
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    for line in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=False))
                   + "  " + line[-1])


def _iso(moment) -> str | None:
    return None if moment is None else moment.isoformat()


def _short(moment) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


COMMANDS = [digest]
