"""The CLI skeleton: help, version, config check, db upgrade, and the error handler."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from tracker.cli import cli


def run(*args, env=None):
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def test_help_lists_commands_with_examples():
    result = run("--help")
    assert result.exit_code == 0
    assert "db" in result.output and "config" in result.output
    pending = [(name, command) for name, command in cli.commands.items()]
    while pending:
        name, command = pending.pop()
        assert "Example" in (command.help or ""), f"`tracker {name}` help has no example"
        for sub_name, sub in getattr(command, "commands", {}).items():
            pending.append((f"{name} {sub_name}", sub))


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and "tracker, version" in result.output


def test_config_check_masks_secrets(tmp_path):
    env = {"TRACKER_DATABASE_URL": "postgresql+psycopg://me:topsecret@db/x",
           "TRACKER_SMTP_PASSWORD": "hunter2"}
    result = run("config", "check", env=env)
    assert result.exit_code == 0, result.output
    assert "valid" in result.output and "me:***@db/x" in result.output
    assert "# smtp password ($TRACKER_SMTP_PASSWORD): ***" in result.output
    assert "topsecret" not in result.output and "hunter2" not in result.output


def test_config_check_output_loads_as_the_same_config(tmp_path):
    saved = tmp_path / "effective.toml"
    saved.write_text(run("config", "check", env={"TRACKER_CONFIG": ""}).output)
    again = run("--config", str(saved), "config", "check", "--format", "json")
    default = run("config", "check", "--format", "json", env={"TRACKER_CONFIG": ""})
    assert again.exit_code == 0, again.output
    assert json.loads(again.output)["config"] == json.loads(default.output)["config"]


def test_config_init_writes_the_commented_defaults_and_never_overwrites_unasked(
        tmp_path, monkeypatch):
    committed = Path(__file__).parents[1] / "config" / "tracker.toml"
    monkeypatch.chdir(tmp_path)  # a new install: no config/ here yet
    result = run("config", "init", env={"TRACKER_CONFIG": ""})
    assert (result.exit_code, result.output) == (
        0, "wrote config/tracker.toml; edit it, then check it with `tracker config check`\n")
    written = tmp_path / "config" / "tracker.toml"
    assert written.read_bytes() == committed.read_bytes()
    checked = run("config", "check", env={"TRACKER_CONFIG": ""})
    assert checked.output.startswith("# effective config (from config/tracker.toml); valid")
    written.write_text("# mine\n")
    result = CliRunner().invoke(cli, ["config", "init"])
    assert result.exit_code == 2 and "config/tracker.toml exists; nothing written" in \
        result.output and "--force" in result.output
    assert written.read_text() == "# mine\n"
    result = run("config", "init", "--force", "lab/neuro.toml")
    assert "`tracker --config lab/neuro.toml config check`" in result.output
    assert (tmp_path / "lab" / "neuro.toml").read_bytes() == committed.read_bytes()
    # with --config or $TRACKER_CONFIG, that is the file written, and the one checked
    result = run("--config", "mine.toml", "config", "init")
    assert result.output == ("wrote mine.toml; edit it, then check it with "
                             "`tracker --config mine.toml config check`\n")
    result = run("config", "init", env={"TRACKER_CONFIG": "env.toml"})
    assert result.exit_code == 0 and (tmp_path / "env.toml").is_file()
    blocked = CliRunner().invoke(cli, ["config", "init", "config/tracker.toml/x.toml"])
    assert blocked.exit_code == 1 and "cannot write config/tracker.toml/x.toml" in \
        blocked.output and "Traceback" not in blocked.output


@pytest.mark.parametrize(("words", "offered"), [("tracker di", "plain,digest"),
                                                 ("tracker digest s", "plain,send"),
                                                 ("tracker search --format ", "plain,bibtex")])
def test_shell_completion_offers_commands_and_choices(words, offered):
    """As `eval "$(_TRACKER_COMPLETE=bash_source tracker)"` (README) asks for them."""
    env = {**os.environ, "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1),
           "_TRACKER_COMPLETE": "bash_complete"}
    proc = subprocess.run([sys.executable, "-m", "tracker"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and offered in proc.stdout.splitlines(), proc.stderr


def test_broken_config_exits_2_with_one_line_and_no_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[schedule]\ndigest = "whenever"\n')
    command = [sys.executable, "-m", "tracker", "--config", str(bad), "config", "check"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert str(bad) in proc.stderr and "schedule.digest" in proc.stderr


def test_a_fatal_error_is_a_json_log_record_under_log_format_json(tmp_path):
    """A log collector reading the worker's stderr parses every line, the last one too."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[schedule]\ndigest = "whenever"\n')
    command = [sys.executable, "-m", "tracker", "--log-format", "json", "--config", str(bad),
               "worker"]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    [line] = proc.stderr.splitlines()
    record = json.loads(line)
    assert (record["level"], record["event"], record["exit_code"]) == ("error", "exit", 2)
    assert record["message"].startswith("error: ") and "schedule.digest" in record["message"]


