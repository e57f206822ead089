"""Search latency on a large store: N synthetic-but-realistic papers (Zipf-distributed
vocabulary with NeuroAI terms and multi-word phrases, as common as in a real week of arXiv
listings: see --calibrate), loaded through the real schema
(migrations, FTS triggers / generated tsvector), then top-50 queries through the real
search code: single term, phrase, prefix, filtered. A plain LIKE scan is the comparison.
Also times CLI start-up (`tracker --help`, `tracker search` on a small store).

    python bench/search.py --n 1000000                 # SQLite and PostgreSQL
    python bench/search.py --n 20000 --no-postgres     # a quick run
    python bench/search.py --startup-only              # CLI start-up figures only
    python bench/search.py --calibrate                 # generated vs real term frequencies

PostgreSQL: $TRACKER_BENCH_POSTGRES_URL, else $TRACKER_TEST_POSTGRES_URL (a schema
`bench_search` is created and dropped). Prints figures; asserts nothing about time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import insert, text

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tracker.store import db  # noqa: E402
from tracker.store import search as store  # noqa: E402
from tracker.store.schema import PaperRow  # noqa: E402

DOMAIN = """neuron neurons neural synapse synaptic dendrite dendritic axon spike spiking cortex
cortical hippocampus hippocampal thalamus striatum cerebellum retina retinal visual auditory
motor sensory prefrontal plasticity learning memory attention representation representations
recurrent convolutional transformer transformers network networks model models inference
bayesian predictive coding prediction error reward dopamine reinforcement policy agent
agents gradient backpropagation credit assignment hebbian oscillation oscillations gamma
theta rhythm population dynamics manifold latent variable encoder decoder embedding
embeddings similarity alignment brain brains fmri electrophysiology calcium imaging
recordings behavior behaviour decision perception object recognition language speech
navigation grid place cells head direction working episodic semantic consolidation sleep
replay energy efficient neuromorphic hardware chip event camera sparse dense coding
normative biologically plausible local rule rules energy free principle active inference
curiosity exploration uncertainty noise variability stochastic deterministic continual
catastrophic forgetting meta generalization abstraction compositional symbolic analogy
reasoning benchmark dataset datasets primate primates mouse mice macaque human humans zebrafish
drosophila connectome connectivity wiring circuit circuits microcircuit interneuron
inhibitory excitatory balance homeostasis gain modulation neuromodulation acetylcholine
serotonin noradrenaline astrocyte glia ion channel membrane potential firing rate rates
temporal spatial receptive field fields tuning curves orientation selectivity invariance
equivariance topographic map maps self supervised contrastive unsupervised generative
diffusion variational autoencoder adversarial estimation optimization loss objective
regularization dropout normalization scaling laws emergent interpretability mechanistic
probing lesion ablation causal intervention tracking eye movements saccade saccades grasping
locomotion robot robotic control controller feedback feedforward lateral topdown bottomup
""".split()
# most common first, as PHRASE_WEEK_COUNTS below counts them
PHRASES = ["reinforcement learning", "self supervised learning", "continual learning",
           "catastrophic forgetting", "receptive field", "event camera",
           "energy efficient", "mechanistic interpretability", "credit assignment",
           "working memory", "recurrent neural network", "scaling laws",
           "spiking neural network", "active inference", "sparse coding",
           "population dynamics", "grid cells", "visual cortex", "predictive coding",
           "dendritic computation", "place cells", "free energy principle",
           "neuromorphic hardware", "representational similarity analysis",
           "synaptic plasticity", "head direction cells", "neural manifold",
           "calcium imaging", "biologically plausible learning rule",
           "temporal difference learning"]
CATEGORIES = ["q-bio.NC", "cs.NE", "cs.LG", "cs.AI", "stat.ML", "cs.CV", "cs.CL", "cs.RO",
              "physics.bio-ph", "q-bio.QM", "eess.SP", "math.OC", "cond-mat.dis-nn"]
FIRST = "Ada Bob Carla Dmitri Elena Farid Grace Hiro Ines Jun Kofi Lena Mateo Nadia Omar".split()
LAST = ("Lovelace Ng Diaz Petrov Rossi Haddad Hopper Tanaka Costa Wang Mensah Berg Silva "
        "Karimi Farouk Schmidt Novak Kim Okafor Larsen Moreau Ito Kowalski Fischer").split()
SYLLABLES = ("ka ro mi ten sul vor pha lin dex tri qua neo mor gen tal bis cor phe nu "
             "ab el os ut ir ven dra plo sca mun").split()
START = datetime(2015, 1, 1, tzinfo=UTC)


# How common the query terms are, matched to a real week of arXiv listings
# (../shared/data/stream_dev.jsonl, 2,210 papers) by running this bench's query mix over
# both with the store's FTS5 tokenizer. A single DOMAIN term matches 2.8% of that week's
# papers at the median, 28% at p90 and 48% at most ("models"): the domain words sit at
# these ranks of the Zipf vocabulary, which gives 2.9%, 30% and 47%.
DOMAIN_RANKS = (20, 25_000)
# How many of those 2,210 papers hold each of the PHRASES; one that none holds gets half a
# paper (0.02%), as a NeuroAI store would hold a few. A paper holds at most one phrase.
PHRASE_WEEK_COUNTS = np.array([130, 18, 16, 16, 9, 9, 9, 6, 4, 4, 4, 4, 2, 2, 2, 2, 1, 1]
                              + [0.5] * 12)
PHRASE_RATE = PHRASE_WEEK_COUNTS.sum() / 2210
PHRASE_P = PHRASE_WEEK_COUNTS / PHRASE_WEEK_COUNTS.sum()


def vocabulary(rng) -> tuple[np.ndarray, np.ndarray]:
    """~60k words ranked by frequency with Zipf-Mandelbrot probabilities: function words
    on top, then a long synthetic tail with the domain words spread through it in log
    space (DOMAIN_RANKS)."""
    function = ("the of and in to a we is for that this with on by are from an as be our "
                "which these can it using show results based between or not also than").split()
    draws = rng.choice(SYLLABLES, size=(120_000, 4))
    sizes = rng.integers(2, 5, size=120_000)
    tail = sorted({"".join(row[:k]) for row, k in zip(draws.tolist(), sizes.tolist(),
                                                     strict=True)} - set(DOMAIN))
    tail = [str(w) for w in rng.permutation(tail)]
    words = function + tail
    ranks = np.geomspace(*DOMAIN_RANKS, len(DOMAIN)).astype(int).tolist()
    for rank, word in sorted(zip(ranks, rng.permutation(DOMAIN).tolist(), strict=True)):
        words.insert(rank, str(word))
    weights = 1.0 / (np.arange(1, len(words) + 1) + 2.7) ** 1.05
    return np.array(words, dtype=object), weights / weights.sum()


def papers(rng, words, probs, start: int, count: int) -> list[dict]:
    """`count` papers; random draws are made per batch (numpy), not per field."""
    lengths = rng.integers(80, 200, size=count).tolist()
    tokens = words[rng.choice(len(words), size=sum(lengths) + count * 10, p=probs)].tolist()
    phrases = [PHRASES[k] if has else None for k, has in zip(
        rng.choice(len(PHRASES), size=count, p=PHRASE_P).tolist(),
        (rng.random(size=count) < PHRASE_RATE).tolist(), strict=True)]
    spots = rng.random(size=count).tolist()
    n_authors = rng.integers(1, 7, size=count).tolist()
    names = [f"{f} {last}" for f, last in zip(rng.choice(FIRST, size=sum(n_authors)).tolist(),
                                            rng.choice(LAST, size=sum(n_authors)).tolist(),
                                            strict=True)]
    cats = rng.choice(CATEGORIES, size=(count, 3)).tolist()
    n_cats = rng.integers(1, 4, size=count).tolist()
    minutes = rng.integers(0, 6_000_000, size=count).tolist()
    scores = rng.random(size=count).tolist()
    unscored = (rng.random(size=count) < 0.3).tolist()
    rows, pos, au, now = [], 0, 0, datetime(2026, 11, 28, tzinfo=UTC)
    for i in range(count):
        title = tokens[pos:pos + 10]
        abstract = tokens[pos + 10:pos + 10 + lengths[i]]
        pos += 10 + lengths[i]
        if phrases[i]:  # in the abstract, and in the title too for a third of them
            abstract.insert(int(spots[i] * len(abstract)), phrases[i])
            if spots[i] < 0.33:
                title.insert(int(spots[i] * 30), phrases[i])
        categories = list(dict.fromkeys(cats[i][:n_cats[i]]))
        published = START + timedelta(minutes=minutes[i])
        rows.append({
            "id": f"{published:%y%m}.{start + i:07d}", "version": 1,
            "title": " ".join(title).capitalize(), "abstract": " ".join(abstract) + ".",
            "authors": names[au:au + n_authors[i]], "categories": categories,
            "primary_category": categories[0], "published": published,
            "first_seen_at": now, "version_seen_at": now,
            "score": None if unscored[i] else round(scores[i], 4)})
        au += n_authors[i]
    return rows


def build(engine, n: int, batch: int, seed: int = 7) -> tuple[float, float]:
    """Bulk load: rows go in at schema revision 0001 (executemany, one transaction per
    batch), then migration 0002 builds the full-text index over them in one pass, as it
    would for an existing store. (Row-by-row, the FTS triggers / GIN updates do the same
    work incrementally; tracker fetch takes that path.)"""
    rng = np.random.default_rng(seed)
    words, probs = vocabulary(rng)
    db.upgrade(engine, "0001")
    started = time.perf_counter()
    for start in range(0, n, batch):
        rows = papers(rng, words, probs, start, min(batch, n - start))
        with engine.begin() as conn:
            conn.execute(insert(PaperRow.__table__), rows)
        done = start + len(rows)
        rate = done / (time.perf_counter() - started)
        print(f"\r  loaded {done:,}/{n:,} ({rate:,.0f} rows/s)", end="", file=sys.stderr)
    print(file=sys.stderr)
    loaded = time.perf_counter()
    db.upgrade(engine, "head")
    with engine.begin() as conn:
        conn.execute(text("ANALYZE" if engine.dialect.name == "sqlite" else "ANALYZE papers"))
    indexed = time.perf_counter()
    return loaded - started, indexed - loaded


def size_mb(engine, path: Path | None) -> float:
    if path is not None:
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1e6
    with engine.connect() as conn:
        return conn.scalar(text("SELECT pg_total_relation_size('papers')")) / 1e6


def query_mix(rng) -> dict[str, list[tuple[str, store.Filters]]]:
    terms = [str(w) for w in rng.choice(DOMAIN, size=40, replace=False)]
    since = datetime(2024, 1, 1, tzinfo=UTC)
    return {
        "single term": [(t, store.Filters()) for t in terms],
        "phrase": [(f'"{p}"', store.Filters()) for p in rng.choice(PHRASES, size=40)],
        "prefix": [(t[:max(4, len(t) - 3)] + "*", store.Filters()) for t in terms],
        "boolean": [(f"{a} AND ({b} OR {c}) NOT {d}", store.Filters())
                    for a, b, c, d in rng.choice(DOMAIN, size=(40, 4))],
        "filtered": [(t, store.Filters(min_score=0.5, since=since,
                                       categories=("q-bio.NC", "cs.NE"))) for t in terms],
        "no query, by score": [("", store.Filters(min_score=0.9))] * 10,
    }


def timed(fn, repeat: int = 1) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def matches(session, text_query: str) -> int:
    """How many papers a query matches (no filters): what its ranking has to score."""
    from tracker.store import search_query

    node = search_query.parse(text_query)
    if node is None:
        return 0
    if session.get_bind().dialect.name == "sqlite":
        sql, value = "SELECT count(*) FROM papers_fts WHERE papers_fts MATCH :q", \
            search_query.to_fts5(node)
    else:
        sql, value = ("SELECT count(*) FROM papers WHERE search_vector @@ "
                      "to_tsquery('english'::regconfig, :q)"), search_query.to_tsquery(node)
    return session.execute(text(sql), {"q": value}).scalar()


def _p95(ms: list[float]) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


# The kinds the target names; their pooled times are printed as "the mix".
TARGET_MIX = ("single term", "phrase", "prefix", "filtered")


def latency(engine, mix) -> None:
    factory = db.session_factory(engine)
    pooled = []
    for name, queries in mix.items():
        with factory() as session:
            store.search(session, queries[0][0], queries[0][1], limit=50)  # warm the cache
            ms = [t for q, f in queries for t in timed(
                lambda q=q, f=f: store.search(session, q, f, limit=50))]
            hits = sorted(matches(session, q) for q, _ in queries)
        pooled += ms if name in TARGET_MIX else []
        p95 = _p95(ms)
        print(f"  {name:<20} p50 {statistics.median(ms):8.1f} ms   p95 {p95:8.1f} ms"
              f"   (n={len(ms)}; matches p50 {statistics.median(hits):,.0f}, "
              f"max {hits[-1]:,})")
    p95 = _p95(pooled)
    print(f"  {'the mix (' + ', '.join(TARGET_MIX) + ')':<20} p50 "
          f"{statistics.median(pooled):8.1f} ms   p95 {p95:8.1f} ms   (n={len(pooled)}; "
          "target p50 < 30 ms, p95 < 150 ms)")
    # As `tracker search` runs: a new process, so a new connection (and a cold SQLite page
    # cache) for each query. Includes opening the connection.
    url = engine.url.render_as_string(hide_password=False)
    for name, label in (("single term", "single, new conn."), ("filtered", "filtered, new conn.")):
        ms = []
        for q, f in mix[name]:
            fresh = db.make_engine(url)
            ms += timed(lambda q=q, f=f, fresh=fresh: _search_once(fresh, q, f))
            fresh.dispose()
        p95 = _p95(ms)
        print(f"  {label:<20} p50 {statistics.median(ms):8.1f} ms   "
              f"p95 {p95:8.1f} ms   (n={len(ms)}; a new connection for each query)")


def _search_once(engine, q: str, f) -> None:
    with engine.connect() as conn:
        store.search(conn, q, f, limit=50)


def like_scan(engine, terms: list[str]) -> None:
    """The comparison: LIKE over title and abstract. "Newest 50" can stop early when the
    term is common; "all matches" has to read every row, as a rare term always does."""
    op = "ILIKE" if engine.dialect.name == "postgresql" else "LIKE"
    where = f"title {op} :p OR abstract {op} :p"
    for label, sql in (("LIKE, newest 50", f"SELECT id FROM papers WHERE {where} "
                                           "ORDER BY published DESC LIMIT 50"),
                       ("LIKE, all matches", f"SELECT count(*) FROM papers WHERE {where}")):
        with engine.connect() as conn:
            ms = [t for term in terms for t in timed(
                lambda term=term, sql=sql: conn.execute(text(sql), {"p": f"%{term}%"}).all())]
        print(f"  {label:<20} p50 {statistics.median(ms):8.1f} ms   max {max(ms):8.1f} ms"
              f"   (n={len(ms)})")


def run_backend(label: str, url: str, n: int, batch: int, path: Path | None, *,
                build_it: bool = True) -> None:
    engine = db.make_engine(url)
    if build_it:
        print(f"{label}: building {n:,} papers ...")
        load, index = build(engine, n, batch)
        print(f"  build {load + index:,.1f} s = load {load:,.1f} s (generate + insert, "
              f"{n / load:,.0f} papers/s) + full-text index {index:,.1f} s")
    else:  # a store built by an older version: bring it to the current schema first
        started = time.perf_counter()
        before, after = db.upgrade(engine)
        if before != after:
            print(f"{label}: upgraded {before} -> {after} in "
                  f"{time.perf_counter() - started:,.0f} s")
    with engine.connect() as conn:
        count = conn.scalar(text("SELECT count(*) FROM papers"))
    print(f"{label}: {count:,} papers, {size_mb(engine, path):,.0f} MB")
    rng = np.random.default_rng(11)
    latency(engine, query_mix(rng))
    like_scan(engine, [str(w) for w in rng.choice(DOMAIN, size=3, replace=False)])
    engine.dispose()


def cli_startup(workdir: Path) -> None:
    path = workdir / "small.db"
    for stale in path.parent.glob(path.name + "*"):  # from an earlier run (-wal, -shm too)
        stale.unlink()
    small = f"sqlite:///{path}"
    engine = db.make_engine(small)
    build(engine, 500, 500)
    with engine.connect() as conn:
        some_id = conn.execute(text("SELECT id FROM papers ORDER BY id LIMIT 1")).scalar()
    engine.dispose()
    env = {**os.environ, "TRACKER_DATABASE_URL": small, "TRACKER_CONFIG": ""}
    tracker = str(Path(sys.executable).with_name("tracker"))
    for args in (["--help"], ["search", "dendritic", "--format", "json"],
                 ["search", "--format", "table", "--limit", "20"], ["show", some_id],
                 ["status"]):
        ms = sorted(t for t in timed(lambda args=args: subprocess.run(
            [tracker, *args], env=env, capture_output=True, check=True), repeat=10))
        print(f"  tracker {' '.join(args):<36} median {statistics.median(ms):6.0f} ms  "
              f"range {ms[0]:4.0f}-{ms[-1]:4.0f} ms (10 runs)")
    print("  import cost, each alone in a fresh interpreter (median of 5):")
    for label, code in (("python itself", "pass"), ("tracker.cli", "import tracker.cli"),
                        ("sqlalchemy (Core)", "import sqlalchemy"),
                        ("sqlalchemy.orm (not for search/show)", "import sqlalchemy.orm"),
                        ("tracker.config", "import tracker.config"),
                        ("alembic (db upgrade only)", "import alembic.runtime.migration, "
                         "alembic.script"),
                        ("tracker.pipeline.query (all)", "import tracker.pipeline.query"),
                        ("rich.table (--format table)", "import rich.table")):
        ms = sorted(t for t in timed(lambda code=code: subprocess.run(
            [sys.executable, "-c", code], env=env, check=True), repeat=5))
        print(f"    {label:<38} {ms[2]:6.0f} ms")


def calibrate(week: Path, n: int = 20_000) -> None:
    """The share of papers each kind of query in the mix matches: in the real week and in
    n generated papers, both indexed with the store's FTS5 tokenizer."""
    import json

    from tracker.store import search_query

    if not week.is_file():
        raise SystemExit(f"--calibrate needs the real week of listings: {week} not found")

    def indexed(name: str, rows):
        # a store made by the migrations; its FTS table indexes the rows given it directly
        path = Path(workdir.name) / f"{name}.db"
        engine = db.make_engine(f"sqlite:///{path}")
        db.upgrade(engine)
        engine.dispose()
        conn = db.sqlite_dbapi().connect(path)
        conn.executemany("INSERT INTO papers_fts (title, abstract, authors) VALUES (?, ?, ?)",
                         rows)
        return conn, len(rows)

    workdir = tempfile.TemporaryDirectory(prefix="tracker-calibrate-")  # removed on exit
    real = [json.loads(line) for line in week.read_text().splitlines() if line.strip()]
    rng = np.random.default_rng(7)
    words, probs = vocabulary(rng)
    stores = {f"real week ({len(real):,})": indexed("real",
                  [(r["title"], r["abstract"], " ".join(r.get("authors", []))) for r in real]),
              f"generated ({n:,})": indexed("generated",
                  [(p["title"], p["abstract"], " ".join(p["authors"]))
                   for p in papers(rng, words, probs, 0, n)])}
    mix = query_mix(np.random.default_rng(11))
    print("share of papers matched, p50 / p90 / max:")
    for name in ("single term", "phrase", "prefix", "boolean"):
        cells = []
        for conn, size in stores.values():
            shares = sorted(conn.execute("SELECT count(*) FROM papers_fts WHERE papers_fts MATCH ?",
                                         (search_query.to_fts5(search_query.parse(q)),))
                            .fetchone()[0] / size * 100 for q, _ in mix[name])
            cells.append(f"{shares[len(shares) // 2]:5.2f}% {shares[int(len(shares) * .9)]:5.1f}%"
                         f" {shares[-1]:5.1f}%")
        print(f"  {name:<12} " + "   ".join(f"{label}: {c}" for label, c in
                                           zip(stores, cells, strict=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="papers to generate")
    parser.add_argument("--batch", type=int, default=20_000, help="rows per transaction")
    parser.add_argument("--workdir", type=Path, help="where the SQLite files go (default: tmp)")
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--reuse", action="store_true",
                        help="query the stores already built (SQLite: bench.db in --workdir; "
                             "PostgreSQL: schema bench_search kept by --keep-postgres)")
    parser.add_argument("--keep-postgres", action="store_true",
                        help="keep the PostgreSQL schema bench_search for later --reuse runs")
    parser.add_argument("--startup-only", action="store_true",
                        help="only the CLI start-up figures (small store; no large build)")
    parser.add_argument("--calibrate", nargs="?", const=REPO.parent / "shared" / "data" /
                        "stream_dev.jsonl", type=Path, metavar="JSONL",
                        help="only compare how many papers the query mix matches in a real "
                             "week of listings (default ../shared/data/stream_dev.jsonl) and "
                             "in generated papers")
    args = parser.parse_args()
    if args.calibrate:
        calibrate(args.calibrate)
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tracker-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    if not args.reuse:
        print("CLI start-up (small store, 500 papers):")
        cli_startup(workdir)
    if args.startup_only:
        return
    if not args.no_sqlite:
        path = workdir / "bench.db"
        if not args.reuse:
            path.unlink(missing_ok=True)
        run_backend("SQLite (FTS5)", f"sqlite:///{path}", args.n, args.batch, path,
                    build_it=not args.reuse)
    pg_url = os.environ.get("TRACKER_BENCH_POSTGRES_URL") or os.environ.get(
        "TRACKER_TEST_POSTGRES_URL")
    if args.no_postgres:
        return
    if not pg_url:
        print("PostgreSQL: skipped (set TRACKER_BENCH_POSTGRES_URL or TRACKER_TEST_POSTGRES_URL)")
        return
    run_postgres(pg_url, args.n, args.batch, reuse=args.reuse,
                 keep=args.keep_postgres or args.reuse)


def run_postgres(base_url: str, n: int, batch: int, *, reuse: bool, keep: bool) -> None:
    admin = db.make_engine(base_url)
    with admin.begin() as conn:
        if not reuse:
            conn.execute(text("DROP SCHEMA IF EXISTS bench_search CASCADE"))
            conn.execute(text("CREATE SCHEMA bench_search"))
        elif not conn.scalar(text("SELECT 1 FROM pg_namespace WHERE nspname = 'bench_search'")):
            raise SystemExit("--reuse: no schema bench_search (build it with --keep-postgres)")
    sep = "&" if "?" in base_url else "?"
    try:
        run_backend("PostgreSQL (tsvector + GIN)",
                    f"{base_url}{sep}options=-csearch_path%3Dbench_search", n, batch, None,
                    build_it=not reuse)
    finally:
        if not keep:
            with admin.begin() as conn:
                conn.execute(text("DROP SCHEMA bench_search CASCADE"))
        admin.dispose()


if __name__ == "__main__":
    main()
