"""`tracker search`, `tracker show` and `tracker export` end to end through the CLI, on a
small store (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner

from tests.test_formats import parse_bibtex
from tests.test_search import ALL_IDS, seed
from tracker.cli import cli

REQUIRED = {"id", "kind", "title", "url", "published", "score", "categories", "authors",
            "version"}


@pytest.fixture
def run(app, db_url):
    seed(app)

    def invoke(*args):
        return CliRunner().invoke(cli, list(args), env={"TRACKER_DATABASE_URL": db_url})

    return invoke


def test_search_json_contract(run):
    result = run("search", "--format", "json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert {item["id"] for item in items} == ALL_IDS
    assert all(REQUIRED <= set(item) for item in items)
    by_id = {item["id"]: item for item in items}
    assert by_id["math/0211159"]["score"] is None
    assert by_id["post:1"]["kind"] == "post" and by_id["post:1"]["feed"] == "colah"
    assert by_id["2601.00001"]["published"] == "2026-01-10T09:00:00+00:00"
    limited = json.loads(run("search", "--format", "json", "--limit", "2").stdout)
    assert [i["id"] for i in limited] == [i["id"] for i in items[:2]]


def test_search_every_format_parses_back(run):
    args = ["search", "predictive", "coding", "--kind", "paper", "--min-score", "0.5"]
    expected = ["2601.00001", "2601.00002"]
    out = {fmt: run(*args, "--format", fmt) for fmt in
           ("json", "jsonl", "csv", "bibtex", "atom", "table")}
    assert all(r.exit_code == 0 for r in out.values()), {f: r.output for f, r in out.items()}
    assert [i["id"] for i in json.loads(out["json"].stdout)] == expected
    assert [json.loads(line)["id"] for line in out["jsonl"].stdout.splitlines()] == expected
    assert [r["id"] for r in csv.DictReader(io.StringIO(out["csv"].stdout))] == expected
    entries = parse_bibtex(out["bibtex"].stdout)
    assert [fields["eprint"] for _, _, fields in entries] == expected
    assert all(f["archivePrefix"] == "arXiv" and f["primaryClass"] for _, _, f in entries)
    feed = feedparser.parse(out["atom"].stdout.encode())
    assert not feed.bozo and [e.link for e in feed.entries] == [
        f"https://arxiv.org/abs/{pid}" for pid in expected]
    assert "2601.00001" in out["table"].stdout and "2601.00005" not in out["table"].stdout


def test_search_filters_on_the_command_line(run):
    def found(*args):
        result = run("search", "--format", "jsonl", *args)
        assert result.exit_code == 0, result.output
        return [json.loads(line)["id"] for line in result.stdout.splitlines()]

    assert found("--since", "2026-02-05", "--until", "2026-02-10") == ["post:1", "2601.00002"]
    assert found("--until", "2025-12-20") == ["2601.00003", "math/0211159"]  # whole day
    assert found("--until", "20251220") == ["2601.00003", "math/0211159"]  # compact: the same
    assert found("--category", "math.DG", "--category", "q-bio.BM") == [
        "2601.00003", "math/0211159"]
    assert found("--author", "Ada Lovelace") == ["2601.00001"]
    assert found("--feed", "colah") == ["post:1"]
    assert found("--labelled", "irrelevant") == ["2601.00003"]
    assert found("--sort", "score", "--limit", "2", "--offset", "1") == ["post:1", "2601.00005"]
    assert found('"predictive coding"', "--kind", "post") == ["post:1"]


def test_bad_input_is_one_line_and_exit_2(run):
    for args in (["search", "(spiking"], ["search", "NOT retina"], ["search", '"open']):
        result = run(*args)
        assert result.exit_code == 2
        assert result.stderr.startswith("error: invalid search query")
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    for feed in ("", "  "):
        result = run("search", "coding", "--feed", feed)
        assert result.exit_code == 2 and "--feed" in result.stderr and "expected a feed name" \
            in result.stderr and "Traceback" not in result.output
    typo = run("search", "--feed", "Colah")  # posts of a feed gone from the config stay
    assert typo.exit_code == 0 and json.loads(typo.stdout) == []
    assert "no posts from a feed named 'Colah'" in typo.stderr and "colah" in typo.stderr
    assert "no posts" not in run("search", "--feed", "colah").stderr
    bad_date = run("search", "--since", "last week")
    assert bad_date.exit_code == 2 and "expected a date" in bad_date.stderr
    # the day after the last day datetime holds, and a zone before year 1's first midnight
    for option, value in (("--until", "9999-12-31"), ("--since", "0001-01-01T00:00+05:00")):
        result = run("search", option, value)
        assert result.exit_code == 2 and option in result.stderr, (value, result.output)
        assert "out of range" in result.stderr and "Traceback" not in result.output
    reversed_range = run("search", "--since", "2026-12-01", "--until", "2026-11-01")
    assert reversed_range.exit_code == 2 and ("--since 2026-12-01 is not before --until "
                                              "2026-11-01: the range is empty"
                                              in reversed_range.stderr)
    far = run("search", "--offset", "99999999999999999999")
    assert far.exit_code == 2 and "Traceback" not in far.output
    for score in ("nan", "-nan", "1.5"):  # NaN passes every range check by comparison
        result = run("search", "--min-score", score)
        assert result.exit_code == 2 and "--min-score" in result.stderr, score


def test_show_paper_has_the_full_record(run):
    result = run("show", "2601.00001v3", "--format", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["id"] == "2601.00001" and record["label"] == "relevant"
    assert record["versions"] == [{"version": 1, "title": "Predictive coding (draft)",
                                   "updated": "2026-01-10T09:00:00+00:00",
                                   "seen_at": "2026-01-11T09:00:00+00:00"}]
    assert [s["value"] for s in record["scores"]] == [0.4, 0.91]
    assert [p["id"] for p in record["posts"]] == ["post:1"]
    assert [(d["status"], d["position"]) for d in record["digests"]] == [("sent", 1)]
    # it is stored at v1: the v3 the id names is not there, and the user is told
    assert record["version"] == 1 and "WARNING 2601.00001: v3 is not stored; shown as " \
        "stored, at v1 (`tracker fetch` brings new versions)" in result.stderr
    for stored in ("2601.00001v1", "arXiv:2601.00001V1.pdf", "2601.00001"):
        assert run("show", stored).stderr == "", stored
    text = run("show", "arXiv:2601.00001")
    assert text.exit_code == 0 and "Predictive coding in cortical microcircuits" in text.stdout
    assert "linked: post:1" in text.stdout and "scored 0.910 by m1" in text.stdout


def test_show_post_links_papers(run):
    record = json.loads(run("show", "post:1", "--format", "json").stdout)
    assert record["kind"] == "post" and record["refs"] == [
        {"kind": "arxiv", "value": "2601.00001"}]
    assert [p["id"] for p in record["papers"]] == ["2601.00001"]
    assert json.loads(run("show", "post:2", "--format", "json").stdout)["label"] == "relevant"


def test_show_unknown_id_is_not_found_and_a_malformed_one_is_bad_input(run):
    for item, code, message in (("2999.99999", 1, "error: no item"),
                                ("post:99", 1, "error: no item"),
                                ("post:abc", 2, "error: bad item id 'post:abc'"),
                                ("post:99999999999999999999", 2, "error: bad item id"),
                                # past PostgreSQL's integer ids: not a database error
                                ("post:3000000000", 2, "error: bad item id"),
                                ("post:²", 2, "error: bad item id"),
                                ("arXiv: 2601", 2, "error: bad item id")):
        result = run("show", item)
        assert result.exit_code == code
        assert result.stderr.startswith(message) and result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1


def test_ids_are_read_alike_by_every_command(run):
    """The forms people paste: versioned, arXiv: prefixed, abs and pdf URLs."""
    forms = ("2601.00001v2", "arXiv:2601.00001", "https://arxiv.org/abs/2601.00001v1",
             "https://arxiv.org/pdf/2601.00001v1.pdf", " 2601.00001 ")
    old_style = run("show", "arXiv:math.DG/0211159v1", "--format", "json")  # a subject class
    assert json.loads(old_style.stdout)["id"] == "math/0211159"
    for form in forms:
        assert json.loads(run("show", form, "--format", "json").stdout)["id"] == "2601.00001"
        result = run("explain", form)
        assert result.exit_code == 0 and "2601.00001" in result.stdout, result.stderr
        assert run("label", form, "relevant").exit_code == 0


def test_export_whole_store(run, tmp_path):
    result = run("export")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert {item["id"] for item in lines} == ALL_IDS and len(lines) == len(ALL_IDS)
    assert {i["id"]: i["summary"] for i in lines}["post:2"] == "Dendritic spikes, explained."
    target = tmp_path / "store.csv"
    result = run("export", "--format", "csv", "--out", str(target))
    assert result.exit_code == 0 and "exported 7 items" in result.stderr
    rows = list(csv.DictReader(target.open(encoding="utf-8", newline="")))
    assert {row["id"] for row in rows} == ALL_IDS
    assert not (tmp_path / "store.csv.part").exists()
    missing = run("export", "--out", str(tmp_path / "no" / "such" / "dir.jsonl"))
    assert missing.exit_code == 2 and missing.stderr.startswith("error: cannot write")


def test_export_writes_through_a_symlink_into_a_pipe_and_keeps_the_mode(run, tmp_path):
    import os
    import threading

    real, link = tmp_path / "real.jsonl", tmp_path / "link.jsonl"
    real.write_text("old\n")
    real.chmod(0o600)
    link.symlink_to(real)
    assert run("export", "--out", str(link)).exit_code == 0
    assert link.is_symlink() and len(real.read_text().splitlines()) == len(ALL_IDS)
    assert real.stat().st_mode & 0o777 == 0o600

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    result = run("export", "--out", str(fifo))
    reader.join(timeout=10)
    assert result.exit_code == 0 and fifo.exists() and not fifo.is_file()
    assert len(received[0].splitlines()) == len(ALL_IDS)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_export_to_a_full_disk_is_one_error_line(app, db_url):
    seed(app)
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "tracker", "export"], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=60,
                              env={**os.environ, "TRACKER_DATABASE_URL": db_url})
    assert done.returncode == 1
    assert done.stderr.strip() == ("error: cannot write to standard output: "
                                   "No space left on device")


# Libraries the read-only commands must not import: the ORM, schema migrations, the
# relevance model, fetching and the digest. Each is only needed by other commands.
HEAVY = ("sqlalchemy.orm", "alembic", "sklearn", "scipy", "numpy", "feedparser", "arxiv",
         "jinja2", "apscheduler", "pydantic", "requests", "rich")
IMPORTED = """
import sys
from tracker.cli import main
sys.argv = ["tracker", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
heavy = sorted({m for m in sys.modules for h in HEAVY if m == h or m.startswith(h + ".")})
print("EXIT", code, "IMPORTED", " ".join(heavy), file=sys.stderr)
"""


@pytest.mark.parametrize("args", [
    ("--help",),
    ("search", "predictive coding", "--since", "2026-01-01", "--format", "json"),
    ("search", "--format", "csv", "--limit", "3"),
    ("show", "2601.00001"),
    ("show", "post:1", "--format", "json"),
])
def test_read_commands_import_no_heavy_library(app, db_url, args):
    """Start-up time: search and show (on the committed config) import none of HEAVY. Run
    in a fresh interpreter, since this test process has imported all of them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    seed(app)
    app.close()
    env = {**os.environ, "TRACKER_DATABASE_URL": db_url,
           "TRACKER_CONFIG": str(Path(__file__).resolve().parents[1] / "config/tracker.toml")}
    done = subprocess.run([sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{IMPORTED}", *args],
                          env=env, capture_output=True, text=True, timeout=120)
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("EXIT 0 IMPORTED"), done.stderr
    assert last == "EXIT 0 IMPORTED", f"imported: {last.split('IMPORTED')[1]}"
    assert done.stdout.strip()
