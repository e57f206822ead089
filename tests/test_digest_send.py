"""Digest sending against real SMTP servers (aiosmtpd on 127.0.0.1) on both backends:
the message, the exactly-once ledger, racing senders, configuration cases, and SMTP
failures and transports (refusal, server down, login, STARTTLS and implicit TLS with a
self-signed test certificate): nothing is recorded as sent when the server did not accept
the digest, and the next run sends it.

The helpers at the top (seed_week, add_paper, digest_config) are shared by the other
tests/test_digest_*.py modules."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from tests.conftest import TEST_DATA, watched_since
from tests.smtpd import SmtpServer
from tracker.errors import SendError
from tracker.pipeline import App
from tracker.pipeline.digest import list_digests, send_digest
from tracker.store.db import transaction
from tracker.store.schema import (
    DigestItemRow,
    DigestRow,
    LabelRow,
    PaperRow,
    PostRefRow,
    PostRow,
    ScoreRow,
    SourceStateRow,
)

WEEK = TEST_DATA / "digest" / "week.json"
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)  # Monday; the digest fired at 08:00
PERIOD_END = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
WATCHING = NOW - timedelta(days=10)  # when an empty store's fetching began (see watched_since)
# The relevant items of week.json in reading order (post 1 sits beside the paper it cites).
EXPECTED_PAPERS = {"2611.10001", "2611.10002", "2611.10003", "2611.10004", "2611.10005",
                   "2611.10006", "2611.10007", "2611.10008"}
EXPECTED_POSTS = {"post:1", "post:2", "post:3"}


def _ts(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def digest_config(make_config, smtp: SmtpServer | None = None, **digest):
    raw = {
        "feeds": [{"name": "xcorr", "url": "https://xcorr.example/feed/"},
                  {"name": "the-transmitter", "url": "https://transmitter.example/feed/"}],
        "digest": {"recipients": ["ada@example.org", "ben@example.org"],
                   "sender": "NeuroAI tracker <digest@tracker.example>",
                   "unsubscribe": "mailto:unsubscribe@tracker.example", **digest},
    }
    if smtp is not None:
        raw["smtp"] = smtp.config()
    return make_config(raw)


def add_paper(session, pid: str, seen: datetime, score: float, *, title: str | None = None,
              abstract: str = "Neural recordings of the brain.", why=("brain",),
              authors=("Ada Byron",), categories=("q-bio.NC",), version: int = 1,
              version_seen: datetime | None = None):
    session.add(PaperRow(
        id=pid, version=version, title=title or f"Paper {pid}", abstract=abstract,
        authors=list(authors), categories=list(categories), primary_category=categories[0],
        first_seen_at=seen, version_seen_at=version_seen or seen, score=score,
        score_model="test"))
    session.flush()
    # An older score row first: the digest must show the latest row's `why`.
    session.add(ScoreRow(paper_id=pid, value=0.1, model_version="old", config_hash="x",
                         why=["stale reason"], scored_at=seen - timedelta(hours=1)))
    session.flush()
    session.add(ScoreRow(paper_id=pid, value=score, model_version="test", config_hash="x",
                         why=list(why), scored_at=seen))


def seed_week(app: App) -> dict:
    """Insert tests/data/digest/week.json into the store; return the parsed data."""
    week = json.loads(WEEK.read_text(encoding="utf-8"))
    with transaction(app.sessions) as session:
        for p in week["papers"]:
            add_paper(session, p["id"], _ts(p["first_seen_at"]), p["score"], title=p["title"],
                      abstract=p["abstract"], why=p["why"], authors=p["authors"],
                      categories=p["categories"],
                      version=p["version"], version_seen=_ts(p.get("version_seen_at")))
        for p in week["posts"]:
            session.add(PostRow(
                id=p["id"], feed=p["feed"], guid=p["guid"], link=p["link"], title=p["title"],
                author=p["author"], summary_text=p["summary_text"],
                content_html=p.get("content_html", ""), first_seen_at=_ts(p["first_seen_at"]),
                score=p["score"], score_model="test"))
            session.flush()
            session.add(ScoreRow(post_id=p["id"], value=p["score"], model_version="test",
                                 config_hash="x", why=p["why"],
                                 scored_at=_ts(p["first_seen_at"])))
            for ref in p["refs"]:
                session.add(PostRefRow(post_id=p["id"], kind="arxiv", value=ref))
        for s in week["sources"]:
            session.add(SourceStateRow(
                name=s["name"], kind=s["kind"], last_attempt_at=_ts(s["last_attempt_at"]),
                last_success_at=_ts(s["last_success_at"]), last_error=s.get("last_error"),
                last_error_at=_ts(s.get("last_error_at")),
                consecutive_failures=s["consecutive_failures"]))
    return week


def ledger(app: App) -> list[DigestRow]:
    with app.sessions() as session:
        return list(session.scalars(select(DigestRow).order_by(DigestRow.period_end)))


def ledger_items(app: App, digest_id: int) -> list[str]:
    with app.sessions() as session:
        rows = session.scalars(select(DigestItemRow).where(DigestItemRow.digest_id == digest_id)
                               .order_by(DigestItemRow.position))
        return [row.paper_id or f"post:{row.post_id}" for row in rows]


def item_ids_in(text: str) -> list[str]:
    """Item ids in the order the text part shows them (papers by abs URL, posts by link)."""
    links = {"https://xcorr.example/2026/11/snn-dynamics": "post:1",
             "https://transmitter.example/what-is-neuroai": "post:2", "(no link)": "post:3",
             "https://colah.example/posts/9": "post:4"}
    found = []
    for line in text.splitlines():
        word = line.strip().split(" ")[-1] if "-> on " in line else line.strip()
        if word.startswith("https://arxiv.org/abs/"):
            found.append(word.removeprefix("https://arxiv.org/abs/"))
        elif word in links:
            found.append(links[word])
    return found


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def week_app(make_config, smtp):
    application = App(digest_config(make_config, smtp))
    seed_week(application)
    yield application
    application.close()


# -- the message --------------------------------------------------------------------------


def test_sent_message_has_both_parts_headers_recipients_and_items_in_order(week_app, smtp):
    outcome = send_digest(week_app, now=NOW)

    assert outcome.status == "sent" and outcome.item_count == 11
    [envelope] = smtp.envelopes
    assert sorted(envelope.rcpt_tos) == ["ada@example.org", "ben@example.org"]
    assert envelope.mail_from == "digest@tracker.example"
    [message] = smtp.messages
    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "NeuroAI digest: 16 Nov to 23 Nov 2026"
    assert message["To"] == "ada@example.org, ben@example.org"
    assert message["Date"] == "Mon, 23 Nov 2026 09:00:00 +0000"
    assert message["Message-ID"].endswith("@tracker.example>")
    assert message["List-Id"] == "NeuroAI tracker digest <digest.neuroai-tracker.local>"
    assert message["List-Unsubscribe"] == "<mailto:unsubscribe@tracker.example>"

    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    shown = item_ids_in(text)
    assert set(shown) == EXPECTED_PAPERS | EXPECTED_POSTS
    assert shown[shown.index("2611.10001") + 1] == "post:1"  # the post beside its paper
    assert all(f"https://arxiv.org/abs/{pid}" in html for pid in EXPECTED_PAPERS)
    assert "why: spiking neural network; cortex; neuromorphic" in text
    assert "stale reason" not in text + html
    # The ledger holds the period, the Message-ID and the items in the order shown.
    [row] = ledger(week_app)
    assert (row.status, row.period_start, row.period_end) == (
        "sent", PERIOD_END - timedelta(days=7), PERIOD_END)
    assert row.message_id == message["Message-ID"]
    assert ledger_items(week_app, row.id) == shown


def test_papers_are_ranked_best_first_within_sections(week_app, smtp):
    send_digest(week_app, now=NOW)
    text = smtp.messages[0].get_body(("plain",)).get_content()
    scores = {p: s for p, s in [("2611.10001", .93), ("2611.10002", .81), ("2611.10003", .88),
                                ("2611.10004", .77), ("2611.10005", .72), ("2611.10006", .69),
                                ("2611.10007", .64), ("2611.10008", .85)]}
    sections = text.split("\n== ")[1:]
    assert len(sections) >= 2 and sections[-1].startswith("From the blogs ==")
    for section in sections[:-1]:
        papers = [i for i in item_ids_in(section) if not i.startswith("post:")]
        assert [scores[p] for p in papers] == sorted((scores[p] for p in papers), reverse=True)


def test_labels_decide_over_the_score(week_app, smtp):
    """Labelled irrelevant: never sent, however high it scores; labelled relevant: sent
    however low (paper 2611.10009 and post 4 score under min_score)."""
    with transaction(week_app.sessions) as session:
        session.add_all([LabelRow(paper_id="2611.10001", label="irrelevant", created_at=NOW),
                         LabelRow(post_id=2, label="irrelevant", created_at=NOW),
                         LabelRow(paper_id="2611.10009", label="relevant", created_at=NOW),
                         LabelRow(post_id=4, label="relevant", created_at=NOW),
                         LabelRow(paper_id="2611.10002", label="relevant", created_at=NOW)])
    send_digest(week_app, now=NOW)
    sent = set(item_ids_in(smtp.messages[0].get_body(("plain",)).get_content()))
    assert sent == EXPECTED_PAPERS - {"2611.10001"} | {"2611.10009"} | (
        EXPECTED_POSTS - {"post:2"} | {"post:4"})


# -- exactly once ---------------------------------------------------------------------------


def test_second_run_in_the_same_period_sends_nothing(week_app, smtp):
    assert send_digest(week_app, now=NOW).status == "sent"
    again = send_digest(week_app, now=NOW + timedelta(days=2))

    assert again.status == "already_sent"
    assert len(smtp.envelopes) == 1 and len(ledger(week_app)) == 1


def test_a_digest_at_a_set_hour_goes_out_once_on_the_night_clocks_go_back(make_config, smtp):
    """The worker's trigger fires at both 02:30s of the fall-back night; the second fire
    found a new one-hour period and sent a second, empty email."""
    config = make_config({"digest": {"recipients": ["ada@example.org"]}, "smtp": smtp.config(),
                          "schedule": {"timezone": "Europe/Berlin", "digest": "30 2 * * sun"}})
    app = App(config)
    with transaction(app.sessions) as session:
        add_paper(session, "2610.00001", datetime(2026, 10, 20, tzinfo=UTC), 0.9)
    first = datetime(2026, 10, 25, 0, 30, tzinfo=UTC)
    assert send_digest(app, now=first + timedelta(seconds=5)).status == "sent"
    again = send_digest(app, now=first + timedelta(hours=1, seconds=5))
    assert again.status == "already_sent" and len(smtp.messages) == 1
    app.close()


def test_next_period_holds_only_new_items_never_a_sent_paper(week_app, smtp):
    send_digest(week_app, now=NOW)
    with transaction(week_app.sessions) as session:
        add_paper(session, "2611.20001", NOW + timedelta(days=2), 0.8)
    outcome = send_digest(week_app, now=NOW + timedelta(days=7))

    assert outcome.status == "sent"
    text = smtp.messages[1].get_body(("plain",)).get_content()
    # 2611.10010 was first seen just after the first period ended: it belongs here.
    assert item_ids_in(text) == ["2611.10010", "2611.20001"]
    first, second = ledger(week_app)
    assert second.period_start == first.period_end == PERIOD_END


def test_updates_of_older_papers_only_with_include_updates(make_config, smtp):
    plain = App(digest_config(make_config, smtp))
    seed_week(plain)
    send_digest(plain, now=NOW)
    assert "2610.20001" not in item_ids_in(smtp.messages[0].get_body(("plain",)).get_content())

    with transaction(plain.sessions) as session:  # forget that period, then ask for updates
        session.query(DigestRow).delete()
    updates = App(digest_config(make_config, smtp, include_updates=True))
    send_digest(updates, now=NOW)
    text = smtp.messages[1].get_body(("plain",)).get_content()
    assert "2610.20001" in item_ids_in(text) and "updated to v3" in text
    assert "2610.20002" not in item_ids_in(text)  # old and not updated: never news
    # the update counts among what was fetched, as among what was relevant
    assert "14 fetched, 12 relevant, 12 in this email" in text


def test_force_ends_the_period_now_and_the_schedule_carries_on(week_app, smtp):
    tuesday = NOW + timedelta(days=1)
    assert send_digest(week_app, now=NOW).status == "sent"
    forced = send_digest(week_app, now=tuesday, force=True)

    assert forced.status == "sent"
    assert item_ids_in(smtp.messages[1].get_body(("plain",)).get_content()) == ["2611.10010"]
    assert send_digest(week_app, now=tuesday, force=True).status == "already_sent"
    again = send_digest(week_app, now=tuesday + timedelta(minutes=5), force=True)
    assert again.status == "empty_skipped" and "nothing new" in again.message
    assert len(smtp.messages) == 2  # a forced digest with nothing in it mails nobody
    assert ledger(week_app)[-1].period_end == tuesday + timedelta(minutes=5)
    tuesday += timedelta(minutes=5)
    assert ledger(week_app)[-1].period_end == tuesday
    scheduled = send_digest(week_app, now=tuesday)  # Monday's period: inside the forced one
    assert scheduled.status == "already_sent"
    assert scheduled.message == ("nothing new to send: digests went out up to "
                                 f"{tuesday:%Y-%m-%d %H:%M} UTC, after the last digest time "
                                 f"({PERIOD_END:%Y-%m-%d %H:%M} UTC)")


def test_a_first_digest_that_failed_goes_out_whole_with_the_next_period(make_config):
    server = SmtpServer()  # nothing listening: the very first digest fails
    app = App(digest_config(make_config, server))
    seed_week(app)
    with pytest.raises(SendError):
        send_digest(app, now=NOW)
    with transaction(app.sessions) as session:
        add_paper(session, "2611.20001", NOW + timedelta(days=2), 0.8)

    with server:  # fixed only after the next digest time
        assert send_digest(app, now=NOW + timedelta(days=7)).status == "sent"
    failed, sent = ledger(app)
    assert failed.status == "failed" and sent.status == "sent"
    assert (sent.period_start, sent.period_end) == (PERIOD_END - timedelta(days=7),
                                                     PERIOD_END + timedelta(days=7))
    assert set(ledger_items(app, sent.id)) >= EXPECTED_PAPERS | EXPECTED_POSTS | {"2611.20001"}


def test_force_on_a_store_that_never_sent_starts_where_preview_does(week_app, smtp):
    from tracker.pipeline.digest import preview

    later = NOW + timedelta(days=2)
    shown = preview(week_app, now=later)
    assert send_digest(week_app, now=later, force=True).status == "sent"
    [row] = ledger(week_app)
    assert row.period_start == shown.digest.start == PERIOD_END - timedelta(days=7)
    assert set(ledger_items(week_app, row.id)) >= EXPECTED_PAPERS


def test_concurrent_senders_send_one_email(make_config, smtp):
    config = digest_config(make_config, smtp)
    seed_week(App(config))
    apps = [App(config) for _ in range(4)]
    barrier = threading.Barrier(len(apps))

    def race(app: App):
        barrier.wait()
        return send_digest(app, now=NOW)

    with ThreadPoolExecutor(len(apps)) as pool:
        outcomes = list(pool.map(race, apps))
    for app in apps:
        app.close()

    assert len(smtp.envelopes) == 1
    statuses = sorted(o.status for o in outcomes)
    assert statuses.count("sent") == 1
    assert set(statuses) <= {"sent", "already_sent", "in_progress"}
    [row] = ledger(App(config))
    assert row.status == "sent"



def test_claims_for_different_periods_are_taken_one_at_a_time(week_app):
    """A forced send beside the scheduled one: while one claim's transaction is open, a
    claim for another period waits for it and then sees it (PostgreSQL's read committed
    let both pass the one-at-a-time check; SQLite's write lock serialised them already)."""
    from tracker.store import digests as claims

    stale = NOW - timedelta(hours=3)
    first = week_app.sessions()
    first.begin()
    first.connection(execution_options={"write_unit": True})
    assert claims.claim(first, PERIOD_END - timedelta(days=7), PERIOD_END, NOW, [],
                        stale).status == "claimed"
    started = threading.Event()

    def other_period():
        started.set()
        with transaction(week_app.sessions) as session:
            return claims.claim(session, PERIOD_END - timedelta(days=1), NOW, NOW, [], stale)

    with ThreadPoolExecutor(1) as pool:
        second = pool.submit(other_period)
        started.wait()
        wait([second], timeout=1.0)
        done_early = second.done()  # it must wait while the first is uncommitted
        first.commit()
        first.close()
        assert not done_early
        assert second.result(timeout=30).status == "sending"
    assert [row.status for row in ledger(week_app)] == ["sending"]


def test_a_live_claim_blocks_and_a_stale_one_is_taken_over(week_app, smtp):
    with transaction(week_app.sessions) as session:
        session.add(DigestRow(period_start=PERIOD_END - timedelta(days=7), period_end=PERIOD_END,
                              status="sending", recipients=[], created_at=NOW - timedelta(hours=1)))
    assert send_digest(week_app, now=NOW).status == "in_progress"
    assert not smtp.envelopes

    later = NOW + timedelta(hours=3)  # the claim is now 4 h old; lock_ttl_seconds is 3 h
    assert send_digest(week_app, now=later).status == "sent"
    assert len(smtp.envelopes) == 1 and ledger(week_app)[0].status == "sent"


# -- configuration cases --------------------------------------------------------------------


def test_no_recipients_sends_and_records_nothing(make_config, smtp):
    app = App(digest_config(make_config, smtp, recipients=[]))
    outcome = send_digest(app, now=NOW)  # a new store too: not "the first goes out Monday"
    assert outcome.status == "no_recipients" and "recipients" in outcome.message
    seed_week(app)
    outcome = send_digest(app, now=NOW)
    assert outcome.status == "no_recipients" and "recipients" in outcome.message
    assert not smtp.envelopes and ledger(app) == []


def test_dry_run_sends_and_records_nothing(week_app, smtp):
    outcome = send_digest(week_app, now=NOW, dry_run=True)
    assert outcome.status == "dry_run" and outcome.item_count == 11
    assert not smtp.envelopes and ledger(week_app) == []


def test_empty_week_sends_a_short_note_when_send_empty(make_config, smtp):
    app = App(digest_config(make_config, smtp))
    watched_since(app, WATCHING)
    assert send_digest(app, now=NOW).status == "sent"
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "Nothing relevant in this period." in text and item_ids_in(text) == []


def test_empty_week_sends_nothing_without_send_empty(make_config, smtp):
    app = App(digest_config(make_config, smtp, send_empty=False))
    watched_since(app, WATCHING)
    outcome = send_digest(app, now=NOW)
    assert outcome.status == "empty_skipped" and not smtp.envelopes
    # The period is closed (so it is not retried every run) and listed as skipped.
    assert send_digest(app, now=NOW).status == "already_sent"
    [row] = list_digests(app)
    assert row["status"] == "skipped" and row["message_id"] is None and row["items"] == 0
    from tracker.pipeline.status import collect
    from tracker.scheduler import next_fire_times

    status = collect(app, next_fire_times(app.config, NOW), NOW)["last_digest"]  # the same
    assert status["status"] == "skipped" and status["sent_at"] is not None


def test_old_posts_of_a_new_feed_are_left_out_and_posts_show_their_date(make_config, smtp):
    app = App(digest_config(make_config, smtp))
    watched_since(app, WATCHING)
    with transaction(app.sessions) as session:  # a feed added this week, with its archive
        for pid, published in ((901, datetime(2015, 6, 1, tzinfo=UTC)),
                               (902, PERIOD_END - timedelta(days=3)), (903, None)):
            session.add(PostRow(
                id=pid, feed="xcorr", guid=f"g{pid}", link=f"https://xcorr.example/{pid}",
                title=f"Post {pid}", author="", summary_text="The brain.", content_html="",
                published=published, first_seen_at=PERIOD_END - timedelta(days=1), score=0.9,
                score_model="test"))

    assert send_digest(app, now=NOW).status == "sent"
    message = smtp.messages[0]
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    for part in (text, html):
        assert "xcorr.example/901" not in part
        assert "xcorr.example/902" in part and "xcorr.example/903" in part
        assert "20 Nov 2026" in part


@pytest.mark.parametrize("include_updates", [False, True])
def test_backfilled_history_is_not_news(make_config, smtp, include_updates):
    app = App(digest_config(make_config, smtp, include_updates=include_updates))
    watched_since(app, WATCHING)
    seen = PERIOD_END - timedelta(days=1)
    old, recent = datetime(2024, 3, 1, tzinfo=UTC), PERIOD_END - timedelta(days=2)
    with transaction(app.sessions) as session:
        for pid, published, updated, version in (
                ("2403.00001", old, old, 1), ("2403.00002", old, old + timedelta(days=30), 2),
                ("2611.30001", recent, recent, 1),  # this week's paper
                ("2403.00003", old, recent, 3)):  # an old paper revised this week
            add_paper(session, pid, seen, 0.9, version=version)
            session.flush()
            session.execute(update(PaperRow).where(PaperRow.id == pid)
                            .values(published=published, updated=updated))

    assert send_digest(app, now=NOW).status == "sent"
    text = smtp.messages[0].get_body(("plain",)).get_content()
    expected = ["2611.30001", "2403.00003"] if include_updates else ["2611.30001"]
    assert sorted(item_ids_in(text)) == sorted(expected)
    assert ("updated to v3" in text) == include_updates


def test_a_new_store_sends_no_digest_for_the_week_before_it_began(make_config, smtp):
    """A fresh install's first run comes after the last digest time: that week's digest
    would say "nothing relevant" about a week nobody watched. The first digest goes out at
    the next digest time, with what was fetched since; preview shows it meanwhile."""
    from tracker.pipeline.digest import preview

    app = App(digest_config(make_config, smtp))
    with transaction(app.sessions) as session:  # the first fetch, an hour after 08:00
        add_paper(session, "2611.20001", NOW, 0.9, title="Spiking networks of the hippocampus")
    outcome = send_digest(app, now=NOW)
    assert outcome.status == "not_started"
    assert "the first goes out 2026-11-30 08:00 UTC" in outcome.message
    assert not smtp.envelopes and ledger(app) == []
    shown = preview(app, now=NOW + timedelta(hours=1))
    assert (shown.digest.start, shown.digest.end) == (PERIOD_END, NOW + timedelta(hours=1))
    assert [item.id for item in shown.digest.items] == ["2611.20001"]
    forced = send_digest(app, now=NOW + timedelta(hours=1), force=True, dry_run=True)
    assert forced.status == "dry_run" and f"{PERIOD_END:%d %b} to" in forced.message

    assert send_digest(app, now=NOW + timedelta(days=7)).status == "sent"
    [row] = ledger(app)
    assert (row.period_start, row.period_end) == (PERIOD_END, PERIOD_END + timedelta(days=7))
    assert ledger_items(app, row.id) == ["2611.20001"]


def test_preview_after_a_send_shows_what_the_next_digest_holds_so_far(week_app, smtp):
    from tracker.pipeline.digest import preview

    due = preview(week_app, now=NOW)
    assert (due.digest.start, due.digest.end) == (PERIOD_END - timedelta(days=7), PERIOD_END)
    send_digest(week_app, now=NOW)
    later = NOW + timedelta(days=2)
    upcoming = preview(week_app, now=later)

    assert (upcoming.digest.start, upcoming.digest.end) == (PERIOD_END, later)
    assert [item.id for item in upcoming.digest.items] == ["2611.10010"]
    assert len(smtp.envelopes) == 1 and len(ledger(week_app)) == 1  # preview records nothing


# -- SMTP failures and transports (refusal, server down, login, STARTTLS, implicit TLS) --


def test_smtp_refusal_is_a_clear_error_nothing_recorded_and_next_run_sends(week_app, smtp):
    smtp.refuse("554 5.7.1 message rejected by policy")
    with pytest.raises(SendError) as error:
        send_digest(week_app, now=NOW)

    assert "554 5.7.1 message rejected by policy" in str(error.value)
    assert "\n" not in str(error.value)
    [row] = ledger(week_app)
    assert row.status == "failed" and "554" in row.error
    assert ledger_items(week_app, row.id) == [] and not smtp.envelopes

    retry = send_digest(week_app, now=NOW + timedelta(hours=1))
    assert retry.status == "sent" and len(smtp.envelopes) == 1
    [row] = ledger(week_app)
    assert row.status == "sent" and len(ledger_items(week_app, row.id)) == 11


def test_a_refused_recipient_is_named_with_the_server_reply(week_app, smtp):
    from tracker.pipeline.status import collect, render_table
    from tracker.scheduler import next_fire_times

    smtp.refuse_recipient("ben@example.org", "451 4.7.1 Greylisted, try again later")
    outcome = send_digest(week_app, now=NOW)

    assert outcome.status == "sent"
    [envelope] = smtp.envelopes
    assert envelope.rcpt_tos == ["ada@example.org"]
    refusal = "ben@example.org (451 4.7.1 Greylisted, try again later)"
    assert "to 1 recipient(s)" in outcome.message and refusal in outcome.message
    [row] = list_digests(week_app)
    assert refusal in row["error"]
    report = collect(week_app, next_fire_times(week_app.config, NOW), now=NOW)
    assert refusal in render_table(report)


def test_smtp_down_is_a_clear_error_and_the_next_run_sends(make_config):
    server = SmtpServer()  # port reserved, nothing listening yet
    app = App(digest_config(make_config, server))
    seed_week(app)
    with pytest.raises(SendError) as error:
        send_digest(app, now=NOW)
    assert f"cannot connect to SMTP server 127.0.0.1:{server.port}" in str(error.value)
    assert [row.status for row in ledger(app)] == ["failed"]

    with server:
        assert send_digest(app, now=NOW + timedelta(hours=1)).status == "sent"
        assert len(server.envelopes) == 1
    assert [row.status for row in ledger(app)] == ["sent"]


class AuthSmtpServer(SmtpServer):
    """The shared server plus AUTH PLAIN over plain TCP (for the test only)."""

    password = "s3cret-pw"

    def __enter__(self):
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        def check(server, session, envelope, mechanism, auth_data):
            ok = auth_data.login == b"digest" and auth_data.password == self.password.encode()
            return AuthResult(success=ok, handled=False)  # let aiosmtpd send the 535

        self._controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                      auth_require_tls=False, authenticator=check,
                                      auth_exclude_mechanism=["LOGIN"])
        self._controller.start()
        return self


