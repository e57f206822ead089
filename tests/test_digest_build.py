"""The pure digest decisions (period, selection, layout, health warnings) and the themes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tracker.digest import build
from tracker.digest.render import render
from tracker.scoring.themes import OTHER, SINGLE, group_by_theme

END = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
START = END - timedelta(days=7)


def _item(pid: str, score: float, kind: str = "paper", refs=(), seen=START) -> build.Item:
    return build.Item(kind, pid, f"Title {pid}", f"https://example.org/{pid}", score, seen,
                      refs=tuple(refs))


def test_first_period_is_a_week_then_runs_from_the_last_sent_end():
    assert build.period(None, END) == (START, END)
    later = END + timedelta(days=7)
    assert build.period(END, later) == (END, later)
    assert build.period(END, END) is None  # already sent
    assert build.period(later, END) is None  # a later (forced) digest covers it


def test_select_is_best_first_and_capped():
    items = [_item("a", 0.6), _item("b", 0.9), _item("c", 0.7), _item("d", 0.9,
                                                                       seen=START + timedelta(1))]
    chosen, omitted = build.select(items, 3)
    assert [i.id for i in chosen] == ["d", "b", "c"]  # ties: newest first
    assert omitted == 1


def test_an_unscored_item_in_by_its_label_comes_after_every_scored_one():
    items = [_item("u", None), _item("a", 0.1), _item("b", 0.9)]
    assert [i.id for i in build.select(items, 3)[0]] == ["b", "a", "u"]
    assert [i.id for i in build.select(items, 2)[0]] == ["b", "a"]
    digest = build.assemble(START, END, items, [], [("A", [0, 1, 2])])
    assert [i.id for i in build.trimmed(digest, 2).items] == ["a", "b"]  # in place


def test_a_post_carried_by_two_feeds_is_one_entry_naming_both():
    def post(pid, score, feed, url="https://blog.example.org/p/1"):
        return build.Item("post", pid, "Same post", url, score, START, source=feed)

    items = [post("post:1", 0.6, "planet"), post("post:2", 0.8, "blog"), _item("a", 0.7),
             post("post:3", 0.5, "blog", url=None), post("post:4", 0.5, "other", url=None)]
    chosen, omitted = build.select(items, 10)
    assert [(i.id, i.source) for i in chosen] == [("post:2", "blog, planet"), ("a", "arXiv"),
                                                  ("post:3", "blog"), ("post:4", "other")]
    assert omitted == 0
    assert [i.id for i in build.select(items, 1)[0]] == ["post:2"]
    assert build.select(items, 1)[1] == 3  # items left out, each counted once


def test_posts_citing_a_paper_sit_beside_it_others_get_their_own_section():
    papers = [_item("2611.1", 0.9), _item("2611.2", 0.8)]
    posts = [_item("post:1", 0.7, "post", refs=["2611.2"]),
             _item("post:2", 0.6, "post", refs=["2000.9"])]
    digest = build.assemble(START, END, papers, posts, [("Theme", [0, 1])])

    assert [s.title for s in digest.sections] == ["Theme", build.POSTS_SECTION]
    entry = digest.sections[0].entries[1]
    assert entry.item.id == "2611.2" and [p.id for p in entry.related] == ["post:1"]
    assert [i.id for i in digest.items] == ["2611.1", "2611.2", "post:1", "post:2"]


def test_trimmed_keeps_the_most_relevant_entries_in_place_and_counts_what_it_dropped():
    papers = [_item(f"p{i}", 0.9 - i / 10) for i in range(5)]
    posts = [_item("post:1", 0.5, "post", refs=["p1"]), _item("post:2", 0.95, "post")]
    digest = build.assemble(START, END, papers, posts, [("A", [0, 1]), ("B", [2, 3, 4])])
    small = build.trimmed(digest, 3)
    # the blog post that scores highest is kept, though its section comes last
    assert [i.id for i in small.items] == ["p0", "p1", "post:1", "post:2"]
    assert [s.title for s in small.sections] == ["A", build.POSTS_SECTION]
    assert small.omitted == 3 and build.entry_count(small) == 3


def test_health_warnings_stay_short_however_many_sources_fail():
    """A DNS outage with a hundred feeds, each with a long error: the warnings alone once
    made even an empty digest too big to send, every week until the feeds came back."""
    error = "HTTP 503 from https://example.org/feed/:\n" + "Service Unavailable " * 60
    down = [build.SourceHealth(f"feed{i}", END, START - timedelta(days=3), error, 3)
            for i in range(100)]
    warnings = build.health_warnings(down, [s.name for s in down], START, END)
    assert len(warnings) == build.MAX_WARNINGS
    assert warnings[-1] == "and 81 more sources with problems (`tracker status` lists them all)"
    assert warnings[0].startswith("feed0: no successful fetch all period (3 failures in a row; "
                                  "last error: HTTP 503 from https://example.org/feed/: Service")
    assert warnings[0].endswith("…)") and all(len(w) < 300 for w in warnings)
    digest = build.assemble(START, END, [_item("p1", 0.9)], [], [("A", [0])],
                            warnings=warnings)
    rendered = render(digest, subject="s")
    assert [i.id for i in rendered.digest.items] == ["p1"] and "and 81 more" in rendered.text


def test_health_warnings_name_sources_that_did_not_work_this_period():
    ok = build.SourceHealth("arxiv", END - timedelta(hours=2), END - timedelta(hours=2))
    down = build.SourceHealth("xcorr", END, START - timedelta(days=3), "HTTP 503", 9)
    flaky = build.SourceHealth("colah", END, START + timedelta(days=2), "timeout", 1)
    stale = build.SourceHealth("old", START - timedelta(days=1), START - timedelta(days=1))
    warnings = build.health_warnings([ok, down, flaky, stale], ["arxiv", "xcorr", "colah", "old",
                                                                "new-feed"], START, END)
    assert warnings == [
        "xcorr: no successful fetch all period (9 failures in a row; last error: HTTP 503)",
        "colah: failing since its last success (1 failure in a row; last error: timeout)",
        "old: not fetched this period",
        "new-feed: never fetched",
    ]


def test_short_authors_and_excerpt():
    assert build.short_authors(("A", "B", "C")) == "A, B, C"
    assert build.short_authors(("A", "B", "C", "D")) == "A, B, C et al."
    assert build.excerpt("one two  three\nfour", 100) == "one two three four"
    assert build.excerpt("alpha beta gamma delta", 12) == "alpha beta…"


SPIKING = "spiking neurons neuromorphic chips energy efficient spike timing plasticity"
VISION = "visual cortex fmri responses encoding models ventral stream images"
MEMORY = "hippocampus replay memory consolidation place cells sleep"


def test_themes_group_similar_papers_and_name_them_by_top_terms():
    texts = []
    for n in range(6):  # interleaved, so grouping cannot come from input order
        texts += [f"{SPIKING} variant{n}", f"{VISION} variant{n}", f"{MEMORY} variant{n}"]
    groups = group_by_theme(texts)

    assert sorted(sorted(members) for _, members in groups) == [
        list(range(0, 18, 3)), list(range(1, 18, 3)), list(range(2, 18, 3))]
    names = dict((members[0] % 3, name) for name, members in groups)
    assert any(term in names[0] for term in ("spiking", "neuromorphic", "spike"))
    assert any(term in names[1] for term in ("visual", "cortex", "fmri"))
    assert [members[0] for _, members in groups] == [0, 1, 2]  # ordered by best member


def test_themes_for_few_papers_is_one_section_and_small_clusters_pool():
    assert group_by_theme([]) == []
    assert group_by_theme([SPIKING, VISION, MEMORY]) == [(SINGLE, [0, 1, 2])]
    texts = [f"{SPIKING} v{n}" for n in range(6)] + [f"{VISION} v{n}" for n in range(6)]
    texts.append(MEMORY)
    groups = group_by_theme(texts, max_groups=3)
    every = sorted(i for _, members in groups for i in members)
    assert every == list(range(13))
    assert all(len(members) >= 3 or name == OTHER for name, members in groups)


def test_papers_with_no_distinctive_terms_join_the_other_papers():
    texts = [f"{SPIKING} v{n}" for n in range(10)] + [f"{VISION} v{n}" for n in range(10)]
    texts += ["we show that this is the one"] * 10 + [f"{MEMORY} m{n}" for n in range(2)]
    groups = group_by_theme(texts)
    names = [name for name, _ in groups]
    assert names[-1] == OTHER and len(set(names)) == len(names)
    assert sorted(groups[-1][1]) == list(range(20, 32))
