"""arXiv ingest end to end: a fake arXiv API on a local HTTP server (real HTTP, real XML,
real databases on both backends), with the faults the real API produces."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy import func, select

from tests.arxiv_fake import FakeArxiv, feed_xml, make_entries
from tests.localserver import Reply
from tracker.pipeline import App, relevance
from tracker.pipeline.ingest import backfill, fetch
from tracker.sources import arxiv as source
from tracker.store.schema import PaperRow, PaperVersionRow, SourceStateRow

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "arxiv"


@pytest.fixture
def arxiv_app(make_config, local_server):
    """An App whose arXiv source is the fake API; 45 papers over the last 6 days."""
    entries = make_entries(45, NOW - timedelta(days=6), step=timedelta(hours=3))
    fake = FakeArxiv(entries)
    local_server.route("/api/query", fake)

    def build(**arxiv):
        opts = {"api_url": local_server.url("/api/query"), "delay_seconds": 0,
                "page_size": 10, "timeout_seconds": 2, "max_retries": 2} | arxiv
        return App(make_config({"arxiv": opts, "relevance": {"seed_papers": []}}))

    apps = []
    yield fake, lambda **kw: apps.append(build(**kw)) or apps[-1]
    for app in apps:
        app.close()


def papers(app) -> dict[str, int]:
    with app.sessions() as s:
        return dict(s.execute(select(PaperRow.id, PaperRow.version)).all())


def state(app) -> SourceStateRow:
    with app.sessions() as s:
        return s.get(SourceStateRow, "arxiv")


def test_first_fetch_stores_everything_once_and_second_run_is_idempotent(arxiv_app, local_server):
    fake, build = arxiv_app
    app = build()
    (rep,) = fetch(app, now=NOW).sources
    assert (rep.fetched, rep.new, rep.updated, rep.errors, rep.error) == (45, 45, 0, 0, None)
    assert set(papers(app)) == {e.id for e in fake.entries}
    st = state(app)
    assert st.cursor == max(e.updated for e in fake.entries)
    assert (st.last_success_at, st.consecutive_failures, st.last_error) == (NOW, 0, None)
    later = NOW + timedelta(hours=1)
    (again,) = fetch(app, now=later).sources
    assert (again.new, again.updated, again.error) == (0, 0, None)
    assert len(papers(app)) == 45
    # the second run re-reads overlap_hours (48) before the cursor, not the whole lookback
    query = parse_qs([r.query for r in local_server.requests][-1])["search_query"][0]
    since = re.search(r"lastUpdatedDate:\[(\d{12})", query)[1]
    assert since == f"{st.cursor - timedelta(hours=48):%Y%m%d%H%M}"


def test_new_version_updates_the_record_and_counts_as_update(arxiv_app):
    fake, build = arxiv_app
    app = build()
    fetch(app, now=NOW)
    old = fake.entries[7]
    fake.entries[7] = old.bumped(NOW + timedelta(hours=1), title="Neural coding, revised")
    later = NOW + timedelta(hours=2)
    (rep,) = fetch(app, now=later).sources
    assert (rep.new, rep.updated) == (0, 1)
    with app.sessions() as s:
        row = s.get(PaperRow, old.id)
        assert (row.version, row.title) == (2, "Neural coding, revised")
        assert (row.first_seen_at, row.version_seen_at) == (NOW, later)
        versions = s.scalars(select(PaperVersionRow.version)
                             .where(PaperVersionRow.paper_id == old.id)).all()
        assert sorted(versions) == [1, 2]
        assert s.scalar(select(func.count()).select_from(PaperRow)) == 45


def empty_page(start: int) -> Reply:
    return Reply(200, feed_xml([], 45, start, 10))


FAULTS = {
    "503 then success": ({1: Reply(503, b"Service Unavailable")}, {}),
    "429 with Retry-After": ({1: Reply(429, b"", {"Retry-After": "1"})}, {}),
    "empty middle page": ({2: empty_page(20)}, {}),
    "empty first page that reports results": ({0: empty_page(0)}, {}),
    "truncated XML": ({1: Reply(200, feed_xml(make_entries(10, NOW), 45, 10, 10),
                                truncate_at=700)}, {}),
    "malformed XML": ({3: Reply(200, feed_xml(make_entries(10, NOW), 45, 30, 10)[:900])}, {}),
    "slow response past the timeout": ({1: Reply(200, b"", delay=1.5)}, {"timeout_seconds": 0.5}),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_faults_are_retried_and_nothing_is_lost_or_duplicated(arxiv_app, local_server, fault):
    fake, build = arxiv_app
    fake.faults, opts = FAULTS[fault]
    app = build(**opts)
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None and rep.new == 45
    assert set(papers(app)) == {e.id for e in fake.entries}
    assert fake.served == 5 + 1  # five pages plus the one retried request
    st = state(app)
    assert st.cursor == max(e.updated for e in fake.entries) and st.consecutive_failures == 0
    if fault == "429 with Retry-After":  # honoured: the retry waited at least 1 s
        stamps = [r.at for r in local_server.requests]
        assert stamps[2] - stamps[1] >= 0.99


def test_a_failed_run_keeps_what_it_stored_and_the_next_run_fills_the_gap(arxiv_app):
    fake, build = arxiv_app
    app = build(max_retries=1)
    fake.faults = {n: Reply(503, b"down") for n in range(2, 100)}
    (rep,) = fetch(app, now=NOW).sources
    # two pages of 10; the second starts one entry early (to notice a changed listing)
    assert rep.error and "HTTP 503" in rep.error and (rep.new, rep.fetched) == (19, 19)
    stored = papers(app)
    assert len(stored) == 19
    st = state(app)
    first_19 = sorted(fake.entries, key=lambda e: e.updated)[:19]
    assert st.cursor == max(e.updated for e in first_19)  # only over what was stored
    assert (st.consecutive_failures, st.last_error_at, st.last_success_at) == (1, NOW, None)
    fake.faults = {}
    later = NOW + timedelta(hours=6)
    (rep2,) = fetch(app, now=later).sources
    assert rep2.error is None and rep2.new == 26
    assert set(papers(app)) == {e.id for e in fake.entries}
    st = state(app)
    assert (st.consecutive_failures, st.last_success_at) == (0, later)
    assert st.last_error_at == NOW  # history of the last error is kept


class RevisedWhileRead(FakeArxiv):
    """After request `after`, `count` early papers get a new version (an update time past
    the fetch's window), as happens when arXiv announces while a fetch reads the pages."""

    def __init__(self, entries, *, after: int, count: int, every: bool = False):
        super().__init__(entries)
        self.after, self.count, self.every = after, count, every

    def __call__(self, request):
        reply = super().__call__(request)
        if self.served - 1 == self.after or (self.every and self.served > self.after):
            ordered = sorted(self.entries, key=lambda e: e.updated)
            revised = {e.id for e in ordered[:self.count]}
            self.entries = [e.bumped(NOW + timedelta(minutes=5 + self.served))
                            if e.id in revised else e for e in self.entries]
        return reply


@pytest.mark.parametrize("count", [1, 3])  # within the one-entry overlap, and beyond it
def test_papers_revised_while_the_pages_are_read_never_make_the_fetch_skip_one(
        arxiv_app, local_server, count):
    fake, build = arxiv_app
    moving = RevisedWhileRead(fake.entries, after=0, count=count)
    local_server.route("/api/query", moving)
    app = build()
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None
    assert set(papers(app)) == {e.id for e in fake.entries}  # all 45, each once
    assert rep.new == 45 and rep.fetched == 45
    assert state(app).cursor == max(e.updated for e in fake.entries)  # the window's newest


def test_a_listing_that_keeps_changing_fails_the_source_and_keeps_the_cursor(
        arxiv_app, local_server):
    fake, build = arxiv_app
    local_server.route("/api/query", RevisedWhileRead(fake.entries, after=0, count=2,
                                                      every=True))
    app = build()
    (rep,) = fetch(app, now=NOW).sources
    assert "kept changing" in rep.error and rep.new > 0  # what was read is kept
    # the cursor passed no paper that was not stored
    stored = set(papers(app))
    unread = [e.updated for e in fake.entries if e.id not in stored]
    assert unread and state(app).cursor < min(unread)


def test_an_unreadable_entry_where_pages_overlap_does_not_look_like_a_changed_listing(
        arxiv_app, local_server):
    fake, build = arxiv_app
    bad = sorted(fake.entries, key=lambda e: e.updated)[9]  # the last of the first page,
    local_server.route("/api/query", FakeArxiv(  # which the second page starts with
        [replace(e, title="") if e is bad else e for e in fake.entries]))
    app = build()
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None and rep.errors == 1  # counted once
    assert set(papers(app)) == {e.id for e in fake.entries} - {bad.id}


def test_a_page_of_only_unreadable_entries_is_not_an_empty_page(arxiv_app, local_server):
    """Retried as the API's empty page, it failed the source at every fetch, for good."""
    fake, build = arxiv_app
    first = sorted(fake.entries, key=lambda e: e.updated)[:3]
    local_server.route("/api/query", FakeArxiv(
        [replace(e, title="") if e in first else e for e in fake.entries]))
    app = build(page_size=3)
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None and rep.errors == 3
    assert set(papers(app)) == {e.id for e in fake.entries} - {e.id for e in first}


def test_a_total_that_shrinks_between_pages_never_ends_a_window_early(arxiv_app,
                                                                     local_server):
    """The last page read was full, so more may follow: stopping at a smaller total the API
    reported meanwhile lost the rest of the window for good (the cursor moved past it)."""
    fake, build = arxiv_app

    class Shrinking(FakeArxiv):
        def page(self, args):
            text = super().page(args)
            if self.served > 1:  # from the second request on, a glitch says 12 in all
                text = re.sub(r"<opensearch:totalResults>\d+<",
                              "<opensearch:totalResults>12<", text, count=1)
            return text

    local_server.route("/api/query", Shrinking(fake.entries))
    app = build()
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None and set(papers(app)) == {e.id for e in fake.entries}


def test_the_progress_of_a_fetch_over_several_weeks_never_runs_ahead(arxiv_app, monkeypatch):
    from tracker.pipeline import ingest

    fake, build = arxiv_app
    fake.entries += make_entries(30, NOW - timedelta(days=20), step=timedelta(hours=11),
                                 prefix="2610")
    shown = []

    class Recording(ingest._Progress):  # the real rich bar, read after each step
        def advance(self, name, *args, **kwargs):
            super().advance(name, *args, **kwargs)
            task = self._bar.tasks[-1]
            shown.append((task.completed, task.total, task.description))

    monkeypatch.setattr(ingest, "_Progress", Recording)
    fetch(build(lookback_days=20), now=NOW, progress=True)
    assert len(shown) > 3 and all(done <= total for done, total, _ in shown)
    assert shown[0][0] < shown[0][1]  # not at 100% after the first page
    assert shown[-1][2] == "arxiv, week 3/3" and shown[-1][0] == shown[-1][1] >= 75


def test_more_entries_in_two_minutes_than_the_api_serves_are_counted_as_errors(
        arxiv_app, monkeypatch, caplog):
    from tracker.sources import arxiv as source

    fake, build = arxiv_app
    monkeypatch.setattr(source, "RESULT_CAP", 20)  # the API's is 30,000
    burst = make_entries(25, NOW - timedelta(days=1), step=timedelta(seconds=2), prefix="2612")
    fake.entries = burst
    (rep,) = fetch(build(), now=NOW).sources
    assert rep.new == 20 and rep.errors >= 5 and rep.error is None  # (windows meet in a minute)
    assert "the API serves at most 20: 5 cannot be fetched" in caplog.text


def test_cross_lists_and_old_style_ids_are_stored_once(arxiv_app, local_server):
    _, build = arxiv_app
    sample = (DATA / "versions_crosslist_oldstyle.xml").read_bytes()
    local_server.route("/api/query", Reply(200, sample))
    app = build()
    (rep,) = fetch(app, now=NOW).sources
    assert (rep.fetched, rep.new, rep.error) == (4, 3, None)
    assert papers(app) == {"math/0211159": 1, "2210.08340": 2, "2209.03718": 1}
    with app.sessions() as s:
        assert s.get(PaperRow, "2209.03718").categories == ["q-bio.NC", "cs.LG", "cs.NE"]


def test_windows_over_the_result_cap_are_split(arxiv_app, local_server, monkeypatch):
    fake, build = arxiv_app
    monkeypatch.setattr(source, "RESULT_CAP", 12)
    app = build()
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None and set(papers(app)) == {e.id for e in fake.entries}
    for query in [r.query for r in local_server.requests]:
        args = parse_qs(query)
        assert int(args["start"][0]) + int(args["max_results"][0]) <= 12


def test_seed_papers_are_fetched_once_by_id(arxiv_app, make_config, local_server, caplog):
    fake, _ = arxiv_app
    old = make_entries(3, NOW - timedelta(days=400), prefix="2401")
    fake.entries += old
    app = App(make_config({"arxiv": {"api_url": local_server.url("/api/query"),
                                     "delay_seconds": 0, "page_size": 10},
                           "relevance": {"seed_papers": [old[0].id, old[2].id + "v1",
                                                         "2401.99999"]}}))
    try:
        with caplog.at_level("WARNING", logger="tracker.pipeline.ingest"):
            (rep,) = fetch(app, now=NOW).sources
        assert rep.error is None and rep.new == 47
        assert [r.getMessage() for r in caplog.records] == [
            "arxiv: seed paper(s) 2401.99999 not found on arXiv; check [relevance] seed_papers"]
        assert {old[0].id, old[2].id} <= set(papers(app)) and old[1].id not in papers(app)
        id_requests = [q for q in [r.query for r in local_server.requests] if "id_list" in q]
        assert len(id_requests) == 1
        fetch(app, now=NOW + timedelta(hours=1))  # asks again for the unknown one only
        id_requests = [q for q in [r.query for r in local_server.requests] if "id_list" in q]
        assert len(id_requests) == 2 and "2401.99999" in id_requests[1]
        assert old[0].id not in id_requests[1]
    finally:
        app.close()


@pytest.mark.parametrize("seed_reply,fails", [(Reply(503, b"busy"), True),
                                               (Reply(400, b"bad id_list"), False)])
def test_seed_failures(arxiv_app, make_config, local_server, seed_reply, fails):
    """An API that answers nothing usable within the retries fails the source at the seed
    lookup (waiting out the same retries again for the categories would only double an
    offline user's wait); a refused seed lookup is one error and the categories still run."""
    fake, _ = arxiv_app
    local_server.route("/api/query",
                       lambda req: seed_reply if "id_list" in req.query else fake(req))
    app = App(make_config({"arxiv": {"api_url": local_server.url("/api/query"),
                                     "delay_seconds": 0, "page_size": 10, "max_retries": 1},
                           "relevance": {"seed_papers": ["2210.08340"]}}))
    try:
        (rep,) = fetch(app, now=NOW).sources
        seed_requests = [r for r in local_server.requests if "id_list" in r.query]
        if fails:
            assert "HTTP 503 (gave up after 2 attempts)" in rep.error
            assert len(seed_requests) == 2 == len(local_server.requests)
            assert papers(app) == {} and state(app).cursor is None
        else:
            assert (rep.error, rep.errors, rep.new) == (None, 1, 45)
            assert len(seed_requests) == 1
    finally:
        app.close()


@pytest.mark.parametrize("name,expected", [("1605.08386", "1605.08386"),
                                           ("1707.08567", "1707.08567"),
                                           ("astro-ph_0601001", "astro-ph/0601001")])
def test_recorded_responses_over_http(shared_dir, make_config, local_server, name, expected):
    """Real API responses (recorded by the arxiv package) served as the API: seed lookups by
    id, and the real empty result set for the category window."""
    bodies = shared_dir / "fixtures" / "arxiv_api" / "bodies_extracted"
    one = next(bodies.glob(f"id_{name}_*")).read_bytes()
    empty = next(bodies.glob("id_0000.0000_*")).read_bytes()
    local_server.route("/api/query",
                       lambda req: Reply(200, one if "id_list" in req.query else empty))
    app = App(make_config({"arxiv": {"api_url": local_server.url("/api/query"),
                                     "delay_seconds": 0},
                           "relevance": {"seed_papers": [expected]}}))
    try:
        (rep,) = fetch(app, now=NOW).sources
        assert (rep.new, rep.error) == (1, None)
        version = int(re.search(rb"<id>http://arxiv\.org/abs/.+?v(\d+)</id>", one)[1])
        assert papers(app) == {expected: version}
        assert state(app).cursor is None  # seeds never move the cursor; the window was empty
    finally:
        app.close()


def test_every_new_and_updated_paper_is_scored_in_its_page(arxiv_app, monkeypatch):
    from tracker.store.schema import ScoreRow

    fake, build = arxiv_app
    calls, score_items = [], relevance.score_items

    def recorder(app, items, **options):
        assert {item.kind for item in items} == {"paper"}
        calls.append([item.id for item in items])
        return score_items(app, items, **options)

    def stored(app):  # each paper's current score and the values of its history rows
        with app.sessions() as s:
            history = s.execute(select(ScoreRow.paper_id, ScoreRow.value)).all()
            return {pid: (score, [v for p, v in history if p == pid])
                    for pid, score in s.execute(select(PaperRow.id, PaperRow.score))}

    monkeypatch.setattr(relevance, "score_items", recorder)
    app = build()
    fetch(app, now=NOW)
    assert len(calls) == 5 and sorted(sum(calls, [])) == sorted(e.id for e in fake.entries)
    first = stored(app)
    assert all(score is not None and values == [score] for score, values in first.values())
    fake.entries[0] = fake.entries[0].bumped(NOW + timedelta(minutes=5),
                                             title="Dendritic computation in cortex")
    calls.clear()
    fetch(app, now=NOW + timedelta(hours=1))
    assert sum(calls, []) == [fake.entries[0].id]
    score, values = stored(app)[fake.entries[0].id]
    assert values[-1] == score != first[fake.entries[0].id][0] and len(values) == 2


def test_a_new_version_is_rescored_and_history_grows_only_when_the_score_changes(arxiv_app):
    from tracker.store.schema import ScoreRow

    fake, build = arxiv_app
    app = build()
    fetch(app, now=NOW)

    def history(paper_id):
        with app.sessions() as s:
            return s.scalars(select(ScoreRow.value).where(ScoreRow.paper_id == paper_id)
                             .order_by(ScoreRow.id)).all()

    def current(paper_id):
        with app.sessions() as s:
            return s.get(PaperRow, paper_id).score

    same, changed = fake.entries[0], fake.entries[1]
    assert len(history(same.id)) == len(history(changed.id)) == 1
    fake.entries[0] = same.bumped(NOW + timedelta(minutes=5), title=same.title)
    fake.entries[1] = changed.bumped(NOW + timedelta(minutes=5),
                                     title="Spiking neural networks and dendritic computation")
    fetch(app, now=NOW + timedelta(hours=1))
    assert papers(app)[same.id] == 2 and papers(app)[changed.id] == 2
    assert len(history(same.id)) == 1  # same text, same model: no new history row
    old, new = history(changed.id)
    assert new > old and current(changed.id) == new


def test_a_new_cross_list_without_a_new_version_is_scored_again(arxiv_app):
    """Categories count in the score (cold start: q-bio.NC raises it), so a paper cross-listed
    to q-bio.NC after its announcement moves up without waiting for a rescore."""
    from dataclasses import replace

    fake, build = arxiv_app
    fake.entries[0] = replace(fake.entries[0], categories=("cs.LG",))
    app = build()
    fetch(app, now=NOW)
    with app.sessions() as s:
        before = s.get(PaperRow, fake.entries[0].id).score
    fake.entries[0] = replace(fake.entries[0], categories=("cs.LG", "q-bio.NC"),
                              updated=NOW - timedelta(hours=1))
    (rep,) = fetch(app, now=NOW + timedelta(hours=1)).sources
    assert (rep.new, rep.updated) == (0, 0)  # the same version: not an update
    with app.sessions() as s:
        row = s.get(PaperRow, fake.entries[0].id)
    assert row.categories == ["cs.LG", "q-bio.NC"] and row.version == 1
    assert row.score > before


def test_a_scoring_failure_never_loses_the_page(arxiv_app, monkeypatch):
    fake, build = arxiv_app

    def broken(*args):
        raise RuntimeError("model file is corrupt")

    monkeypatch.setattr(relevance, "score_items", broken)
    app = build()
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None and rep.errors == 5 and len(papers(app)) == 45
    with app.sessions() as s:
        assert s.scalars(select(PaperRow.score).distinct()).all() == [None]


def test_backfill_pulls_history_in_day_windows_and_leaves_the_cursor(arxiv_app, local_server):
    fake, build = arxiv_app
    history = make_entries(30, datetime(2025, 3, 1, tzinfo=UTC), step=timedelta(hours=11),
                           prefix="2503")
    fake.entries += history
    app = build()
    rep = backfill(app, since=datetime(2025, 3, 1, tzinfo=UTC),
                   until=datetime(2025, 3, 15, tzinfo=UTC), now=NOW)
    assert (rep.new, rep.error) == (30, None)
    assert set(papers(app)) == {e.id for e in history}
    for query in [r.query for r in local_server.requests]:
        window = parse_qs(query)["search_query"][0]
        low, high = re.search(r"\[(\d{12}) TO (\d{12})\]", window).groups()
        span = datetime.strptime(high, "%Y%m%d%H%M") - datetime.strptime(low, "%Y%m%d%H%M")
        assert span <= timedelta(days=1)
    assert state(app) is None or state(app).cursor is None
    again = backfill(app, since=datetime(2025, 3, 1, tzinfo=UTC),
                     until=datetime(2025, 3, 15, tzinfo=UTC), now=NOW)
    assert (again.new, again.updated, again.error) == (0, 0, None) and len(papers(app)) == 30


def test_backfill_stamps_each_page_when_it_is_stored(arxiv_app):
    """A backfill may run for hours: with the start time on every page, a digest sent
    meanwhile closed a period before later pages stamped within it were committed."""
    from tracker.pipeline import utcnow

    fake, build = arxiv_app
    fake.entries += make_entries(30, datetime(2025, 3, 1, tzinfo=UTC),
                                 step=timedelta(hours=11), prefix="2503")
    app = build()
    started = utcnow()
    rep = backfill(app, since=datetime(2025, 3, 1, tzinfo=UTC),
                   until=datetime(2025, 3, 15, tzinfo=UTC))  # the CLI's call: no `now`
    assert rep.new == 30
    with app.sessions() as s:
        stamps = s.scalars(select(PaperRow.first_seen_at).distinct()).all()
    assert len(stamps) > 1 and min(stamps) >= started  # one a page (day window) stored


def test_backfill_failure_says_where_to_resume(arxiv_app):
    fake, build = arxiv_app
    fake.outage = Reply(503, b"down")
    app = build(max_retries=0)
    rep = backfill(app, since=datetime(2025, 3, 1, tzinfo=UTC),
                   until=datetime(2025, 3, 3, tzinfo=UTC), now=NOW)
    # the last day asked for (the 3rd is excluded here, as the CLI's --until 2025-03-02)
    assert rep.error and "re-run with --since 2025-03-01 --until 2025-03-02" in rep.error
    assert "next fetch" not in rep.error  # the fetch's resume hint; backfill has no cursor
    rep = backfill(app, since=datetime(2025, 3, 1, tzinfo=UTC), now=NOW)  # up to now
    assert rep.error.endswith("re-run with --since 2025-03-01)")


def test_an_interrupted_backfill_says_where_to_resume(arxiv_app, monkeypatch, caplog):
    fake, build = arxiv_app
    fake.entries += make_entries(30, datetime(2025, 3, 1, tzinfo=UTC),
                                 step=timedelta(hours=11), prefix="2503")
    app = build()
    from tracker.pipeline import ingest

    stored = ingest._store_papers

    def interrupted_on_the_third_day(app, page, now, rep, **kwargs):
        if page.papers and page.papers[0].updated >= datetime(2025, 3, 3, tzinfo=UTC):
            raise KeyboardInterrupt
        stored(app, page, now, rep, **kwargs)

    monkeypatch.setattr(ingest, "_store_papers", interrupted_on_the_third_day)
    with pytest.raises(KeyboardInterrupt):
        backfill(app, since=datetime(2025, 3, 1, tzinfo=UTC),
                 until=datetime(2025, 3, 15, tzinfo=UTC), now=NOW)
    assert "stored up to 2025-03-03 00:00 UTC; re-run with --since 2025-03-03 --until " \
        "2025-03-14" in caplog.text


def test_cli_backfill_and_json_fetch(db_url, tmp_path, local_server):
    import json

    from click.testing import CliRunner

    from tracker.cli import cli

    history = make_entries(12, datetime(2025, 3, 1, tzinfo=UTC), step=timedelta(hours=3),
                           prefix="2503")
    local_server.route("/api/query", FakeArxiv(history))
    config = tmp_path / "tracker.toml"
    config.write_text(f'[database]\nurl = "{db_url}"\n\n[arxiv]\napi_url = '
                      f'"{local_server.url("/api/query")}"\ndelay_seconds = 0\n\n'
                      "[relevance]\nseed_papers = []\n")
    runner = CliRunner()
    base = ["--config", str(config)]
    result = runner.invoke(cli, [*base, "backfill", "--since", "2025-03-01",
                                 "--until", "2025-03-02"])  # the 2nd included
    assert result.exit_code == 0, result.output
    assert "arxiv: fetched" in result.output and "new 12, updated 0, errors 0" in result.output
    result = runner.invoke(cli, [*base, "backfill", "--since", "2025-03-05", "--until",
                                 "2025-03-01"])
    assert result.exit_code == 2 and "--since 2025-03-05 is not before --until 2025-03-01" \
        in result.output
    for until in ([], ["--until", "2999-01-31"]):  # what is not there yet: nothing to pull
        result = runner.invoke(cli, [*base, "backfill", "--since", "2999-01-01", *until])
        assert result.exit_code == 2 and "--since 2999-01-01 is in the future: arXiv has " \
            "nothing from then yet" in result.output, result.output
    result = runner.invoke(cli, [*base, "backfill", "--since", "March 1st"])
    assert result.exit_code == 2 and "expected a date like 2024-03-31" in result.output
    result = runner.invoke(cli, [*base, "fetch", "--source", "arxiv", "--format", "json"])
    assert result.exit_code == 0, result.output
    (line,) = json.loads(result.stdout)  # the run's log lines go to stderr
    assert line["source"] == "arxiv" and line["error"] is None and line["new"] == 0


def test_no_categories_and_no_query_is_refused_not_a_crawl_of_all_arxiv(arxiv_app):
    from tracker.errors import ConfigError

    fake, build = arxiv_app
    with pytest.raises(ConfigError, match="would page through all of arXiv"):
        build(categories=[], query="")  # `tracker config check` says so too
    app = build(categories=[], query="", enabled=False)  # valid; then fetched by name:
    (rep,) = fetch(app, now=NOW, only="arxiv").sources
    assert "neither categories nor a query" in rep.error and fake.served == 0


def test_a_cursor_ahead_of_the_clock_still_fetches_the_overlap(arxiv_app, caplog):
    """A clock set back (or a cursor from a clock that ran ahead) made every fetch an empty
    window, silently, until the clock caught up with the cursor."""
    fake, build = arxiv_app
    app = build()
    fetch(app, now=NOW)
    behind = NOW - timedelta(days=5)  # the cursor is NOW - 12 h
    fake.entries.append(make_entries(1, behind - timedelta(hours=1), prefix="2612")[0])
    with caplog.at_level("WARNING", logger="tracker.pipeline.ingest"):
        (rep,) = fetch(app, now=behind).sources
    assert (rep.new, rep.error) == (1, None) and "2612.00000" in papers(app)
    assert any("ahead of this machine's clock" in r.getMessage() for r in caplog.records)