def _login_app(make_config, server: SmtpServer) -> App:
    """One recipient, [smtp] username 'digest', a store watching since WATCHING."""
    app = App(make_config({"smtp": {**server.config(), "username": "digest"}, "feeds": [],
                           "digest": {"recipients": ["ada@example.org"]}}))
    watched_since(app, WATCHING)
    return app


def test_login_uses_the_password_from_the_environment_and_never_shows_it(
        make_config, monkeypatch, caplog):
    with AuthSmtpServer() as server:
        app = _login_app(make_config, server)
        monkeypatch.setenv("TRACKER_SMTP_PASSWORD", "wrong-password")
        with pytest.raises(SendError) as error:
            send_digest(app, now=NOW)
        assert "refused the login for 'digest'" in str(error.value)
        assert "wrong-password" not in str(error.value) + caplog.text

        monkeypatch.setenv("TRACKER_SMTP_PASSWORD", server.password)
        assert send_digest(app, now=NOW).status == "sent"
        assert len(server.envelopes) == 1
        assert server.password not in caplog.text


def test_a_username_without_a_password_is_a_clear_error_before_any_smtp(make_config,
                                                                          monkeypatch):
    with AuthSmtpServer() as server:
        app = _login_app(make_config, server)
        monkeypatch.delenv("TRACKER_SMTP_PASSWORD", raising=False)
        with pytest.raises(SendError, match=r"username is set.*TRACKER_SMTP_PASSWORD is not"):
            send_digest(app, now=NOW)
        assert server.envelopes == [] and [row.status for row in ledger(app)] == ["failed"]