def test_db_upgrade_then_current(db_url):
    env = {"TRACKER_DATABASE_URL": db_url}
    first = run("db", "upgrade", env=env)
    assert first.exit_code == 0 and "upgraded (empty) -> 0" in first.output
    again = run("db", "upgrade", env=env)
    assert again.exit_code == 0 and "already at revision" in again.output
    older = run("db", "upgrade", "--revision", "0002", env=env)
    assert older.exit_code == 0 and "past 0002 (upgrade never goes down)" in older.output
    current = run("db", "current", env=env)
    assert "up to date" in current.output


def test_db_upgrade_to_an_unknown_revision_is_bad_input(sqlite_url):
    result = run("db", "upgrade", "--revision", "9999", env={"TRACKER_DATABASE_URL": sqlite_url})
    assert result.exit_code == 2
    assert result.output.startswith("error: cannot upgrade to revision '9999'")


def test_unreachable_database_is_one_line_error(tmp_path):
    env = {"TRACKER_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"}
    proc = subprocess.run([sys.executable, "-m", "tracker", "db", "upgrade"], capture_output=True,
                          text=True, timeout=60, env={**_base_env(), **env})
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: cannot use database") and "Traceback" not in proc.stderr
    current = run("db", "current", env=env)  # what an admin checking the database runs
    assert current.exit_code == 1 and current.output.startswith("error: cannot use database")
    assert current.output.count("\n") == 1


def test_database_urls_as_users_write_them(tmp_path):
    """postgres:// and postgresql:// (as hosting services print them) mean the psycopg 3
    driver we ship; other schemes and an SQLite folder that cannot be made are one line."""
    from tracker.store import db

    for url in ("postgres://me@127.0.0.1/x", "postgresql://me@127.0.0.1/x"):
        engine = db.make_engine(url)
        assert engine.url.drivername == "postgresql+psycopg"
        engine.dispose()
    # $TRACKER_DATABASE_URL is checked as [database] url is: an invalid config, exit 2,
    # naming the variable but never its value (it may hold a password)
    for url, message in (("mysql://me:pw@127.0.0.1/x", "expected a sqlite:/// or postgresql"),
                         ("sqlitefoo:///x.db", "expected a sqlite:/// or postgresql"),
                         ("postgresql+psycopg://me:pw@127.0.0.1:notaport/x",
                          "the port in the URL is not a number"),
                         # the driver read "w@127.0.0.1" as the host, and said so
                         ("postgresql+psycopg://me:p@w@127.0.0.1:5999/x",
                          "more than one '@' before the host: write an '@' of the user name "
                          "or password as %40"),
                         ("postgresql+psycopg://me:p/w@x@127.0.0.1:5999/x",  # '/' too
                          "more than one '@' before the host")):
        for command in (["status"], ["config", "check"]):
            result = run(*command, env={"TRACKER_DATABASE_URL": url})
            assert (result.exit_code, result.output.count("\n")) == (2, 1), result.output
            assert f"$TRACKER_DATABASE_URL: {message}" in result.output
            assert "pw" not in result.output and "@127" not in result.output
    result = run("status", env={"TRACKER_DATABASE_URL": "postgresql+psycopg2://me@127.0.0.1/x"})
    assert result.exit_code == 1 and "use a postgresql+psycopg:// URL" in result.output
    (tmp_path / "file").write_text("a file where the folder would go")
    result = run("db", "upgrade",
                 env={"TRACKER_DATABASE_URL": f"sqlite:///{tmp_path}/file/db.sqlite"})
    assert (result.exit_code, result.output.count("\n")) == (1, 1), result.output
    assert f"cannot create the folder {tmp_path}/file of the SQLite database" in result.output
    bad = tmp_path / "bad.toml"
    bad.write_text('[database]\nurl = "sqlitefoo:///x.db"\n')
    result = run("--config", str(bad), "config", "check")
    assert result.exit_code == 2 and "database.url" in result.output


def _base_env():
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("TRACKER_")}


