"""Feed ingest end to end over a local HTTP server, on both backends: conditional GET,
errors and health, the real blog feeds and feedparser's own suite served as feeds."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest
from click.testing import CliRunner
from sqlalchemy import select

from tests.localserver import Reply
from tracker.cli import cli
from tracker.pipeline import App
from tracker.pipeline.ingest import fetch
from tracker.sources import feeds
from tracker.store.schema import PostRefRow, PostRow, SourceStateRow

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)
DATA = Path(__file__).parent / "data" / "feeds"
RSS = {"Content-Type": "application/rss+xml; charset=UTF-8"}


@pytest.fixture
def feed_app(make_config, local_server):
    apps = []

    def build(names, **fetch_opts):
        feeds_cfg = [{"name": n, "url": local_server.url(f"/{n}")} for n in names]
        app = App(make_config({"arxiv": {"enabled": False}, "feeds": feeds_cfg,
                               "feed_fetch": fetch_opts}))
        apps.append(app)
        return app

    yield build
    for app in apps:
        app.close()


def posts(app, feed=None) -> list[PostRow]:
    with app.sessions() as s:
        query = select(PostRow).order_by(PostRow.id)
        return list(s.scalars(query.where(PostRow.feed == feed) if feed else query))


def state(app, name) -> SourceStateRow:
    with app.sessions() as s:
        return s.get(SourceStateRow, name)


def test_posts_refs_and_conditional_get(feed_app, local_server):
    body = (DATA / "neuro_rss.xml").read_bytes()
    validators = {"ETag": '"v1"', "Last-Modified": "Thu, 26 Nov 2026 09:12:44 GMT"}

    def serve(request):
        if request.headers.get("If-None-Match") == '"v1"':
            return Reply(304, b"", validators)
        return Reply(200, body, RSS | validators)

    local_server.route("/neuro", serve)
    app = feed_app(["neuro"])
    (rep,) = fetch(app, now=NOW).sources
    assert (rep.fetched, rep.new, rep.updated, rep.error) == (3, 3, 0, None)
    first = posts(app)[0]
    assert first.guid == "https://neuro.example.org/?p=1201" and "<script" not in first.content_html
    with app.sessions() as s:
        refs = set(s.execute(select(PostRefRow.kind, PostRefRow.value)
                             .where(PostRefRow.post_id == first.id)).all())
    assert refs == {("arxiv", "2210.08340"), ("arxiv", "2209.03718"), ("arxiv", "math/0211159"),
                    ("doi", "10.1038/s41467-023-37180-x")}
    st = state(app, "neuro")
    assert (st.etag, st.last_modified, st.last_success_at) == ('"v1"', validators["Last-Modified"],
                                                               NOW)
    later = NOW + timedelta(hours=1)
    (again,) = fetch(app, now=later).sources
    assert (again.fetched, again.new, again.error) == (0, 0, None)
    last = local_server.hits("/neuro")[-1]
    assert last.headers["If-None-Match"] == '"v1"'
    assert last.headers["If-Modified-Since"] == validators["Last-Modified"]
    assert state(app, "neuro").last_success_at == later and len(posts(app)) == 3


def test_a_feed_moved_to_a_new_url_is_fetched_whole_there(make_config, local_server):
    """The ETag and Last-Modified of the old URL mean nothing to the new one: sent there,
    a 304 would keep every post of the new URL out for good."""
    validators = {"ETag": '"v1"', "Last-Modified": "Thu, 26 Nov 2026 09:12:44 GMT"}

    def serve(body):
        def reply(request):
            if request.headers.get("If-None-Match") == '"v1"':
                return Reply(304, b"", validators)
            return Reply(200, body, RSS | validators)
        return reply

    local_server.route("/old", serve(b"<rss version='2.0'><channel><title>t</title></channel>"
                                     b"</rss>"))
    local_server.route("/new", serve((DATA / "neuro_rss.xml").read_bytes()))
    apps = [App(make_config({"arxiv": {"enabled": False},
                             "feeds": [{"name": "neuro", "url": local_server.url(path)}]}))
            for path in ("/old", "/new")]
    try:
        assert fetch(apps[0], now=NOW).sources[0].error is None
        (moved,) = fetch(apps[1], now=NOW + timedelta(hours=1)).sources
        assert "If-None-Match" not in local_server.hits("/new")[0].headers
        assert (moved.new, moved.unchanged) == (3, False) and len(posts(apps[1])) == 3
        (again,) = fetch(apps[1], now=NOW + timedelta(hours=2)).sources
        assert again.unchanged and local_server.hits("/new")[-1].headers["If-None-Match"] == '"v1"'
    finally:
        for app in apps:
            app.close()


def test_a_changed_entry_is_updated_never_duplicated(feed_app, local_server):
    body = (DATA / "neuro_rss.xml").read_bytes()
    local_server.route("/neuro", Reply(200, body, RSS),
                       Reply(200, body.replace(b"Only a title and a date", b"New words"), RSS))
    app = feed_app(["neuro"])
    fetch(app, now=NOW)
    (rep,) = fetch(app, now=NOW + timedelta(hours=1)).sources
    assert (rep.new, rep.updated) == (0, 1)
    assert [p.summary_text for p in posts(app)][2] == "New words identify me."
    assert len(posts(app)) == 3


def test_failures_are_recorded_per_source_and_never_stop_the_others(feed_app, local_server):
    local_server.route("/good", Reply(200, (DATA / "neuro_rss.xml").read_bytes(), RSS))
    local_server.route("/gone", Reply(404, b"not here"))
    local_server.route("/busy", Reply(503, b"later", {"Retry-After": "3600"}))
    local_server.route("/html", Reply(200, (DATA / "not_a_feed.html").read_bytes(),
                                      {"Content-Type": "text/html"}))
    local_server.route("/slow", Reply(200, b"", delay=1.5))
    local_server.route("/huge", Reply(200, b"<rss>" + b" " * 9000 + b"</rss>", RSS))
    local_server.route("/broken", Reply(200, (DATA / "broken_atom.xml").read_bytes(),
                                        {"Content-Type": "application/atom+xml"}))
    app = feed_app(["gone", "busy", "html", "slow", "good", "huge", "broken"],
                   timeout_seconds=0.5, max_bytes=4096)
    report = fetch(app, now=NOW)
    by_name = {r.name: r for r in report.sources}
    assert not report.all_failed
    assert "HTTP 404" in by_name["gone"].error and "check the feed URL" in by_name["gone"].error
    assert "HTTP 503" in by_name["busy"].error and "busy or down" in by_name["busy"].error
    assert "not an RSS/Atom feed" in by_name["html"].error
    assert "no answer" in by_name["slow"].error
    assert "larger than 4096 bytes" in by_name["huge"].error
    assert by_name["good"].error is None and by_name["good"].new == 3
    assert by_name["broken"].error is None and by_name["broken"].new == 1
    assert "ill-formed" in state(app, "broken").last_warning
    assert state(app, "good").last_warning is None
    gone = state(app, "gone")
    assert (gone.consecutive_failures, gone.last_error_at, gone.last_success_at) == (1, NOW, None)
    fetch(app, now=NOW + timedelta(hours=1), only="gone")
    assert state(app, "gone").consecutive_failures == 2
    assert state(app, "good").consecutive_failures == 0


@pytest.mark.parametrize("content_type", ["text/html; charset=UTF-8",
                                          "text/xml"])  # RFC 3023 says us-ascii; it is UTF-8
def test_a_good_feed_served_with_an_odd_content_type_is_read_without_a_warning(
        feed_app, local_server, content_type):
    body = (DATA / "neuro_rss.xml").read_bytes().replace(b"revisited", "revisité".encode())
    local_server.route("/neuro", Reply(200, body, {"Content-Type": content_type}))
    app = feed_app(["neuro"])
    (rep,) = fetch(app, now=NOW).sources
    assert (rep.error, rep.new) == (None, 3)
    assert state(app, "neuro").last_warning is None
    assert posts(app)[0].title == "Predictive coding, revisité & extended"


def _config_file(tmp_path, db_url, feeds_cfg) -> Path:
    lines = [f'[database]\nurl = "{db_url}"\n', "[arxiv]\nenabled = false\n"]
    for name, url in feeds_cfg:
        lines.append(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n')
    path = tmp_path / "tracker.toml"
    path.write_text("\n".join(lines))
    return path


def test_cli_fetch_exits_non_zero_only_when_every_source_failed(db_url, tmp_path, local_server):
    local_server.route("/good", Reply(200, (DATA / "neuro_rss.xml").read_bytes(), RSS))
    config = _config_file(tmp_path, db_url, [("good", local_server.url("/good")),
                                            ("gone", local_server.url("/gone"))])
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "fetch"])
    assert result.exit_code == 0, result.output
    assert "good: fetched 3, new 3, updated 0, errors 0" in result.output
    assert re.search(r"gone: FAILED \(.*\): HTTP 404", result.output)
    result = runner.invoke(cli, ["--config", str(config), "fetch", "--source", "gone"])
    assert result.exit_code == 1 and "gone: FAILED" in result.output
    result = runner.invoke(cli, ["--config", str(config), "fetch", "--source", "nope"])
    assert result.exit_code == 2 and "unknown source 'nope'" in result.output


def test_cli_fetch_says_when_a_feed_is_unchanged(db_url, tmp_path, local_server):
    body = (DATA / "neuro_rss.xml").read_bytes()
    local_server.route("/neuro", Reply(200, body, RSS | {"ETag": '"v1"'}),
                       Reply(304, b"", {"ETag": '"v1"'}))
    config = _config_file(tmp_path, db_url, [("neuro", local_server.url("/neuro"))])
    runner = CliRunner()
    runner.invoke(cli, ["--config", str(config), "fetch"])
    result = runner.invoke(cli, ["--config", str(config), "fetch"])
    assert result.exit_code == 0, result.output
    assert "neuro: unchanged since the last fetch (HTTP 304)" in result.output
    result = runner.invoke(cli, ["--config", str(config), "fetch", "--format", "json"])
    assert json.loads(result.stdout)[0]["unchanged"] is True


def test_cli_fetch_takes_the_fetch_lease_and_is_recorded_as_a_run(db_url, tmp_path, local_server):
    from tracker.config import load
    from tracker.store import runs
    from tracker.store.db import transaction

    local_server.route("/good", Reply(200, (DATA / "neuro_rss.xml").read_bytes(), RSS))
    config = _config_file(tmp_path, db_url, [("good", local_server.url("/good"))])
    app = App(load(config))
    now = datetime.now(UTC)
    with transaction(app.sessions) as session:  # the worker, fetching right now
        assert runs.acquire_lock(session, "fetch", "worker-host:42:abc", now,
                                 timedelta(minutes=10))
    runner = CliRunner()
    result = runner.invoke(cli, ["--config", str(config), "fetch"])
    assert result.exit_code == 1 and "a fetch is already running" in result.output
    assert "worker-host:42:abc" in result.output and "Traceback" not in result.output
    assert local_server.hits("/good") == []  # nothing fetched beside the worker's run
    with transaction(app.sessions) as session:
        assert runs.release_lock(session, "fetch", "worker-host:42:abc")
    result = runner.invoke(cli, ["--config", str(config), "fetch"])
    assert result.exit_code == 0 and "good: fetched 3, new 3" in result.output
    with app.sessions() as session:
        (run,) = runs.recent_runs(session)
        assert not runs.live_locks(session, datetime.now(UTC))  # released after the run
    assert (run.job, run.outcome) == ("fetch", "ok") and run.counts["new"] == 3
    app.close()


def _served_headers(raw: bytes) -> dict[str, str]:
    """The `Header:` lines of a feedparser suite file: sent as real HTTP headers."""
    head = raw[:600].decode("latin-1")
    found = dict(re.findall(r"Header:\s+([\w-]+):\s*(.+?)\s*$", head, re.MULTILINE))
    found.setdefault("Content-type", "application/xml")
    return found


def _expected_posts(raw: bytes, headers: dict[str, str], url: str) -> int | None:
    """What feedparser recovers from the bytes (None: nothing feed-like): distinct entries
    that have a title, a link or content (entries that share an id differ by link)."""
    lowered = {k.lower(): v for k, v in headers.items()} | {"content-location": url}
    lowered.update({k.lower(): v for k, v in headers.items()})
    parsed = feedparser.parse(raw, response_headers=lowered)
    if not parsed.entries and not parsed.get("version"):
        return None
    keys = {(e.get("id") or e.get("link") or (e.get("title"), str(e.get("published_parsed"))),
             e.get("link") or e.get("title")) for e in parsed.entries
            if e.get("title") or e.get("link") or e.get("content") or e.get("summary")}
    return len(keys)


@pytest.mark.parametrize("corpus", ["feedparser_suite", "blogs"])
def test_every_shared_feed_served_over_http_is_ingested(shared_dir, feed_app, local_server,
                                                         corpus):
    files = sorted(p for p in (shared_dir / "fixtures" / corpus).rglob("*") if p.is_file())
    assert files
    names, expected = {}, {}
    for i, path in enumerate(files):
        raw = path.read_bytes()
        headers = _served_headers(raw) if corpus == "feedparser_suite" else {
            "Content-Type": "application/xml"}
        name = f"f{i:03d}"
        names[name] = path.name
        local_server.route(f"/{name}", Reply(200, raw, headers))
        expected[name] = _expected_posts(raw, headers, local_server.url(f"/{name}"))
    app = feed_app(list(names))
    report = fetch(app, now=NOW)  # never raises, whatever the feed
    for rep in report.sources:
        label = f"{rep.name} = {names[rep.name]}"
        if expected[rep.name] is None:
            assert rep.error and "not an RSS/Atom feed" in rep.error, label
        else:
            assert rep.error is None, label
            assert len(posts(app, rep.name)) == expected[rep.name], label
    again = fetch(app, now=NOW + timedelta(hours=1))
    assert sum(r.new for r in again.sources) == 0


def test_http_charset_header_decides_the_encoding(shared_dir, feed_app, local_server):
    path = shared_dir / "fixtures/feedparser_suite/encoding/http_text_xml_charset_2.xml"
    raw = path.read_bytes()
    local_server.route("/cs", Reply(200, raw, _served_headers(raw)))
    app = feed_app(["cs"])
    fetch(app, now=NOW)
    assert [p.summary_text for p in posts(app)] == ["This is a \xa3\u201ctest.\u201d"]


def test_blog_posts_link_to_the_arxiv_papers_they_mention(shared_dir, feed_app, local_server):
    path = shared_dir / "fixtures" / "blogs" / "lilianweng_lil-log_index.xml"
    raw = path.read_bytes()
    local_server.route("/lil", Reply(200, raw, {"Content-Type": "application/rss+xml"}))
    app = feed_app(["lil"])
    fetch(app, now=NOW)
    with app.sessions() as s:
        stored = set(s.scalars(select(PostRefRow.value).where(PostRefRow.kind == "arxiv")))
    mentioned = set(re.findall(rb"arxiv\.org/(?:abs|pdf)/(\d{4}\.\d{4,5}|[a-z-]+/\d{7})", raw))
    assert stored and {m.decode() for m in mentioned} == stored


@pytest.mark.parametrize("location,expected", [
    ("https://moved.example.org/blog/feed.xml", "https://moved.example.org/blog/posts/one/"),
    (None, "{base}/posts/one/"),
])
def test_relative_links_resolve_against_content_location_or_the_feed_url(
        feed_app, local_server, location, expected):
    headers = {"Content-Type": "application/atom+xml"}
    if location:
        headers["Content-Location"] = location
    local_server.route("/rel", Reply(200, (DATA / "relative_atom.xml").read_bytes(), headers))
    app = feed_app(["rel"])
    fetch(app, now=NOW)
    (post,) = posts(app)
    assert post.link == expected.format(base=local_server.base_url)


def test_nul_characters_never_reach_the_database(feed_app, local_server):
    """PostgreSQL refuses NUL in text; a feed carrying one (as an entity) still stores."""
    body = (DATA / "neuro_rss.xml").read_bytes().replace(b"Neither guid nor link",
                                                         b"Neither&#0; guid nor link")
    local_server.route("/nul", Reply(200, body, RSS))
    app = feed_app(["nul"])
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None and rep.new == 3
    assert all("\x00" not in p.title for p in posts(app))


def test_a_redirected_feed_resolves_links_against_its_new_home(feed_app, local_server):
    local_server.route("/old", Reply(301, b"", {"Location": "/blog/new/feed.xml"}))
    local_server.route("/blog/new/feed.xml", Reply(200, (DATA / "relative_atom.xml").read_bytes(),
                                                   {"Content-Type": "application/atom+xml"}))
    app = feed_app(["old"])
    (rep,) = fetch(app, now=NOW).sources
    assert rep.error is None
    (post,) = posts(app)
    assert post.link == local_server.url("/blog/new/posts/one/")


def _atom(*entries: tuple[str, str, str]) -> bytes:
    """An Atom feed of (id, link, published date) entries, titled after their link."""
    body = "".join(
        f"<entry><id>{eid}</id><title>Post {link}</title><link href='{link}'/>"
        + (f"<published>{day}T00:00:00Z</published>" if day else "") + "</entry>"
        for eid, link, day in entries)
    return (f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/Atom'>"
            f"<title>Series</title><id>urn:series</id>{body}</feed>").encode()


ATOM = {"Content-Type": "application/atom+xml"}


def test_entries_sharing_an_id_are_all_kept_and_each_stays_itself(feed_app, local_server):
    """A feed that numbers each series from 1 gives one id to several posts (seen in a real
    Jekyll feed); none may be lost, and no later fetch may mistake one for another."""
    first = ("/posts/1", "https://b.example/transmission-1/", "2026-11-17")
    second = ("/posts/1", "https://b.example/convergence-1/", "2026-11-21")
    third = ("/posts/1", "https://b.example/dienstag-1/", "2026-11-24")
    fourth = ("/posts/1", "https://b.example/review-1/", "2026-11-27")
    local_server.route("/series", Reply(200, _atom(first), ATOM),
                       Reply(200, _atom(second, first), ATOM),
                       Reply(200, _atom(third, second, first), ATOM),
                       Reply(200, _atom(third), ATOM),  # the older two left the feed
                       Reply(200, _atom(fourth), ATOM))
    app = feed_app(["series"])
    seen = {}
    for hour, new in enumerate([1, 1, 1, 0, 1]):
        (rep,) = fetch(app, now=NOW + timedelta(hours=hour)).sources
        assert (rep.error, rep.new, rep.updated) == (None, new, 0), hour
        for row in posts(app):
            assert seen.setdefault(row.id, row.link) == row.link  # a row never changes post
    assert sorted(seen.values()) == sorted(e[1] for e in (first, second, third, fourth))


def test_an_undated_entry_reusing_a_shared_id_is_a_new_post(feed_app, local_server):
    """Without dates to compare, a feed known to reuse an id gets the benefit of the doubt:
    a lone entry with that id and a new link is a new post, not the old one edited."""
    first, second, third = (("/p/1", f"https://b.example/{name}-1/", None)
                            for name in ("alpha", "beta", "gamma"))
    local_server.route("/undated", Reply(200, _atom(first), ATOM),
                       Reply(200, _atom(second, first), ATOM), Reply(200, _atom(third), ATOM))
    app = feed_app(["undated"])
    for hour in range(3):
        (rep,) = fetch(app, now=NOW + timedelta(hours=hour)).sources
        assert (rep.new, rep.updated) == (1, 0), hour
    assert sorted(p.link for p in posts(app)) == [e[1] for e in (first, second, third)]


@pytest.mark.parametrize("old,moved", [
    # the id stays, the link moves
    (("urn:post:7", "http://b.example/p/7/", "2026-11-20"),
     ("urn:post:7", "https://blog.b.example/p/7/", "2026-11-20")),
    # a blog that moved to https: its ids change scheme too (relative ids as well, as they
    # resolve against the feed's URL)
    (("http://b.example/?p=7", "http://b.example/p/7/", "2026-11-20"),
     ("https://b.example/?p=7", "https://b.example/p/7/", "2026-11-20")),
])
def test_an_entry_that_moved_is_the_same_post(feed_app, local_server, old, moved):
    local_server.route("/moved", Reply(200, _atom(old), ATOM), Reply(200, _atom(moved), ATOM))
    app = feed_app(["moved"])
    fetch(app, now=NOW)
    (rep,) = fetch(app, now=NOW + timedelta(hours=1)).sources
    assert (rep.new, rep.updated) == (0, 1)
    (row,) = posts(app)
    assert row.link == moved[1]


def test_an_edited_entry_dated_only_by_its_update_is_the_same_post(feed_app, local_server):
    """Without <published>, the entry's date is its <updated>, which an edit moves: that is
    no sign of a reused id (a new slug and title came with the edit)."""
    def feed(slug, title, updated):
        return (f"<?xml version='1.0' encoding='utf-8'?><feed xmlns='http://www.w3.org/2005/"
                f"Atom'><title>b</title><id>urn:b</id><entry><id>tag:blog,2026:post-42</id>"
                f"<title>{title}</title><link href='https://b.example/{slug}'/>"
                f"<updated>{updated}</updated></entry></feed>").encode()

    local_server.route("/edited", Reply(200, feed("draft", "Draft", "2026-11-20T08:00:00Z"), ATOM),
                       Reply(200, feed("final", "Final", "2026-11-21T09:00:00Z"), ATOM))
    app = feed_app(["edited"])
    fetch(app, now=NOW)
    (rep,) = fetch(app, now=NOW + timedelta(hours=1)).sources
    assert (rep.new, rep.updated) == (0, 1)
    (row,) = posts(app)
    assert (row.title, row.link) == ("Final", "https://b.example/final")


def test_a_huge_post_is_stored_shortened_beside_the_others(feed_app, local_server):
    """150,000 distinct words (1.3 MB, under max_bytes) made PostgreSQL refuse the post's
    search vector (over 1 MB), and with it every post of the feed, at every fetch."""
    words = " ".join(f"w{i}" for i in range(150_000))
    rss = (f"<rss version='2.0'><channel><title>t</title>"
           f"<item><guid>big</guid><title>Big</title><description>{words}</description></item>"
           f"<item><guid>small</guid><title>Small</title><description>Hebbian plasticity"
           f"</description></item></channel></rss>").encode()
    local_server.route("/huge", Reply(200, rss, RSS))
    app = feed_app(["huge"], max_bytes=5_000_000)
    (rep,) = fetch(app, now=NOW).sources
    assert (rep.new, rep.error) == (2, None), rep.error
    big, small = posts(app)
    assert len(big.summary_text) <= feeds.TEXT_MAX and big.summary_text.startswith("w0 w1 ")
    assert small.summary_text == "Hebbian plasticity"


def test_a_disabled_source_named_by_source_is_fetched_with_a_warning(make_config, local_server,
                                                                      caplog):
    local_server.route("/quiet", Reply(200, (DATA / "neuro_rss.xml").read_bytes(), RSS))
    app = App(make_config({"arxiv": {"enabled": False}, "feeds": [
        {"name": "quiet", "url": local_server.url("/quiet"), "enabled": False}]}))
    try:
        assert fetch(app, now=NOW).sources == []  # not fetched unless asked for
        with caplog.at_level("WARNING", logger="tracker.pipeline.ingest"):
            [rep] = fetch(app, now=NOW, only="quiet").sources
        assert rep.new == 3 and len(posts(app)) == 3
        assert ["quiet is disabled in the config; fetched because --source names it"] == [
            r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    finally:
        app.close()


def test_a_fetch_of_one_source_does_not_stand_for_a_full_fetch(make_config, local_server):
    """`tracker fetch --source NAME` runs under the fetch lease and is recorded, but the
    worker's catch-up (jobs_behind, from last_run_start) still owes the others a fetch."""
    from tracker.pipeline.ingest import fetch_under_lease
    from tracker.store import runs

    local_server.route("/one", Reply(200, (DATA / "neuro_rss.xml").read_bytes(), RSS))
    app = App(make_config({"arxiv": {"enabled": False}, "feeds": [
        {"name": "one", "url": local_server.url("/one")},
        {"name": "two", "url": local_server.url("/one")}]}))
    try:
        fetch_under_lease(app, only="one")
        with app.sessions() as session:
            [run] = runs.recent_runs(session)
            assert (run.job, run.outcome, run.counts["source"]) == ("fetch", "ok", "one")
            assert runs.last_run_start(session, "fetch") is None
        fetch_under_lease(app)
        with app.sessions() as session:
            assert runs.last_run_start(session, "fetch") is not None
            assert "source" not in runs.recent_runs(session)[0].counts
    finally:
        app.close()
