"""`tracker worker`, `tracker run`, `tracker status`."""

from __future__ import annotations

import logging
import os
import sys

import click

from tracker.cli import echo_json, get_app, sigterm_interrupts


@click.command()
@click.option("--run-now", is_flag=True,
              help="Run every job once now (fetch, then digest) before following the schedule.")
@click.pass_context
def worker(ctx: click.Context, run_now: bool) -> None:
    """Run the jobs on the [schedule] cron expressions until SIGTERM/SIGINT.

    Checks the config and the database schema first, logs each job's next run, and catches
    up on a digest (and a recent fetch) that was missed while no worker ran. Several
    workers may share one database: a lease in the database lets only one run a job.
    Stops cleanly on SIGTERM or Ctrl-C (exit code 0).

    \b
    Example:
      tracker --log-format json worker --run-now
    """
    from tracker.pipeline.cycle import Runner
    from tracker.scheduler import Worker

    app = get_app(ctx)
    runner = Runner(app)
    service = Worker(runner)
    previous = service.install_signal_handlers()  # before anything slow: no stop is lost
    try:
        app.sessions  # noqa: B018 -- the schema gate: refuse an outdated database up front
        logging.getLogger("tracker.worker").info(
            "worker %s started (config %s)", runner.holder, app.config.source,
            extra={"fields": {"event": "worker_started", "holder": runner.holder}})
        finished = service.serve(run_now=run_now)
    finally:
        service.restore_signal_handlers(previous)
    if not finished:
        # A job thread is still running; its transaction rolls back when the process ends.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


@click.command("run")
@click.pass_context
def run_command(ctx: click.Context) -> None:
    """Run one cycle: fetch (and score) every source, then send the digest if one is due.

    For cron or systemd timers instead of `tracker worker`. Exit code 1 if a job failed;
    a job another worker is running right now is skipped.

    \b
    Example:
      tracker run && tracker status
    """
    from tracker.pipeline.cycle import run_cycle

    with sigterm_interrupts():
        results = run_cycle(get_app(ctx))
    for result in results:
        parts = [f"{k} {v}" for k, v in result.counts.items() if v is not None]
        line = f"{result.job}: {result.outcome}"
        if parts:
            line += " (" + ", ".join(parts) + ")"
        if result.error or result.detail:
            line += f": {result.error or result.detail}"
        click.echo(line)
    if all(result.job != "digest" for result in results):
        from tracker.pipeline import utcnow
        from tracker.scheduler import next_fire_times

        config = get_app(ctx).config
        if not config.digest.recipients:
            click.echo("digest: none sent ([digest] recipients is empty)")
        elif due := next_fire_times(config, utcnow())["digest"]:
            click.echo(f"digest: not due (next {due:%Y-%m-%d %H:%M} UTC)")
        else:
            click.echo("digest: not due")
    if any(r.outcome == "failed" for r in results):
        ctx.exit(1)


@click.command()
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.pass_context
def status(ctx: click.Context, fmt: str) -> None:
    """Show store counts, last and next job runs, source health and the last digest.

    \b
    Example:
      tracker status --format json
    """
    from tracker.pipeline import utcnow
    from tracker.pipeline.status import collect, render_table
    from tracker.scheduler import next_fire_times

    app, now = get_app(ctx, existing=True), utcnow()  # a mistyped URL must not make a store
    report = collect(app, next_fire_times(app.config, now), now)
    if fmt == "json":
        echo_json(report)
    else:
        click.echo(render_table(report))


COMMANDS = [worker, run_command, status]
