"""The `tracker` command line. Commands are thin: parse options, call a use case in
tracker.pipeline, print. Domain errors become one line on stderr and a non-zero exit.

Keep imports here light: heavy libraries are imported inside the commands that use them,
so `tracker --help` stays fast.
"""

from __future__ import annotations

import gc
import importlib
import json
import logging
import os
import sys
from contextlib import contextmanager

import click

from tracker import __version__
from tracker.errors import TrackerError

log = logging.getLogger("tracker")

# Each module defines COMMANDS, a list of click commands/groups added to the top level.
COMMAND_MODULES = ("admin", "ingest", "relevance", "digest", "query", "worker")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(verbose: bool, log_format: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(message)s",
                                               "%Y-%m-%d %H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    log.setLevel(logging.DEBUG if verbose else logging.INFO)


def _fatal(ctx: click.Context, message: str, exit_code: int) -> None:
    """The last line of a failed command, on stderr; a JSON log record under --log-format
    json, so that a log collector reading the worker's stderr parses it too."""
    if (ctx.obj or {}).get("log_format") == "json":
        log.error(message, extra={"fields": {"event": "exit", "exit_code": exit_code}})
    else:
        click.echo(message, err=True)
    ctx.exit(exit_code)


class TrackerGroup(click.Group):
    """Turns domain errors into one readable line and an exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except TrackerError as exc:
            _fatal(ctx, f"error: {exc}", exc.exit_code)
        except KeyboardInterrupt:
            _fatal(ctx, "interrupted", 130)
        except BrokenPipeError:
            # The reader went away (`tracker search | head`): not an error. Point stdout at
            # /dev/null so the interpreter's final flush does not complain either.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(0)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:
            if ctx.obj and ctx.obj.get("verbose"):
                raise
            if "database is locked" in str(exc):  # SQLite, after the 30 s busy timeout
                _fatal(ctx, "error: the database stayed locked by another tracker process for "
                       "30 s (a long fetch or rescore?); try again when it is done", 1)
            exc_module = sys.modules.get("sqlalchemy.exc")
            if exc_module and isinstance(exc, exc_module.SQLAlchemyError):
                from tracker.store.db import describe_error

                _fatal(ctx, f"error: {describe_error(exc)}", 1)
            _fatal(ctx, f"internal error: {type(exc).__name__}: {exc} "
                   "(run with --verbose for the traceback, and please report it)", 70)


@click.group(cls=TrackerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file (default: $TRACKER_CONFIG, else ./config/tracker.toml).")
@click.option("-v", "--verbose", is_flag=True, help="Debug logging; tracebacks on internal errors.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="Log line format on stderr.")
@click.version_option(__version__, prog_name="tracker")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, log_format: str) -> None:
    """Follow NeuroAI on arXiv and blogs; score relevance; send a weekly digest.

    \b
    Example:
      tracker --config config/tracker.toml fetch
    """
    setup_logging(verbose, log_format)
    # Fetching, scoring and training allocate objects by the hundred thousand (XML elements,
    # rows, token lists) that reference counting frees; CPython's default, a cycle collection
    # every 700 net allocations, spent a fifth of `tracker fetch` in the collector
    # (bench/ingest.py, 10k entries: 0.48 s of 2.56 s; 0.04 s with this threshold).
    gc.set_threshold(50_000, 20, 20)
    ctx.obj = {"config_path": config_path, "verbose": verbose, "log_format": log_format}


def get_config(ctx: click.Context):
    """The validated config (loaded once per invocation)."""
    from tracker import config

    root = ctx.find_root()
    if "config" not in root.obj:
        root.obj["config"] = config.load(root.obj.get("config_path"))
    return root.obj["config"]


def get_app(ctx: click.Context, *, existing: bool = False):
    """An App for the command; its engine is disposed when the command ends. A command
    that only reads passes `existing`: it never creates a SQLite database."""
    from tracker.pipeline import App

    root = ctx.find_root()
    if "app" not in root.obj:
        app = App(get_config(ctx), existing=existing)
        root.obj["app"] = app
        root.call_on_close(app.close)
    return root.obj["app"]


@contextmanager
def sigterm_interrupts():
    """SIGTERM (systemd stop, kill) interrupts like Ctrl-C: a job's run is recorded as
    abandoned and its lease released before the process exits."""
    import signal

    previous = signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_date(value: str | None, option: str, *, end_of_day: bool = False):
    """A UTC datetime from a date (2024-03-31 or 20240331) or an ISO timestamp, UTC unless it
    says otherwise. With end_of_day a bare date includes that whole day (the bound is the
    next midnight, exclusive)."""
    from datetime import UTC, date, datetime, timedelta

    if value is None:
        return None
    text = value.strip()
    try:
        day = date.fromisoformat(text)
    except ValueError:
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise click.BadParameter(f"expected a date like 2024-03-31, got {value!r}",
                                     param_hint=option) from None
        if parsed.tzinfo is None:
            return parsed.replace(tzinfo=UTC)
        shift = timedelta(0)
    else:
        parsed, shift = datetime(day.year, day.month, day.day, tzinfo=UTC), timedelta(end_of_day)
    try:  # the whole of 9999-12-31, or a zone that moves year 1 back, is past datetime's range
        return parsed.astimezone(UTC) + shift
    except OverflowError:
        raise click.BadParameter(f"{value!r} is out of range", param_hint=option) from None


def parse_range(since: str | None, until: str | None):
    """(--since, --until) as parse_date reads them: the end is exclusive, a bare --until
    date included whole. A range with nothing in it is bad input."""
    start, end = parse_date(since, "--since"), parse_date(until, "--until", end_of_day=True)
    if start is not None and end is not None and start >= end:
        # the dates as typed: `end` may be the next midnight, which the user never wrote
        raise click.BadParameter(f"--since {since} is not before --until {until}: the range "
                                 "is empty", param_hint="--since")
    return start, end


def echo_json(data) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_value, ensure_ascii=False))


def _json_value(value) -> str:
    """Dates and times in ISO 8601 (2026-11-27T06:02:37+00:00), as everywhere else."""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


for _name in COMMAND_MODULES:
    for _command in importlib.import_module(f"tracker.cli.{_name}").COMMANDS:
        cli.add_command(_command)


def main() -> None:
    cli(prog_name="tracker")