def test_commands_that_only_read_never_create_a_database_elsewhere(tmp_path, monkeypatch):
    """Run from the wrong directory, a relative sqlite:/// path names a file that is not
    there: reading commands say where they looked instead of answering from a new, empty
    store (and leave no file or folder behind); `status` shows the path it reads."""
    missing = tmp_path / "elsewhere" / "tracker.db"
    env = {"TRACKER_DATABASE_URL": f"sqlite:///{missing}", "TRACKER_CONFIG": ""}
    for command in (["search", "dendrites"], ["show", "2401.00001"], ["export"],
                    ["explain", "2401.00001"], ["label", "2401.00001", "relevant"], ["tune"],
                    ["rescore"],
                    ["digest", "preview"],
                    ["digest", "list"], ["db", "current"], ["status"],
                    ["digest", "send", "--dry-run"]):
        result = run(*command, env=env)
        assert (result.exit_code, result.output.count("\n")) == (1, 1), (command, result.output)
        assert f"error: no database at {missing}" in result.output
        assert "tracker fetch" in result.output
        assert not missing.parent.exists(), command
    small = Path(__file__).parent / "data" / "labels" / "small.jsonl"
    evaluated = run("eval", "--labels", str(small), env=env)  # a new install's cold start
    assert evaluated.exit_code == 0 and not missing.parent.exists(), evaluated.output
    monkeypatch.chdir(tmp_path)  # a new install: db upgrade (or fetch) creates the store
    env = {**env, "TRACKER_DATABASE_URL": "sqlite:///data/t.db"}
    assert run("db", "upgrade", env=env).exit_code == 0
    result = run("status", env=env)
    assert result.exit_code == 0, result.output
    assert f"database  sqlite:///data/t.db ({tmp_path / 'data' / 't.db'})" in result.output
    assert (tmp_path / "data" / "t.db").is_file()


def test_commands_that_only_read_never_create_the_schema_in_an_empty_database(db_url):
    """The wrong PostgreSQL database (or an empty SQLite file) is not a new store to fill
    with the tracker's tables."""
    from sqlalchemy import inspect

    from tracker.store import db

    if db_url.startswith("sqlite"):
        open(db_url.removeprefix("sqlite:///"), "wb").close()
    env = {"TRACKER_DATABASE_URL": db_url, "TRACKER_CONFIG": ""}
    for command in (["search", "dendrites"], ["show", "2401.00001"], ["digest", "list"],
                    ["status"], ["digest", "send", "--dry-run"]):
        result = run(*command, env=env)
        assert (result.exit_code, result.output.count("\n")) == (1, 1), (command, result.output)
        assert "holds no tracker store yet" in result.output and "tracker fetch" in result.output
    small = Path(__file__).parent / "data" / "labels" / "small.jsonl"
    assert run("eval", "--labels", str(small), env=env).exit_code == 0  # cold start's view
    engine = db.make_engine(db_url)
    assert inspect(engine).get_table_names() == []
    engine.dispose()
    assert run("db", "upgrade", env=env).exit_code == 0  # a command that writes creates it
    assert run("status", env=env).exit_code == 0


def test_tracker_run_without_recipients_says_no_digest_goes_out(tmp_path):
    config = tmp_path / "t.toml"
    config.write_text("feeds = []\n[arxiv]\nenabled = false\n")
    result = run("--config", str(config), "run",
                 env={"TRACKER_DATABASE_URL": f"sqlite:///{tmp_path / 't.db'}"})
    assert result.output.splitlines()[-1] == "digest: none sent ([digest] recipients is empty)"


def test_a_read_only_database_is_one_line_with_a_hint_not_an_internal_error(tmp_path):
    path = tmp_path / "t.db"
    assert run("db", "upgrade", env={"TRACKER_DATABASE_URL": f"sqlite:///{path}"}).exit_code == 0
    # opened read-only by SQLite itself: what a file this user cannot write gives
    env = {"TRACKER_DATABASE_URL": f"sqlite:///file:{path}?mode=ro&uri=true",
           "TRACKER_CONFIG": ""}
    result = CliRunner().invoke(cli, ["fetch", "--source", "arxiv"], env=env)
    assert result.exit_code == 1
    assert result.output == ("error: database error: attempt to write a readonly database "
                             "(hint: this user cannot write the database file or its folder, "
                             "or [database] url opens it read-only)\n")


def test_a_database_path_that_is_a_directory_says_so(tmp_path):
    (tmp_path / "tracker.db").mkdir()
    result = run("db", "upgrade", env={"TRACKER_DATABASE_URL": f"sqlite:///{tmp_path}/tracker.db"})
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert f"{tmp_path}/tracker.db is a directory; [database] url must name a file" in \
        result.output


@pytest.mark.parametrize("command", [["status"], ["fetch", "--source", "arxiv"], ["db", "upgrade"]])
def test_a_database_file_name_too_long_for_the_file_system_is_one_line(tmp_path, command):
    path = tmp_path / ("a" * 300 + ".db")
    result = run(*command, env={"TRACKER_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert result.output.startswith(f"error: cannot use '{path}' as the SQLite database: "
                                    "File name too long (hint: check [database] url")
