"""Ingest throughput: synthetic-but-realistic arXiv pages served by a local HTTP server
(delay 0), through the real `tracker fetch` command into SQLite, against a raw ceiling:
the same XML bytes parsed with lxml and inserted into a bare SQLite table. Both start with
their modules imported (the worker imports once; the one-off import time is printed).

    python bench/ingest.py [--entries 10000] [--page-size 200] [--repeat 5]

Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.arxiv_fake import HEAD, entry_xml, make_entries  # noqa: E402
from tests.localserver import LocalServer, Reply  # noqa: E402

ATOM = "{http://www.w3.org/2005/Atom}"
ARXIV = "{http://arxiv.org/schemas/atom}"


def build_entries(n: int, now: datetime) -> list[str]:
    """The Atom XML of each entry of one 6-day window, oldest update first."""
    entries = make_entries(n, now - timedelta(days=6), step=timedelta(days=6) / n)
    return [entry_xml(e) for e in entries]


def page_xml(entries: list[str], start: int, size: int) -> bytes:
    """One API response: the entries from `start`, as the API pages them."""
    head = HEAD.format(query="q", per_page=size, total=len(entries), start=start)
    return (head + "".join(entries[start:start + size]) + "</feed>\n").encode()


def serve(entries: list[str]):
    def reply(request):
        args = parse_qs(request.query)
        start, size = int(args["start"][0]), int(args["max_results"][0])
        return Reply(200, page_xml(entries, start, size), {"Content-Type": "application/atom+xml"})
    return reply


class Stopwatch:
    """Wraps a function to add up the time spent in it (for the breakdown)."""

    def __init__(self, module, name: str):
        self.total, original = 0.0, getattr(module, name)

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.total += time.perf_counter() - started

        setattr(module, name, timed)


def fetch_path_watches() -> dict[str, Stopwatch]:
    """Imports the modules of the fetch path, as the worker has them after its first run
    (the raw ceiling's lxml is imported before its clock starts too), and prints what
    that costs once per process: what a `tracker fetch` in a new process adds."""
    started = time.perf_counter()
    from tracker.pipeline import ingest, relevance  # noqa: F401
    from tracker.scoring import scorer  # noqa: F401
    from tracker.sources import arxiv
    from tracker.store import items

    print(f"  imports of the fetch path, once per process: {time.perf_counter() - started:.2f} s")
    return {"parse": Stopwatch(arxiv, "parse_page"),
            "store (incl. triggers and scoring)": Stopwatch(items, "upsert_papers"),
            "scoring": Stopwatch(relevance, "score_items"),
            "score history": Stopwatch(relevance, "write_scores")}


def run_tracker(api_url: str, db_path: Path, page_size: int,
                watches: dict[str, Stopwatch]) -> tuple[float, float, str]:
    from click.testing import CliRunner

    from tracker.cli import cli
    from tracker.config import from_dict
    from tracker.pipeline import App

    config = db_path.parent / "bench.toml"
    config.write_text(f'[database]\nurl = "sqlite:///{db_path}"\n\n[arxiv]\n'
                      f'api_url = "{api_url}"\ndelay_seconds = 0\npage_size = {page_size}\n'
                      'lookback_days = 7\n\n[relevance]\nseed_papers = []\n')
    app = App(from_dict({"database": {"url": f"sqlite:///{db_path}"}}))
    app.sessions  # noqa: B018 - create the schema outside the timed part
    app.close()
    for watch in watches.values():
        watch.total = 0.0
    started, cpu = time.perf_counter(), time.process_time()
    result = CliRunner().invoke(cli, ["--config", str(config), "fetch", "--source", "arxiv"])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    if result.exit_code != 0:
        raise SystemExit(f"tracker fetch failed: {result.output}")
    return elapsed, cpu, result.stdout.strip()


def run_raw(pages: list[bytes], db_path: Path) -> tuple[float, float]:
    """The ceiling: lxml parse + executemany into a bare table, no HTTP, no checks."""
    from lxml import etree

    conn = sqlite3.connect(db_path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE papers (id TEXT PRIMARY KEY, title TEXT, abstract TEXT, "
                 "authors TEXT, categories TEXT, published TEXT, updated TEXT)")
    started, cpu = time.perf_counter(), time.process_time()
    for body in pages:
        root = etree.fromstring(body)
        rows = [(e.findtext(f"{ATOM}id"), e.findtext(f"{ATOM}title"),
                 e.findtext(f"{ATOM}summary"),
                 "|".join(a.findtext(f"{ATOM}name") for a in e.iter(f"{ATOM}author")),
                 "|".join(c.get("term") for c in e.iter(f"{ATOM}category")),
                 e.findtext(f"{ATOM}published"), e.findtext(f"{ATOM}updated"))
                for e in root.iter(f"{ATOM}entry")]
        with conn:
            conn.executemany("INSERT INTO papers VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    conn.close()
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=10_000)
    parser.add_argument("--page-size", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5, help="runs of each; medians printed")
    parser.add_argument("--no-score", action="store_true",
                        help="no scoring: the ingest path alone")
    args = parser.parse_args()
    if args.no_score:
        from tracker.pipeline import ingest

        ingest._Scoring.score = lambda *args: None
        ingest._Scoring.write = lambda *args: 0
    now = datetime.now(UTC).replace(microsecond=0)
    entries = build_entries(args.entries, now)
    # the raw ceiling reads the same pages, one after the other
    pages = [page_xml(entries, i, args.page_size) for i in range(0, args.entries, args.page_size)]
    size = sum(map(len, pages))
    print(f"{args.entries} entries in {len(pages)} pages of {args.page_size} "
          f"({size / 1e6:.1f} MB of Atom XML)")
    watches = fetch_path_watches()
    tracked, raw = [], []
    with tempfile.TemporaryDirectory() as tmp, LocalServer() as server:
        server.route("/api/query", serve(entries))
        for run in range(args.repeat):  # alternated, so a busy spell hits both sides
            wall, cpu, output = run_tracker(server.url("/api/query"),
                                            Path(tmp) / f"tracker{run}.db", args.page_size,
                                            watches)
            tracked.append((wall, cpu))
            raw.append(run_raw(pages, Path(tmp) / f"raw{run}.db"))
            parts = ", ".join(f"{k} {w.total:.2f} s" for k, w in watches.items())
            print(f"  run {run + 1}: tracker {wall:.2f} s ({parts}); raw {raw[-1][0]:.2f} s"
                  f"   [{output}]")
    # CPU seconds (this process, server thread included) stay meaningful on a busy machine;
    # wall seconds are what a user waits. Medians over the runs.
    (t_wall, t_cpu), (r_wall, r_cpu) = (tuple(statistics.median(x) for x in zip(*runs, strict=True))
                                        for runs in (tracked, raw))
    n = args.entries
    print(f"  tracker fetch (HTTP + parse + store + score):  {t_wall:6.2f} s wall "
          f"{t_cpu:6.2f} s CPU {n / t_wall:8.0f} entries/s wall {n / t_cpu:8.0f}/s CPU")
    print(f"  raw lxml + executemany (no HTTP, no checks):   {r_wall:6.2f} s wall "
          f"{r_cpu:6.2f} s CPU {n / r_wall:8.0f} entries/s wall {n / r_cpu:8.0f}/s CPU")
    print(f"  ratio tracker/raw (medians of {args.repeat}): {t_wall / r_wall:.2f}x wall, "
          f"{t_cpu / r_cpu:.2f}x CPU (target: >= 2000 entries/s, within 4x)")


if __name__ == "__main__":
    main()
