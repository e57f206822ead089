"""Rendering: golden files for both parts, hostile feed content, the size cap.

Regenerate the golden files after an intended change with
`UPDATE_GOLDEN=1 pytest tests/test_digest_render.py` and review the diff."""

from __future__ import annotations

import os
from datetime import timedelta

import lxml.html
import pytest

from tests.conftest import TEST_DATA
from tests.test_digest_send import NOW, PERIOD_END, add_paper, digest_config, ledger, seed_week
from tests.test_digest_send import ledger_items as recorded_items
from tracker.digest import build
from tracker.digest.render import MAX_HTML_BYTES, render
from tracker.models import safe_url
from tracker.pipeline import App
from tracker.pipeline.digest import preview, send_digest
from tracker.store.db import transaction

GOLDEN = TEST_DATA / "digest"


@pytest.fixture
def week_app(make_config):
    application = App(digest_config(make_config))
    seed_week(application)
    yield application
    application.close()


def _check_golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"{name} changed; see module docstring"


def test_golden_html_and_text(week_app):
    prepared = preview(week_app, now=NOW)
    _check_golden("golden.html", prepared.rendered.html)
    _check_golden("golden.txt", prepared.rendered.text)


def test_header_shows_period_counts_and_a_source_failing_all_week(week_app):
    prepared = preview(week_app, now=NOW)
    text = prepared.rendered.text
    assert "Mon 16 Nov 2026 08:00 UTC to Mon 23 Nov 2026 08:00 UTC" in text
    # 9 papers + 4 posts first seen in the period; 11 of them relevant and all 11 shown.
    assert "13 fetched, 11 relevant, 11 in this email" in text
    assert ("the-transmitter: no successful fetch all period (13 failures in a row; "
            "last error: HTTP 503 from https://transmitter.example/feed/)") in text
    assert "xcorr:" not in text.split("==")[0]  # a healthy source raises no warning


def test_hostile_feed_entry_is_inert(week_app):
    html = preview(week_app, now=NOW).rendered.html
    text = preview(week_app, now=NOW).rendered.text
    doc = lxml.html.document_fromstring(html)

    assert doc.xpath("//script|//iframe|//img|//style|//object|//embed|//form") == []
    handlers = [(el.tag, a) for el in doc.iter() if isinstance(el.tag, str)
                for a in el.attrib if a.lower().startswith("on")]
    assert handlers == []
    hrefs = [el.get("href") for el in doc.xpath("//a")]
    assert hrefs and all(h.startswith(("https://", "mailto:")) for h in hrefs)
    for part in (html, text):
        assert "javascript:" not in part.lower()
    # Stored titles are text: one that reads like markup is shown as written, never run.
    title = "Brain hacks <script>alert('title')</script>"
    assert title in doc.text_content() and title in text
    assert "Neural recordings click" in text


@pytest.mark.parametrize("url, safe", [
    ("https://arxiv.org/abs/2611.10001", True), ("http://x.org/a?b=1&c=2", True),
    ("mailto:me@example.org", True), ("javascript:alert(1)", False),
    (" JavaScript:alert(1)", False), ("java\nscript:alert(1)", False),
    ("data:text/html,<script>", False), ("vbscript:x", False), ("", False), (None, False),
])
def test_safe_url(url, safe):
    assert (safe_url(url) != "") is safe


def test_a_500_item_week_stays_under_the_size_cap(make_config):
    app = App(digest_config(make_config, max_items=1000, recipients=[]))
    seen = PERIOD_END - timedelta(days=3)
    abstract = "Spiking neurons in visual cortex and predictive coding models of the brain. " * 14
    with transaction(app.sessions) as session:
        for i in range(500):
            add_paper(session, f"2611.{i:05d}", seen, 0.5 + i / 1001, abstract=abstract,
                      title=f"A long title about neural recordings and cortex, number {i}",
                      authors=[f"Author {n}" for n in range(12)],
                      why=["spiking neural network", "visual cortex", "predictive coding"])
    prepared = preview(app, now=NOW)
    digest = prepared.digest

    assert prepared.rendered.html_bytes <= MAX_HTML_BYTES
    assert 0 < len(digest.items) < 500 and digest.omitted == 500 - len(digest.items)
    assert f"{digest.omitted} more relevant items did not fit" in prepared.rendered.text
    shown = [item.id for item in digest.items]
    best = sorted((f"2611.{i:05d}" for i in range(500)), reverse=True)[:len(shown)]
    assert sorted(shown) == sorted(best)  # what is left out is the least relevant
    assert "500 relevant" in prepared.rendered.text


def test_only_what_the_email_showed_is_recorded_as_sent(make_config):
    from tests.smtpd import SmtpServer

    with SmtpServer() as smtp:
        app = App(digest_config(make_config, smtp, max_items=1000))
        with transaction(app.sessions) as session:
            for i in range(400):
                add_paper(session, f"2611.{i:05d}", PERIOD_END - timedelta(days=1),
                          0.6, abstract="Neural data from the brain — “spikes” at µs scale. " * 30,
                          authors=[f"Author {n}" for n in range(8)])
        outcome = send_digest(app, now=NOW)
        part = smtp.messages[0].get_body(("html",))
        html = part.get_content()
    # as it travelled: the encoded body (non-ASCII text makes it quoted-printable or
    # base64, a third larger than the UTF-8) with CRLF line ends
    body = part.get_payload().replace("\r\n", "\n")
    assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    assert len(body) + body.count("\n") <= MAX_HTML_BYTES
    [row] = ledger(app)
    recorded = recorded_items(app, row.id)
    assert len(recorded) == outcome.item_count < 400
    assert all(f"https://arxiv.org/abs/{pid}" in html for pid in recorded)


