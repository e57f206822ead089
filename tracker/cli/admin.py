"""`tracker db ...` and `tracker config ...`."""

from __future__ import annotations

import click

from tracker.cli import echo_json, get_app, get_config


@click.group()
def db() -> None:
    """Manage the database schema.

    \b
    Example:
      tracker db upgrade
    """


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Migrate the database to the current schema (creates it if new).

    \b
    Example:
      TRACKER_DATABASE_URL=postgresql+psycopg://tracker@db/tracker tracker db upgrade
    """
    from tracker.config import mask_url
    from tracker.store import db as store_db

    app = get_app(ctx)
    before, after = store_db.upgrade(app.engine, revision)
    where = mask_url(app.config.database_url)
    if before == after:
        past = "" if revision in ("head", after) else f", past {revision} (upgrade never goes down)"
        click.echo(f"{where}: already at revision {after}{past}")
    else:
        click.echo(f"{where}: upgraded {before or '(empty)'} -> {after}")


@db.command("current")
@click.pass_context
def db_current(ctx: click.Context) -> None:
    """Show the database's schema revision and the one this version needs.

    \b
    Example:
      tracker db current
    """
    from tracker.store import db as store_db

    app = get_app(ctx, existing=True)
    current = store_db.current_revision(app.engine)
    head = store_db.head_revision(app.engine)
    state = "up to date" if current == head else "run `tracker db upgrade`"
    click.echo(f"current: {current or '(empty)'}  required: {head}  ({state})")


@click.group("config")
def config_group() -> None:
    """Write or inspect the configuration.

    \b
    Example:
      tracker config init
      tracker config check
    """


@config_group.command("check")
@click.option("--format", "fmt", type=click.Choice(["toml", "json"]), default="toml",
              show_default=True)
@click.pass_context
def config_check(ctx: click.Context, fmt: str) -> None:
    """Validate the config and print the effective values (secrets masked).

    Exit code 2 and one line per problem when the file is invalid.

    \b
    Example:
      tracker --config my.toml config check --format json
    """
    config = get_config(ctx)
    data = config.masked()
    if fmt == "json":
        echo_json({"source": config.source, "config": data})
        return
    # The password is not a key of the file (only of the environment): a comment, so the
    # output can be saved and loaded as a config.
    password = data["smtp"].pop("password")
    click.echo(f"# effective config (from {config.source}); valid\n"
               f"# smtp password ($TRACKER_SMTP_PASSWORD): {password}")
    click.echo(_to_toml(data))


@config_group.command("init")
@click.argument("path", required=False, type=click.Path(dir_okay=False))
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
@click.pass_context
def config_init(ctx: click.Context, path: str | None, force: bool) -> None:
    """Write the commented default config to PATH, to edit. PATH defaults to the file the
    other commands read: --config, else $TRACKER_CONFIG, else config/tracker.toml. (In a
    source checkout the copy is of config/tracker.toml as it stands.)

    \b
    Example:
      tracker config init && tracker config check
    """
    from pathlib import Path

    from tracker.config import commented_defaults, resolve_path
    from tracker.errors import InputError, TrackerError

    read = resolve_path(ctx.find_root().obj.get("config_path")) or Path("config/tracker.toml")
    target = Path(path) if path else read
    if target.exists() and not force:
        raise InputError(f"{target} exists; nothing written", hint="pass --force to overwrite it")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(commented_defaults().read_bytes())
    except OSError as exc:
        raise TrackerError(f"cannot write {target}: {exc.strerror or exc}") from None
    plain = resolve_path(None) or Path("config/tracker.toml")  # read without --config
    option = "" if target == plain else f"--config {target} "
    click.echo(f"wrote {target}; edit it, then check it with `tracker {option}config check`")


def _to_toml(data: dict) -> str:
    """Just enough TOML for display (tables, arrays of tables, scalars, lists)."""
    import json

    scalars, tables, arrays = [], [], []
    for key, value in data.items():
        if isinstance(value, dict):
            tables.append((key, value))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            arrays.append((key, value))
        else:
            scalars.append(f"{_toml_key(key)} = {json.dumps(value, ensure_ascii=False)}")
    out = list(scalars)
    for key, value in tables:
        nested = {k: v for k, v in value.items() if isinstance(v, dict)}
        flat = {k: v for k, v in value.items() if not isinstance(v, dict)}
        out.append(f"\n[{key}]")
        out.append(_to_toml(flat))
        for sub, subvalue in nested.items():
            out.append(f"\n[{key}.{_toml_key(sub)}]")
            out.append(_to_toml(subvalue))
    for key, items in arrays:
        for item in items:
            out.append(f"\n[[{key}]]")
            out.append(_to_toml(item))
    return "\n".join(line for line in out if line != "")


def _toml_key(key: str) -> str:
    import json
    import re

    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


COMMANDS = [db, config_group]