def test_a_username_for_a_server_without_login_says_so(make_config, monkeypatch):
    with SmtpServer() as server:  # offers no AUTH
        app = _login_app(make_config, server)
        monkeypatch.setenv("TRACKER_SMTP_PASSWORD", "pw")
        with pytest.raises(SendError, match="offers no login, but .smtp. username is set"):
            send_digest(app, now=NOW)
        assert server.envelopes == [] and [row.status for row in ledger(app)] == ["failed"]


def test_a_non_ascii_password_is_a_clear_error_that_shows_none_of_it(
        make_config, monkeypatch, caplog):
    with AuthSmtpServer() as server:
        app = _login_app(make_config, server)
        monkeypatch.setenv("TRACKER_SMTP_PASSWORD", "s3cret-Pässwort")
        with pytest.raises(SendError) as error:
            send_digest(app, now=NOW)
        assert "non-ASCII" in str(error.value)
        [row] = ledger(app)
        for shown in (str(error.value), row.error, caplog.text):
            assert "ä" not in shown and "xe4" not in shown and "position" not in shown


def test_a_non_ascii_recipient_on_a_server_without_smtputf8_says_so(make_config):
    with SmtpServer(smtputf8=False) as server:
        app = App(make_config({"smtp": server.config(), "feeds": [],
                               "digest": {"recipients": ["jürgen@example.org"]}}))
        watched_since(app, WATCHING)
        with pytest.raises(SendError) as error:
            send_digest(app, now=NOW)
    assert "SMTPUTF8" in str(error.value) and "login" not in str(error.value)