def test_render_trims_to_any_cap_keeping_the_best_entries():
    items = [build.Item("paper", f"p{i}", f"Title {i}", f"https://arxiv.org/abs/p{i}",
                        1 - i / 100, PERIOD_END, abstract="words " * 100) for i in range(40)]
    digest = build.assemble(PERIOD_END - timedelta(days=7), PERIOD_END, items, [],
                            [("Papers", list(range(40)))], relevant=40)
    full = render(digest, subject="s")
    assert full.digest.omitted == 0 and "words words" in full.text
    capped = render(digest, subject="s", max_html_bytes=full.html_bytes // 3)
    assert capped.html_bytes <= full.html_bytes // 3
    assert [i.id for i in capped.digest.items] == [f"p{i}" for i in range(len(capped.digest.items))]
    assert capped.digest.omitted == 40 - len(capped.digest.items) > 0


def test_an_entry_too_big_to_fit_alone_is_left_out_and_the_rest_are_sent():
    """Keeping the best entries as a prefix kept none when the best one alone was over the
    cap: the email said "Nothing relevant" and the other items were never sent."""
    huge = build.Item("post", "post:1", "Best post", "https://blog.example/p?" + "a" * 150_000,
                      0.99, PERIOD_END, source="blog")
    papers = [build.Item("paper", f"p{i}", f"Title {i}", f"https://arxiv.org/abs/p{i}",
                         0.9 - i / 100, PERIOD_END,
                         abstract=f"Abstract of paper {i}. " + "Dendritic spikes. " * 10)
              for i in range(5)]
    digest = build.assemble(PERIOD_END - timedelta(days=7), PERIOD_END, papers, [huge],
                            [("Papers", list(range(5)))], relevant=6)

    shown = render(digest, subject="s")

    assert shown.html_bytes <= MAX_HTML_BYTES
    assert [i.id for i in shown.digest.items] == [f"p{i}" for i in range(5)]
    # the others keep their abstracts: they fit once the huge entry is out
    assert all(f"Abstract of paper {i}." in shown.text for i in range(5))
    assert shown.digest.omitted == 1 and "1 more relevant item did not fit" in shown.text
    assert "Nothing relevant" not in shown.text


def test_a_digest_whose_only_entry_cannot_fit_says_so_rather_than_nothing_relevant():
    huge = build.Item("post", "post:1", "Post", "https://blog.example/p?" + "a" * 150_000,
                      0.99, PERIOD_END, source="blog")
    digest = build.assemble(PERIOD_END - timedelta(days=7), PERIOD_END, [], [huge], [],
                            relevant=1)

    shown = render(digest, subject="s")

    assert shown.digest.items == [] and not shown.digest.empty
    assert "1 more relevant item did not fit" in shown.text
    assert "Nothing relevant" not in shown.text and "Nothing relevant" not in shown.html


def test_a_posts_date_is_the_day_in_the_digests_time_zone():
    """The header says when in [schedule] timezone; a post's date must be read there too."""
    from datetime import UTC, datetime

    post = build.Item("post", "post:1", "A post", "https://blog.example/p", 0.9, PERIOD_END,
                      source="blog", published=datetime(2026, 12, 3, 11, 0, tzinfo=UTC))
    digest = build.assemble(PERIOD_END - timedelta(days=7), PERIOD_END, [], [post], [],
                            relevant=1)
    for zone, day in (("UTC", "03 Dec 2026"), ("Pacific/Kiritimati", "04 Dec 2026")):
        shown = render(digest, subject="s", timezone=zone)
        assert day in shown.text and day in shown.html, zone


def test_a_post_that_cites_a_paper_by_doi_sits_beside_it(make_config):
    from tracker.store.schema import PaperRow, PostRefRow, PostRow

    app = App(digest_config(make_config))
    try:
        with transaction(app.sessions) as session:
            add_paper(session, "2611.20001", PERIOD_END - timedelta(days=2), 0.9)
            session.get(PaperRow, "2611.20001").doi = "10.1038/S41593-019-0520-2"
            post = PostRow(feed="xcorr", guid="g1", link="https://xcorr.example/p1",
                           title="On the paper", summary_text="Read it.", score=0.8,
                           first_seen_at=PERIOD_END - timedelta(days=1))
            session.add(post)
            session.flush()
            session.add(PostRefRow(post_id=post.id, kind="doi",
                                   value="10.1038/s41593-019-0520-2"))  # stored lower-case
        digest = preview(app, now=NOW).rendered.digest
        [entry] = [e for s in digest.sections for e in s.entries]
        assert entry.item.id == "2611.20001" and [p.id for p in entry.related] == [
            f"post:{post.id}"]
    finally:
        app.close()
