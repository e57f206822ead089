"""Ingest use cases (issue 3): fetch every source, backfill arXiv history.

    fetch(app, *, now=None, only=None, progress=False) -> FetchReport
    fetch_under_lease(app, *, only=None, progress=False) -> FetchReport   (`tracker fetch`)
    backfill(app, *, since, until=None, now=None, progress=False) -> SourceReport

Guarantees: one transaction per arXiv page / per feed, holding the items, their scores and
the source's cursor (or HTTP validators) together, so a crash at any point leaves a
consistent store; the arXiv cursor only moves over stored pages (results come oldest update
first), and every fetch re-reads `overlap_hours` before it, so the next run fills any gap.
One source failing is recorded in its health and never stops the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from tracker.errors import ConfigError, InputError, TrackerError
from tracker.models import item_key
from tracker.pipeline import utcnow
from tracker.store import items
from tracker.store.db import describe_error, transaction

log = logging.getLogger(__name__)

FETCH_CHUNK_DAYS = 7  # window size of an incremental fetch (a month-long gap = 5 windows)
BACKFILL_CHUNK_DAYS = 1  # smaller windows for history: daily volume stays far below the cap


@dataclass
class SourceReport:
    name: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    errors: int = 0
    error: str | None = None  # set when the source failed as a whole
    unchanged: bool = False  # a feed that answered 304 Not Modified


@dataclass
class FetchReport:
    sources: list[SourceReport] = field(default_factory=list)

    @property
    def all_failed(self) -> bool:
        return bool(self.sources) and all(s.error for s in self.sources)


def fetch_under_lease(app, *, only: str | None = None, progress: bool = False) -> FetchReport:
    """`tracker fetch`: the fetch as the worker runs it, under the same `fetch` lease and
    recorded in job_runs, so a manual fetch never races the worker's (or another manual
    one) over the same pages. TrackerError when a fetch is already running."""
    from tracker.pipeline.cycle import Runner, fetch_result

    _select(app.config, only)  # an unknown --source is bad input, not a failed run
    reports = []

    def job(app, now):
        reports.append(fetch(app, now=now, only=only, progress=progress))
        result = fetch_result(reports[-1])
        if only:  # not a full fetch: the worker's catch-up must not count it as one
            result.counts["source"] = only
        return result

    result = Runner(app, jobs={"fetch": job}).run_job("fetch")
    if result.outcome == "skipped":
        raise TrackerError(f"a fetch is already running ({result.error})",
                           hint="wait for it to finish (see `tracker status`)")
    if not reports:  # the fetch itself raised; the run is recorded as failed
        raise TrackerError(result.error or "fetch failed")
    return reports[0]


def fetch(app, *, now: datetime | None = None, only: str | None = None,
          progress: bool = False) -> FetchReport:
    """Fetch the selected sources (all enabled ones by default): 'arxiv', 'feeds' or a
    feed name. Each source is stored and scored page by page; see the module docstring."""
    now = now or utcnow()
    want_arxiv, feeds = _select(app.config, only)
    app.sessions  # noqa: B018 - an unusable database is one clear error, not N failed sources
    report = FetchReport()
    with _Progress(progress) as bar:
        if feeds:
            bar.task("feeds", total=len(feeds))
        if want_arxiv:
            report.sources.append(_guarded(app, "arxiv", "arxiv", now,
                                           lambda rep: _fetch_arxiv(app, now, rep, bar)))
        for feed in feeds:
            report.sources.append(_guarded(app, feed.name, "feed", now,
                                           lambda rep, f=feed: _fetch_feed(app, f, now, rep)))
            bar.advance("feeds")
    return report


def backfill(app, *, since: datetime, until: datetime | None = None,
             now: datetime | None = None, progress: bool = False) -> SourceReport:
    """Pull arXiv history for [since, until) (until: default now) in day-sized windows (each
    under the API's result cap). Leaves the incremental cursor alone. On failure the report's
    error says from which date to resume, everything before it being stored; an interrupt
    or a database error logs that advice before it is raised."""
    # each page is stamped first seen when it is stored: a backfill may run for hours, and
    # a digest sent meanwhile must not close a period before pages stamped within it commit
    clock = (lambda: now) if now else utcnow
    now = now or utcnow()
    last_day = f" --until {until - timedelta(microseconds=1):%Y-%m-%d}" if until else ""
    until = until or now
    if since >= now:  # (the until a user may have typed is cut to now)
        raise InputError(f"--since {since:%Y-%m-%d} is in the future: arXiv has nothing "
                         "from then yet")
    if since >= until:
        raise InputError(f"--since {since:%Y-%m-%d} is not before --until {until:%Y-%m-%d}")
    from tracker.sources import arxiv as source

    app.sessions  # noqa: B018 - fail early and clearly on an unusable database
    rep = SourceReport("arxiv")
    client = _client(app.config.arxiv)
    cfg = app.config.arxiv
    done = since
    try:
        with _Progress(progress) as bar:
            chunks = list(source.date_chunks(since, until, BACKFILL_CHUNK_DAYS))
            task = bar.task("backfill", total=len(chunks))
            for start, end in chunks:
                for page in source.window_pages(client, cfg.categories, cfg.query, start, end,
                                                cfg.page_size):
                    _store_papers(app, page, clock(), rep)
                done = end
                bar.advance(task)
    except TrackerError as exc:
        rep.error = (f"{exc.message} (stored up to {done:%Y-%m-%d %H:%M} UTC; "
                     f"re-run with --since {done:%Y-%m-%d}{last_day})")
    except BaseException:  # Ctrl-C, a locked database: the CLI says what; this says where
        log.warning("backfill stopped: stored up to %s UTC; re-run with --since %s%s",
                    f"{done:%Y-%m-%d %H:%M}", f"{done:%Y-%m-%d}", last_day)
        raise
    finally:
        client.close()
    return rep


# --- arXiv ---------------------------------------------------------------------------

def _client(cfg):
    from tracker.sources.arxiv import ArxivClient

    if not cfg.categories and not cfg.query.strip():  # would page through all of arXiv
        raise ConfigError("[arxiv] has neither categories nor a query",
                          hint="set [arxiv] categories (e.g. [\"q-bio.NC\"]) or enabled = false")
    return ArxivClient(cfg.api_url, delay_seconds=cfg.delay_seconds,
                       timeout_seconds=cfg.timeout_seconds, max_retries=cfg.max_retries)


def _fetch_arxiv(app, now: datetime, rep: SourceReport, bar) -> None:
    from tracker.sources import arxiv as source

    cfg = app.config.arxiv
    client = _client(cfg)
    try:
        _fetch_seeds(app, client, now, rep)
        with app.sessions() as session:
            cursor = items.source_state(session, "arxiv", "arxiv").cursor
        overlap = timedelta(hours=cfg.overlap_hours)
        since = cursor - overlap if cursor else now - timedelta(days=cfg.lookback_days)
        if since > now - overlap:  # the cursor is ahead of this machine's clock
            log.warning("arxiv: the cursor (%s UTC) is ahead of this machine's clock "
                        "(%s UTC); is the clock right? fetching the last %d hours",
                        f"{cursor:%Y-%m-%d %H:%M}", f"{now:%Y-%m-%d %H:%M}", cfg.overlap_hours)
            since = now - overlap
        task = bar.task("arxiv", total=None)
        windows = list(source.date_chunks(since, now, FETCH_CHUNK_DAYS))
        done = 0
        for number, (start, end) in enumerate(windows, 1):
            before = done  # the bar counts this window's papers on top of the earlier ones'
            # window_pages yields a page only once it is known to follow on from the
            # previous one without a gap, so the cursor may move with each stored page
            for page in source.window_pages(client, cfg.categories, cfg.query, start, end,
                                            cfg.page_size):
                _store_papers(app, page, now, rep, cursor=True)
                done += len(page.papers)
                bar.advance(task, len(page.papers), total=before + page.total,
                            label=f"arxiv, week {number}/{len(windows)}"
                            if len(windows) > 1 else None)
    finally:
        client.close()


def _fetch_seeds(app, client, now: datetime, rep: SourceReport) -> None:
    """Seed papers (config relevance.seed_papers) not yet stored are fetched once, by id."""
    from tracker.sources import arxiv as source

    seeds = list(dict.fromkeys(item_key(s) for s in app.config.relevance.seed_papers
                               if s.strip()))
    missing = _unstored(app, seeds)
    if not missing:
        return
    try:
        for page in source.id_pages(client, missing):
            _store_papers(app, page, now, rep)
        # what arXiv answered without: a typo, or a withdrawn id
        if unknown := _unstored(app, missing):
            log.warning("arxiv: seed paper(s) %s not found on arXiv; check "
                        "[relevance] seed_papers", ", ".join(unknown))
    except source.GaveUp:
        raise  # the category queries would only wait out the same retries; the source fails
    except TrackerError as exc:  # the category fetch still runs; the next fetch retries
        rep.errors += 1
        log.warning("arxiv: seed papers %s not fetched: %s", ", ".join(missing), exc)


def _unstored(app, ids: list[str]) -> list[str]:
    """The ids of `ids` that no stored paper has, in order (one query)."""
    with app.sessions() as session:
        stored = items.stored_paper_ids(session, ids)
    return [i for i in ids if i not in stored]


def _store_papers(app, page, now: datetime, rep: SourceReport, *, cursor: bool = False) -> None:
    scoring = _Scoring(app)
    with transaction(app.sessions) as session:
        result = items.upsert_papers(session, page.papers, now, score=scoring.score)
        rep.errors += scoring.write(session, result, now)
        if cursor:
            stamps = [p.updated for p in page.papers if p.updated]
            items.advance_cursor(session, "arxiv", "arxiv", max(stamps, default=None))
    rep.fetched += len(page.papers)
    rep.new += len(result.new)
    rep.updated += len(result.updated)
    rep.errors += page.skipped


# --- feeds ---------------------------------------------------------------------------

def _fetch_feed(app, feed, now: datetime, rep: SourceReport) -> None:
    from tracker.sources import feeds as source

    opts = app.config.feed_fetch
    with app.sessions() as session:
        etag, modified = items.http_cache(session, feed.name, feed.url)
    resp = source.fetch(feed.url, etag=etag, last_modified=modified,
                        timeout=opts.timeout_seconds, max_bytes=opts.max_bytes,
                        user_agent=opts.user_agent)
    if resp.status == 304:  # unchanged: nothing to parse or store
        with transaction(app.sessions) as session:
            items.record_success(session, feed.name, "feed", now, warning=items.KEEP)
        rep.unchanged = True
        return
    parsed = source.parse(feed.name, feed.url, resp.body, resp.headers)
    with transaction(app.sessions) as session:
        result = items.upsert_posts(session, parsed.posts, now)
        rep.errors += _Scoring(app).write(session, result, now)
        items.record_success(session, feed.name, "feed", now, warning=parsed.warning,
                             url=feed.url, etag=resp.etag, last_modified=resp.last_modified)
    if parsed.warning:
        log.warning("feed %s: %s", feed.name, parsed.warning)
    rep.fetched, rep.new, rep.updated = len(parsed.posts), len(result.new), len(result.updated)
    rep.errors += parsed.skipped


# --- shared --------------------------------------------------------------------------

def _select(config, only: str | None):
    feeds = [f for f in config.feeds if f.enabled]
    if only is None:
        return config.arxiv.enabled, feeds
    if only == "arxiv":
        if not config.arxiv.enabled:
            log.warning("arxiv is disabled in the config; fetched because --source names it")
        return True, []
    if only == "feeds":
        return False, feeds
    named = [f for f in config.feeds if f.name == only]
    if not named:
        names = ", ".join(["arxiv", "feeds", *(f.name for f in config.feeds)])
        raise InputError(f"unknown source {only!r}", hint=f"one of: {names}")
    if not named[0].enabled:
        log.warning("%s is disabled in the config; fetched because --source names it", only)
    return False, named


def _guarded(app, name: str, kind: str, now: datetime, run) -> SourceReport:
    """Run one source; any failure is recorded in its health and the run goes on."""
    rep = SourceReport(name)
    try:
        run(rep)
    except Exception as exc:  # noqa: BLE001 - one source must never stop the others
        rep.error = describe_error(exc)
        log.warning("%s failed: %s", name, rep.error)
        log.debug("%s: traceback", name, exc_info=True)  # with -v
        try:
            with transaction(app.sessions) as session:
                items.record_failure(session, name, kind, now, rep.error)
        except Exception as store_exc:  # noqa: BLE001 - the database itself is failing
            log.error("%s: could not record the failure: %s", name, describe_error(store_exc))
        return rep
    if kind == "arxiv":
        with transaction(app.sessions) as session:
            items.record_success(session, name, kind, now)
    return rep


class _Scoring:
    """Scores one page's (or feed's) new and updated items, inside its transaction. The
    paper upsert asks for the scores before it writes, so that a new paper is written once,
    with its score; write() adds the history (and scores what was not scored yet). A scoring
    failure counts as one error and never loses the page: its items stay stored, unscored
    or without their history row (`tracker rescore` fixes both)."""

    def __init__(self, app):
        self.app = app
        self.scores = None
        self.failed = False

    def score(self, changed: list):
        from tracker.pipeline import relevance

        try:
            self.scores = relevance.score_items(self.app, changed, lenient=True)
        except Exception as exc:  # noqa: BLE001 - see the class comment
            log.warning("scoring failed, items stored unscored: %s", exc)
            self.failed = True
            return None
        return self.scores.version, {item.id: value for item, value, _ in self.scores.rows}

    def write(self, session, result: items.Upserted, now: datetime) -> int:
        from tracker.pipeline import relevance

        if not result.changed:
            return 0
        if self.scores is None and not self.failed:
            self.score(result.changed)
        if self.failed:
            return 1
        try:
            with session.begin_nested():
                relevance.write_scores(session, self.scores, now, written=result.scored)
        except Exception as exc:  # noqa: BLE001 - see the class comment
            log.warning("scores not recorded (`tracker rescore` records them): %s", exc)
            return 1
        return 0


class _Progress:
    """A rich progress bar when asked for (a terminal), else nothing."""

    def __init__(self, enabled: bool):
        self._bar = None
        self._tasks: dict[str, int] = {}
        if enabled:
            from rich.progress import Progress

            self._bar = Progress(transient=True)

    def __enter__(self):
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc):
        if self._bar:
            self._bar.stop()

    def task(self, name: str, total: int | None = None) -> str:
        if self._bar and name not in self._tasks:
            self._tasks[name] = self._bar.add_task(name, total=total)
        return name

    def advance(self, name: str, n: int = 1, total: int | None = None,
                label: str | None = None) -> None:
        if self._bar and name in self._tasks:
            self._bar.update(self._tasks[name], advance=n,
                             **({"total": total} if total is not None else {}),
                             **({"description": label} if label else {}))