# -- TLS -----------------------------------------------------------------------------------

CERT = TEST_DATA / "digest" / "test_smtp_cert.pem"  # self-signed for 127.0.0.1, test only
KEY = TEST_DATA / "digest" / "test_smtp_key.pem"


class TlsSmtpServer(SmtpServer):
    """The shared server speaking STARTTLS (required before MAIL) or implicit TLS."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.mode = mode

    def config(self) -> dict:
        return {**super().config(), "security": self.mode}

    def __enter__(self):
        import ssl

        from aiosmtpd.controller import Controller

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(CERT, KEY)
        options = ({"tls_context": context, "require_starttls": True} if self.mode == "starttls"
                   else {"ssl_context": context})
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **options)
        self._controller.start()
        return self


@pytest.mark.parametrize("mode", ["starttls", "ssl"])
def test_tls_modes_send_and_check_the_certificate(make_config, monkeypatch, mode):
    with TlsSmtpServer(mode) as server:
        app = App(digest_config(make_config, server))
        seed_week(app)
        with pytest.raises(SendError) as error:  # the system CAs do not trust our test cert
            send_digest(app, now=NOW)
        assert "certificate verify failed" in str(error.value)
        assert not server.envelopes

        monkeypatch.setenv("SSL_CERT_FILE", str(CERT))  # now trust it, as an admin would
        assert send_digest(app, now=NOW + timedelta(minutes=5)).status == "sent"
        assert len(server.envelopes) == 1
        assert server.messages[0]["Subject"] == "NeuroAI digest: 16 Nov to 23 Nov 2026"


def test_starttls_configured_but_not_offered_is_a_clear_error(make_config, smtp):
    plain = {**smtp.config(), "security": "starttls"}
    app = App(make_config({"smtp": plain, "feeds": [], "digest": {"recipients": ["a@b.org"]}}))
    watched_since(app, WATCHING)
    with pytest.raises(SendError) as error:
        send_digest(app, now=NOW)
    assert "STARTTLS extension not supported by server" in str(error.value)
    assert "[smtp]" in error.value.hint and not smtp.envelopes


def test_an_unscored_item_labelled_relevant_is_sent_last_and_shown_unscored(week_app, smtp):
    """Scoring failed for it (`tracker rescore` has not run yet), but the user's label
    puts it in: it goes last, its score shown as not there, not as a number."""
    with transaction(week_app.sessions) as session:
        session.add(PaperRow(id="2611.10077", version=1, title="Unscored but labelled",
                             abstract="Dendrites.", authors=["Ada Byron"], categories=["cs.NE"],
                             first_seen_at=NOW - timedelta(days=2),
                             version_seen_at=NOW - timedelta(days=2)))
        session.flush()
        session.add(LabelRow(paper_id="2611.10077", label="relevant", created_at=NOW))
    assert send_digest(week_app, now=NOW).status == "sent"
    text = smtp.messages[0].get_body(("plain",)).get_content()
    papers = [i for i in item_ids_in(text) if not i.startswith("post:")]
    assert set(papers) == EXPECTED_PAPERS | {"2611.10077"}
    lines = text.splitlines()
    at = lines.index("* Unscored but labelled")
    assert lines[at + 2] == "  Ada Byron | cs.NE | labelled relevant, not scored yet"
    html = smtp.messages[0].get_body(("html",)).get_content()
    assert "cs.NE &middot; labelled relevant, not scored yet" in html


def test_a_post_two_feeds_carry_is_one_entry_and_counts_once(week_app, smtp):
    with transaction(week_app.sessions) as session:
        session.add(PostRow(id=5, feed="the-transmitter", guid="copy-of-1", title="SNN dynamics",
                            link="https://xcorr.example/2026/11/snn-dynamics",
                            summary_text="Spiking networks.", score=0.75, score_model="test",
                            first_seen_at=NOW - timedelta(days=2)))
    outcome = send_digest(week_app, now=NOW)
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert outcome.item_count == 11 and item_ids_in(text).count("post:1") == 1
    # the header counts entries, as the email shows them: 11 relevant, 11 in it, none left out
    assert ", 11 relevant, 11 in this email" in text and "did not fit" not in text


def _fetching_elsewhere(app, monkeypatch) -> str:
    """Another host's fetch, begun before the digest time, holds the fetch lease (past the
    test's real clock); the digest polls it quickly. Returns the holder."""
    from tracker.pipeline import digest as digest_use_case
    from tracker.pipeline import utcnow
    from tracker.store import runs

    monkeypatch.setattr(digest_use_case, "FETCH_POLL_SECONDS", 0.05)
    holder = "another-host.example:4242:worker"  # alive, for all this host can tell
    with transaction(app.sessions) as session:
        assert runs.acquire_lock(session, "fetch", holder, NOW - timedelta(minutes=5),
                                 utcnow() - NOW + timedelta(hours=3))
    return holder


def test_a_digest_waits_for_a_fetch_running_elsewhere_and_holds_what_it_stores(
        week_app, smtp, monkeypatch):
    """Another process's fetch, started before the digest time, stamps its items with its
    start: read before it committed them, the digest closed their period without them, and
    no later digest took them. It now waits until that fetch lets go of its lease."""
    from tracker.store import runs

    holder = _fetching_elsewhere(week_app, monkeypatch)
    with ThreadPoolExecutor(1) as pool:
        sending = pool.submit(send_digest, week_app, now=NOW)
        threading.Event().wait(1.0)
        assert not sending.done() and not smtp.envelopes  # waiting for the fetch
        with transaction(week_app.sessions) as session:  # what that fetch stores, then ends
            add_paper(session, "2611.10099", PERIOD_END - timedelta(minutes=5), 0.95)
            runs.release_lock(session, "fetch", holder)
        outcome = sending.result(timeout=30)
    assert outcome.status == "sent"
    text = smtp.messages[0].get_body(("plain",)).get_content()
    assert "2611.10099" in item_ids_in(text)


def test_a_digest_does_not_wait_for_a_fetch_begun_after_its_time(week_app, smtp, monkeypatch,
                                                                 caplog):
    """That fetch stamps its items after the digest's time: they belong to the next one."""
    from tracker.pipeline import digest as digest_use_case
    from tracker.store import runs

    monkeypatch.setattr(digest_use_case, "FETCH_WAIT_MAX_SECONDS", 5.0)
    caplog.set_level("INFO", logger="tracker.digest")
    with transaction(week_app.sessions) as session:
        assert runs.acquire_lock(session, "fetch", "another-host.example:4242:worker",
                                 NOW + timedelta(minutes=1), timedelta(days=3650))
    assert send_digest(week_app, now=NOW).status == "sent"
    assert "waiting for the running fetch" not in caplog.text


def test_a_digest_that_waited_reads_what_was_sent_meanwhile(week_app, smtp, monkeypatch):
    """It read the ledger before waiting: a send that went out during the wait (a forced
    one) went unseen, and both emails held the same items."""
    from tracker.store import runs

    holder = _fetching_elsewhere(week_app, monkeypatch)
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(send_digest, week_app, now=NOW)
        threading.Event().wait(0.5)
        with transaction(week_app.sessions) as session:  # a forced send, meanwhile, to 09:00
            session.add(DigestRow(period_start=PERIOD_END - timedelta(days=7),
                                  period_end=NOW, status="sent", message_id="<m@x>",
                                  recipients=["ada@example.org"], created_at=NOW, sent_at=NOW))
            runs.release_lock(session, "fetch", holder)
        outcome = waiting.result(timeout=30)
    assert outcome.status == "already_sent" and not smtp.envelopes


def test_one_send_at_a_time_even_for_another_period(week_app, smtp):
    """A forced send in flight (its period runs to now) and the scheduled one overlap: each
    would read the other's items as unsent. The second waits for the next run."""
    with transaction(week_app.sessions) as session:
        session.add(DigestRow(period_start=PERIOD_END - timedelta(days=7),
                              period_end=NOW - timedelta(minutes=30), status="sending",
                              recipients=["ada@example.org"],
                              created_at=NOW - timedelta(minutes=30)))
    outcome = send_digest(week_app, now=NOW)
    assert outcome.status == "in_progress" and not smtp.envelopes
    assert "being sent by another process" in outcome.message
