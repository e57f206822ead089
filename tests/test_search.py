"""Search over a small store on SQLite and PostgreSQL: matching, ranking, every filter,
sorting and paging, the full-text index kept in sync, and hostile queries."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, func, select, update

from tracker.errors import InputError
from tracker.pipeline.query import Filters, search
from tracker.store.db import transaction
from tracker.store.schema import (
    DigestItemRow,
    DigestRow,
    LabelRow,
    PaperRow,
    PaperVersionRow,
    PostRefRow,
    PostRow,
    ScoreRow,
)


def day(month: int, d: int, year: int = 2026) -> datetime:
    return datetime(year, month, d, 9, 0, tzinfo=UTC)


PAPERS = [
    # id, title, abstract, authors, categories, published, score
    ("2601.00001", "Predictive coding in cortical microcircuits",
     "We show that dendritic computation supports predictive coding in cortex.",
     ["Ada Lovelace", "Bob Ng"], ["q-bio.NC", "cs.NE"], day(1, 10), 0.91),
    ("2601.00002", "Spiking neural networks for robot control",
     "Spike-timing dependent plasticity trains the networks; predictive coding is a baseline.",
     ["Carla Díaz"], ["cs.NE"], day(2, 5), 0.55),
    ("2601.00003", "Transformers for protein folding",
     "Coding sequences turn out to be predictive of structure.",
     ["Ada Smith"], ["q-bio.BM", "cs.LG"], day(12, 20, 2025), 0.12),
    ("math/0211159", "Ricci flow with surgery on three-manifolds",
     "Geometry of three-manifolds via the Ricci flow.",
     ["Grigori Perelman"], ["math.DG"], day(11, 11, 2002), None),
    ("2601.00005", "Hippocampal replay and retinal waves",
     "Recordings from the retina and the hippocampus during sleep.",
     ["Bob Ng"], ["q-bio.NC"], day(3, 1), 0.7),
]
POSTS = [
    # feed, title, summary, author, published, score
    ("colah", "Why predictive coding matters", "A long post on predictive coding and 2601.00001.",
     "Chris Olah", day(2, 10), 0.8),
    ("thegradient", "Dendrites compute", "Dendritic spikes, explained.", None, None, None),
]
ALL_IDS = {p[0] for p in PAPERS} | {"post:1", "post:2"}


def seed(app) -> None:
    seen = day(3, 2)
    with transaction(app.sessions) as s:
        for pid, title, abstract, authors, cats, published, score in PAPERS:
            s.add(PaperRow(id=pid, version=1, title=title, abstract=abstract, authors=authors,
                           categories=cats, primary_category=cats[0], published=published,
                           first_seen_at=seen, version_seen_at=seen, score=score))
        s.flush()
        for n, (feed, title, summary, author, published, score) in enumerate(POSTS, 1):
            s.flush()  # ids 1, 2, ... in this order
            s.add(PostRow(feed=feed, guid=f"g{n}", link=f"https://blog.example/{n}",
                          title=title, author=author, summary_text=summary, content_html="",
                          published=published, first_seen_at=day(1, 15), score=score))
        s.flush()
        s.add(PostRefRow(post_id=1, kind="arxiv", value="2601.00001"))
        s.add(PaperVersionRow(paper_id="2601.00001", version=1, title="Predictive coding (draft)",
                              updated=day(1, 10), seen_at=day(1, 11)))
        for value, when in ((0.4, day(1, 11)), (0.91, day(2, 1))):
            s.add(ScoreRow(paper_id="2601.00001", value=value, model_version="m1",
                           config_hash="h", why=["predictive coding"], scored_at=when))
        s.add(LabelRow(paper_id="2601.00001", label="relevant", created_at=day(2, 2)))
        s.add(LabelRow(paper_id="2601.00003", label="irrelevant", created_at=day(2, 2)))
        s.add(LabelRow(post_id=2, label="relevant", created_at=day(2, 2)))
        digest = DigestRow(period_start=day(1, 5), period_end=day(1, 12), status="sent",
                           recipients=["a@example.org"], created_at=day(1, 12))
        s.add(digest)
        s.flush()
        s.add(DigestItemRow(digest_id=digest.id, paper_id="2601.00001", position=1,
                            section="papers", score=0.91))


@pytest.fixture
def store(app):
    seed(app)
    return app


def ids(app, text=None, **kwargs) -> list[str]:
    options = {k: kwargs.pop(k) for k in ("sort", "limit", "offset") if k in kwargs}
    return [item["id"] for item in search(app, text, Filters(**kwargs), **options)]


def test_empty_query_lists_everything_newest_first(store):
    assert ids(store) == ["2601.00005", "post:1", "2601.00002", "post:2", "2601.00001",
                          "2601.00003", "math/0211159"]


def test_words_phrases_prefixes_and_stemming(store):
    # all words must match, in any field; "networks" and "spiking" are stemmed
    assert set(ids(store, "predictive coding")) == {"2601.00001", "2601.00002", "2601.00003",
                                                     "post:1"}
    assert set(ids(store, '"predictive coding"')) == {"2601.00001", "2601.00002", "post:1"}
    assert set(ids(store, "dendrit*")) == {"2601.00001", "post:2"}
    assert set(ids(store, "spike")) == {"2601.00002", "post:2"}
    assert set(ids(store, "network")) == {"2601.00002"}
    assert ids(store, "perelman") == ["math/0211159"]  # authors are indexed


def test_boolean_operators_and_parentheses(store):
    assert set(ids(store, "ricci OR hippocampal")) == {"math/0211159", "2601.00005"}
    assert ids(store, "(ricci OR hippocampal) NOT retina") == ["math/0211159"]
    assert ids(store, "predictive AND spiking") == ["2601.00002"]
    assert set(ids(store, '"predictive coding" NOT (robot OR cortex)')) == {"post:1"}
    # lower-case operators are words; common words are dropped outside phrases (PostgreSQL
    # does not index them), so both backends read this as: spiking robot
    assert ids(store, "spiking or robot") == ["2601.00002"]
    assert ids(store, "retina OR (the)") == ["2601.00005"]
    assert ids(store, '"ricci flow with surgery"') == ["math/0211159"]


def test_ranking_puts_title_and_repeated_matches_first(store):
    ranked = ids(store, "predictive coding", kind="paper")
    assert ranked[0] == "2601.00001"  # in the title and the abstract
    assert set(ranked[1:]) == {"2601.00002", "2601.00003"}
    assert ids(store, "retina OR hippocampus OR cortex", kind="paper") == [
        "2601.00005", "2601.00001"]


def test_filters(store):
    assert ids(store, since=day(2, 5), until=day(3, 1)) == ["post:1", "2601.00002"]
    assert ids(store, min_score=0.7) == ["2601.00005", "post:1", "2601.00001"]
    assert ids(store, categories=("q-bio.NC",)) == ["2601.00005", "2601.00001"]
    assert ids(store, categories=("Q-BIO.nc",)) == ["2601.00005", "2601.00001"]
    assert ids(store, categories=("math.DG", "cs.LG")) == ["2601.00003", "math/0211159"]
    assert ids(store, author="ada") == ["2601.00001", "2601.00003"]
    assert ids(store, author="ada lov") == ["2601.00001"]
    assert ids(store, author="ng") == ["2601.00005", "2601.00001"]
    assert ids(store, author="olah") == ["post:1"]
    assert ids(store, author="DÍAZ") == ["2601.00002"]  # case folded, accents kept
    assert ids(store, author="diaz") == []
    assert ids(store, kind="post") == ["post:1", "post:2"]
    assert ids(store, feed="thegradient") == ["post:2"]
    assert ids(store, feed="") == ids(store, "coding", feed="") == []  # papers have no feed
    assert ids(store, labelled="relevant") == ["post:2", "2601.00001"]
    assert ids(store, labelled="irrelevant") == ["2601.00003"]
    assert ids(store, "coding", min_score=0.5, kind="paper") == ["2601.00001", "2601.00002"]


def test_sorting_and_paging(store):
    assert ids(store, sort="score") == ["2601.00001", "post:1", "2601.00005", "2601.00002",
                                        "2601.00003", "post:2", "math/0211159"]
    assert ids(store, "predictive", sort="date") == ["post:1", "2601.00002", "2601.00001",
                                                     "2601.00003"]
    everything = ids(store, sort="score")
    pages = [ids(store, sort="score", limit=3, offset=n) for n in (0, 3, 6)]
    assert sum(pages, []) == everything


def test_author_initials_and_stop_word_surnames(store):
    with transaction(store.sessions) as s:
        for pid, authors in (("2603.00001", ["Kaiming He", "Xiangyu Zhang"]),
                             ("2603.00002", ["An Li"]), ("2603.00003", ["Ömer Faruk", "Lin XÖ"]),
                             ("2603.00004", ["Kaiming Wu", "Jean-Luc Picard"])):
            s.add(PaperRow(id=pid, version=1, title="t", abstract="a", authors=authors,
                           categories=["cs.CV"], primary_category="cs.CV",
                           published=day(3, 5), first_seen_at=day(3, 5),
                           version_seen_at=day(3, 5), score=0.5))
    assert ids(store, author="He") == ["2603.00001"]  # a stop word, but a surname
    assert ids(store, author="kaiming he") == ["2603.00001"]
    assert ids(store, author="An") == ["2603.00002"]
    assert ids(store, author="olah c") == ids(store, author="C. Olah") == ["post:1"]
    assert ids(store, author="ö faruk") == ["2603.00003"]
    assert ids(store, author="xö") == ids(store, author="XÖ") == ["2603.00003"]  # any case
    assert ids(store, author="j l picard") == ["2603.00004"]  # initials of a hyphenated name
    assert ids(store, author="x z") == ["2603.00001"]  # Xiangyu Zhang
    assert ids(store, author="k z") == []  # initials of two different authors
    assert ids(store, author="b ng") == ["2601.00005", "2601.00001"]
    assert ids(store, "cortical", author="a l") == ["2601.00001"]


def test_names_with_letters_python_lowers_to_two_are_found_as_written(store):
    """Python lowers "İ" to "i" plus a combining dot, which neither index holds."""
    with transaction(store.sessions) as s:
        s.add(PaperRow(id="2603.00005", version=1, title="Work by İlker Yildirim", abstract="a",
                       authors=["İlker Yildirim", "Jan Groß"], categories=["cs.CV"],
                       primary_category="cs.CV", published=day(3, 5),
                       first_seen_at=day(3, 5), version_seen_at=day(3, 5), score=0.5))
    for author in ("İlker", "İ yildirim", "İLKER", "GROẞ", "groß"):
        assert ids(store, author=author) == ["2603.00005"], author
    assert ids(store, "İlker") == ids(store, '"by İlker"') == ["2603.00005"]


def test_numbers_with_punctuation_are_found_on_both_backends(store):
    """PostgreSQL's parser kept "3.5" as one number and "CIFAR-100" as "cifar" and "-100";
    queries and FTS5 split at the punctuation (migration 0006)."""
    with transaction(store.sessions) as s:
        s.add(PaperRow(id="2604.00001", version=1, title="Spiking nets on CIFAR-100",
                       abstract="GPT-3.5 reaches 3.5% top-1 error; see arxiv.org/abs/2604.1.",
                       authors=["O'Neil Smith"], categories=["cs.NE"], primary_category="cs.NE",
                       published=day(3, 5), first_seen_at=day(3, 5), version_seen_at=day(3, 5),
                       score=0.5))
    for query in ("CIFAR-100", "cifar 100", "GPT-3.5", '"3.5"', "top-1", "O'Neil", "arxiv.org"):
        assert ids(store, query) == ["2604.00001"], query



def add_titled(app, titles: dict[str, str], abstract: str) -> None:
    """Papers {id: title} with one abstract, author and date."""
    with transaction(app.sessions) as s:
        for pid, title in titles.items():
            s.add(PaperRow(id=pid, version=1, title=title, abstract=abstract,
                           authors=["Ada Lovelace"], categories=["cs.NE"],
                           primary_category="cs.NE", published=day(4, 1),
                           first_seen_at=day(4, 1), version_seen_at=day(4, 1), score=0.5))


def assert_finds(store, titles: dict[str, str], abstract: str, cases) -> None:
    """Papers {id: title} stored; each (query, expected ids among them) checked."""
    add_titled(store, titles, abstract)
    for query, expected in cases:
        assert set(ids(store, query)) & set(titles) == expected, query


def test_superscripts_and_accents_split_words_alike_on_both_backends(store):
    """FTS5 kept superscript digits and fractions inside a word and broke words at a
    combining accent; PostgreSQL does the opposite (migration 0008 aligned FTS5)."""
    texts = {"2606.00001": "Ca²⁺ imaging of spike¹ trains",
             "2606.00002": "CO₂ sensing in ½ of the mice",
             # a with a combining macron below (no single-character form exists)
             "2606.00003": "Na\u0331ma talks on cortex",
             "2606.00004": "Café culture"}  # é as one character, as the sources store it
    assert_finds(store, texts, "Recordings.", (
        ("spike", {"2606.00001"}), ("Ca²⁺", {"2606.00001"}),
        ("ca", {"2606.00001"}), ("co", {"2606.00002"}),
        ('"sensing in of the mice"', {"2606.00002"}),
        ("nama", set()), ("talks", {"2606.00003"}),
        ("na\u0331ma talks", {"2606.00003"}),
        ("café", {"2606.00004"}), ("cafe", set()),
        ("cafe\u0301", {"2606.00004"}),  # pasted from a PDF, say
        ("spike ²", {"2606.00001"}),  # a symbol alone is no word
        ('"CO ₂ sensing"', {"2606.00002"})))
    with pytest.raises(InputError, match="no searchable words"):
        ids(store, "½ ²")


def test_phrases_with_a_stop_word_keep_it_on_both_backends(store):
    """PostgreSQL's tsquery drops such a word, so "in-context" matched every "context" and
    "coding of cortex" any "coding <word> cortex"; FTS5 indexes stop words. The phrase is
    also tested on the text (PostgreSQL): as typed or from its stem, within one field; a
    near-miss ("learners to learn") must not hide a phrase that overlaps it."""
    titles = {"2605.00001": "In-context learning in spiking networks",
              "2605.00002": "The context of learning, out of reach",
              "2605.00003": "Out-of-distribution studies of replay",
              "2605.00004": "Distribution shift in a study of David's cells",
              "2605.00005": "Predictive coding in cortex",
              "2605.00006": "The science of modern learning, a model with a bit of it",
              "2607.00001": "Teaching learners to learn to learn",
              "2607.00002": "Modern of model of model",
              "2607.00003": "A model of model of modern design",
              "2607.00004": "Learners to learners to learned",
              "2607.00006": "Modern of model of model of modern"}  # between two near-misses
    assert_finds(store, titles, "Spikes as codes for", (
        ('"learning to learn"', {"2607.00001"}), ('"learn to learn"', {"2607.00001"}),
        ('"model of model"', {"2607.00002", "2607.00003", "2607.00006"}),
        ('"learner to learner"', {"2607.00004"}),
        ("in-context", {"2605.00001"}),
        ('"in context" learning', {"2605.00001"}),
        ("in-contexts", {"2605.00001"}),  # stemmed, as a word is
        ("out-of-distribution", {"2605.00003"}),
        ('"out of distributions"', {"2605.00003"}),
        ("distribution-shift", {"2605.00004"}),
        ("David's", {"2605.00004"}),
        ('"context of"', {"2605.00002"}),
        ("in-cont*", {"2605.00001"}),
        ("context NOT in-context", {"2605.00002"}),
        ('"coding in"', {"2605.00005"}),  # stem "code": not a prefix
        ('"predictive codings in"', {"2605.00005"}),
        ('"coding of cortex"', set()),  # an inner stop word counts
        ('"codes for ada"', set()),  # a phrase stays in one field
        # a word is matched by its stem, not by what starts like it
        ('"of model"', {"2607.00002", "2607.00003", "2607.00006"}),  # not 2605.00006
        ('"a big"', set()),
        ('"of modern"', {"2605.00006", "2607.00003", "2607.00006"}),
        ('"a models"', {"2605.00006", "2607.00003"}),
        ('"a bit"', {"2605.00006"})))


def test_a_phrase_never_runs_from_one_field_into_the_next(store):
    """PostgreSQL's vector joins title, authors and abstract end to end; FTS5 keeps them
    apart."""
    add_titled(store, {"2607.00005": "A spiking model"}, abstract="Recordings of cortex.")
    found = ["2607.00005"]
    for query, expected in (('"model ada"', []), ('"lovelace recordings"', []),
                            ('"model ada"*', []), ('"spiking model"', found),
                            ('spiking NOT "model ada"', found),
                            ('spiking NOT "spiking model"', [])):
        assert [i for i in ids(store, query) if i.startswith("2607")] == expected, query


def test_paging_through_ties_shows_every_item_once(app):
    """Date-only timestamps, equal scores and identical texts make ties common; every cut
    must break them as the page does, or page k+1 skips and repeats rows of page k."""
    order = [(i * 17) % 40 for i in range(40)]  # stored out of id order
    with transaction(app.sessions) as s:
        for i in order:
            s.add(PaperRow(id=f"2602.{i:05d}", version=1, title="Cortex dynamics",
                           abstract="Recordings from cortex.", authors=["Ada Ng"],
                           categories=["q-bio.NC"], primary_category="q-bio.NC",
                           published=day(2, 1 + i % 2), first_seen_at=day(3, 2),
                           version_seen_at=day(3, 2), score=0.5 if i % 3 else None))
        for n in range(10):
            s.add(PostRow(feed="blog", guid=f"t{n}", link=f"https://blog.example/t{n}",
                          title="Cortex dynamics", summary_text="Recordings from cortex.",
                          content_html="", first_seen_at=day(2, 1), score=0.5))
    for text, sort in ((None, "date"), (None, "score"), ("cortex", "relevance"),
                       ("cortex", "date"), ("cortex", "score")):
        everything = ids(app, text, sort=sort, limit=100)
        assert len(everything) == 50
        for size in (7, 10):
            pages = [ids(app, text, sort=sort, limit=size, offset=n) for n in range(0, 50, size)]
            assert sum(pages, []) == everything, (text, sort, size)
        filtered = ids(app, text, sort=sort, limit=100, min_score=0.5)
        pages = [ids(app, text, sort=sort, limit=6, offset=n, min_score=0.5)
                 for n in range(0, len(filtered), 6)]
        assert sum(pages, []) == filtered, (text, sort, "min_score")


def test_a_page_of_more_ids_than_a_statement_can_bind_loads(store):
    """--limit allows 100,000 items; PostgreSQL binds at most 65,535 parameters."""
    from tracker.store.search import load_items

    keys = [("paper", f"9999.{i:05d}") for i in range(70_000)] + [("paper", "2601.00001")]
    with store.sessions() as session:
        items = load_items(session, keys + [("post", 1)])
    assert [item["id"] for item in items] == ["2601.00001", "post:1"]
    assert items[0]["label"] == "relevant"


def test_item_shape(store):
    by_id = {item["id"]: item for item in search(store, None, Filters(), limit=100)}
    paper, post = by_id["2601.00001"], by_id["post:2"]
    assert paper["kind"] == "paper" and paper["url"] == "https://arxiv.org/abs/2601.00001"
    assert paper["authors"] == ["Ada Lovelace", "Bob Ng"] and paper["version"] == 1
    assert paper["categories"] == ["q-bio.NC", "cs.NE"] and paper["label"] == "relevant"
    assert paper["published"] == day(1, 10) and paper["score"] == 0.91
    assert post["kind"] == "post" and post["score"] is None and post["feed"] == "thegradient"
    assert post["authors"] == [] and post["version"] is None and post["categories"] == []


def _count(app, model) -> int:
    with app.sessions() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_index_follows_insert_update_delete(store):
    assert ids(store, "axolotl") == []
    with transaction(store.sessions) as s:
        s.add(PaperRow(id="2602.09999", version=1, title="Axolotl regeneration", abstract="x",
                       authors=["Zed Q"], categories=["q-bio.TO"], published=day(2, 9),
                       first_seen_at=day(2, 9), version_seen_at=day(2, 9)))
        s.add(PostRow(feed="f", guid="new", title="Axolotl post", summary_text="limbs",
                      content_html="", first_seen_at=day(2, 9)))
    assert set(ids(store, "axolotl")) == {"2602.09999", "post:3"}
    with transaction(store.sessions) as s:  # text changes (as a new version does)
        s.execute(update(PaperRow).where(PaperRow.id == "2602.09999")
                  .values(title="Salamander limbs", version=2))
        s.execute(update(PostRow).where(PostRow.id == 3).values(summary_text="tails"))
        s.execute(update(PaperRow).where(PaperRow.id == "2601.00001").values(score=0.2))
    assert ids(store, "axolotl") == ["post:3"]
    assert ids(store, "salamander") == ["2602.09999"]
    assert ids(store, "tails") == ["post:3"] and ids(store, "limbs") == ["2602.09999"]
    assert "2601.00001" in ids(store, "microcircuits")  # a score update keeps it indexed
    with transaction(store.sessions) as s:
        s.execute(delete(PaperRow).where(PaperRow.id == "2602.09999"))
        s.execute(delete(PostRow).where(PostRow.id == 3))
    assert ids(store, "salamander") == [] and ids(store, "tails") == []
    assert ids(store, "limbs") == []


def test_papers_the_store_indexes_in_a_batch_are_indexed_as_the_trigger_does(tmp_path):
    """On SQLite the store indexes a batch of new papers itself while 0002's insert trigger
    stands aside (migration 0009). The index must hold exactly what the trigger writes, or
    the update and delete triggers, which remove what the trigger would have written, leave
    stray terms behind: compared term by term, position by position, after an insert, a
    new version and a delete."""
    from tracker.models import Paper
    from tracker.store import db
    from tracker.store.items import upsert_papers

    def paper(n: int, version: int) -> Paper:
        return Paper(id=f"2603.0000{n}", version=version, title=f"Grid cells v{version} {n}",
                     abstract=f"Entorhinal spike¹ coding, take {version}.",
                     authors=("Zoë Ñúñez", f"Bob Ng{n}"), categories=("q-bio.NC",),
                     published=day(3, 1), updated=day(3, version))

    def index(engine) -> list[tuple]:
        with engine.connect() as conn:
            conn.exec_driver_sql("CREATE VIRTUAL TABLE IF NOT EXISTS temp.terms USING "
                                 "fts5vocab(main, papers_fts, instance)")
            return conn.exec_driver_sql("SELECT * FROM temp.terms ORDER BY 1, 2, 3, 4").all()

    batch, by_row = (db.make_engine(f"sqlite:///{tmp_path / name}.db")
                     for name in ("batch", "row"))
    for engine in (batch, by_row):
        db.upgrade(engine)
    with transaction(db.session_factory(batch)) as s:
        assert upsert_papers(s, [paper(1, 1), paper(2, 1)], day(3, 1)).new == [
            "2603.00001", "2603.00002"]
        assert s.connection().exec_driver_sql(  # the trigger was back on at once
            "SELECT count(*) FROM papers_fts_deferred").scalar() == 0
    with transaction(db.session_factory(by_row)) as s:  # as any other writer: the trigger
        for p in (paper(1, 1), paper(2, 1)):
            s.add(PaperRow(id=p.id, version=1, title=p.title, abstract=p.abstract,
                           authors=list(p.authors), categories=list(p.categories),
                           published=p.published, updated=p.updated,
                           first_seen_at=day(3, 1), version_seen_at=day(3, 1)))
            s.flush()
    assert {row[0] for row in index(by_row)} >= {"grid", "spike", "ñúñez", "ng2"}
    assert index(batch) == index(by_row)
    for engine in (batch, by_row):
        with transaction(db.session_factory(engine)) as s:
            assert upsert_papers(s, [paper(1, 2)], day(3, 2)).updated == ["2603.00001"]
            s.execute(delete(PaperRow).where(PaperRow.id == "2603.00002"))
    assert index(batch) == index(by_row)
    terms = {row[0] for row in index(batch)}
    assert "v2" in terms and not terms & {"v1", "ng2"}  # nothing left behind


def test_a_large_store_ranks_its_two_halves_at_once_and_finds_the_same(tmp_path, monkeypatch):
    """On SQLite, a large store ranks a text query's matches in the papers' two rowid halves
    at once (store.search._Halves). Every query must give the page one query gives, in the
    same order: ties in bm25 across the halves (identical papers), posts ranked among the
    papers, filters, authors, pages past the first, and nothing found."""
    import os
    import random

    from tracker.store import db
    from tracker.store import search as store_search
    from tracker.store.search import Filters as StoreFilters

    if (os.cpu_count() or 1) < 2:
        pytest.skip("the halves run only with two CPUs")
    engine = db.make_engine(f"sqlite:///{tmp_path / 'halves.db'}")
    db.upgrade(engine)
    rng = random.Random(5)
    words = "spiking cortex dendritic coding grid cells memory replay network model".split()
    with transaction(db.session_factory(engine)) as s:
        for n in range(240):
            title, abstract = (" ".join(rng.choices(words, k=k)) for k in (4, 12))
            if n % 40 == 0:  # six identical papers, in both halves: tied in bm25
                title, abstract = "grid cells replay", "replay of grid cells in cortex"
            s.add(PaperRow(id=f"2604.{n:05d}", version=1, title=title, abstract=abstract,
                           authors=[rng.choice(["Ada Ng", "Bob Diaz", "Carla Ito"])],
                           categories=[rng.choice(["q-bio.NC", "cs.LG"])],
                           published=day(1, 1 + n % 28),
                           first_seen_at=day(3, 1), version_seen_at=day(3, 1),
                           score=None if n % 7 == 0 else rng.random()))
        for n in range(6):
            s.add(PostRow(feed="f", guid=f"p{n}", title=" ".join(rng.choices(words, k=3)),
                          summary_text=" ".join(rng.choices(words, k=8)), content_html="",
                          first_seen_at=day(3, 1)))
    cases = [("coding", {}), ("grid cells replay", {}), ('"grid cells"', {}), ("spik*", {}),
             ("memory OR replay NOT cortex", {}), ("dendritic", {"kind": "paper"}),
             ("model", {"min_score": 0.5, "since": day(1, 10), "categories": ("q-bio.NC",)}),
             ("network", {"author": "ada"}), ("axolotl", {})]

    def pages() -> list:
        with db.session_factory(engine)() as s:
            return [[i["id"] for i in store_search.search(s, text, StoreFilters(**filters),
                                                          limit=limit, offset=offset)]
                    for text, filters in cases for limit, offset in ((10, 0), (7, 23), (50, 190))]

    monkeypatch.setattr(store_search, "HALVES_MIN_PAPERS", 10**9)
    one_query = pages()
    monkeypatch.setattr(store_search, "HALVES_MIN_PAPERS", 100)
    with db.session_factory(engine)() as s:
        assert store_search._Halves.of(s, 50) is not None
    assert sum(map(len, one_query)) > 100 and [] in one_query
    assert pages() == one_query


def test_filters_on_text_matches_follow_insert_update_delete(store):
    """A text query with date, score and category filters (on SQLite tested on 0003's
    papers_facets, a copy kept by triggers) sees every write to those columns."""
    f = {"kind": "paper", "since": day(1, 1), "min_score": 0.5, "categories": ("cs.NE",)}
    assert ids(store, "coding", **f) == ["2601.00001", "2601.00002"]
    with transaction(store.sessions) as s:
        s.add(PaperRow(id="2602.09998", version=1, title="Predictive coding in flies",
                       abstract="x", authors=["Zed Q"], categories=["cs.LG", "cs.NE"],
                       published=day(2, 20), first_seen_at=day(2, 20),
                       version_seen_at=day(2, 20), score=0.6))
    assert set(ids(store, "coding", **f)) == {"2601.00001", "2601.00002", "2602.09998"}
    by_date = ["2602.09998", "2601.00002", "2601.00001", "2601.00003"]
    assert ids(store, "coding", kind="paper", sort="date") == by_date
    with transaction(store.sessions) as s:
        s.execute(update(PaperRow).where(PaperRow.id == "2601.00001").values(score=0.2))
        s.execute(update(PaperRow).where(PaperRow.id == "2601.00002")
                  .values(categories=["cs.RO"]))
        s.execute(update(PaperRow).where(PaperRow.id == "2602.09998")
                  .values(published=day(12, 1, 2025)))
    assert ids(store, "coding", **f) == []
    assert ids(store, "coding", kind="paper", sort="date") == [*by_date[1:], "2602.09998"]
    assert ids(store, "coding", kind="paper", sort="score") == [
        "2602.09998", "2601.00002", "2601.00001", "2601.00003"]
    assert ids(store, "coding", **{**f, "since": day(12, 1, 2025)}) == ["2602.09998"]
    assert ids(store, "coding", **{**f, "categories": ("cs.RO",)}) == ["2601.00002"]
    assert ids(store, "coding", **{**f, "min_score": 0.1}) == ["2601.00001"]
    with transaction(store.sessions) as s:
        s.execute(delete(PaperRow).where(PaperRow.id == "2602.09998"))
    assert ids(store, "coding", **{**f, "since": day(12, 1, 2025)}) == []


HOSTILE = [
    "'; DROP TABLE papers; --", '" OR 1=1 --', "papers\" MATCH '*'", "NEAR(coding spike)",
    "title:coding", "{title} : coding", "coding^2", "-coding", "coding + spike",
    "'", "\\", "%", "_%", "∂/∂t coding", "coding\x00spike", "😀 coding", "$$ coding $$",
    "coding' || pg_sleep(5) || '", "coding & spike | !cortex", "coding <-> spike",
    "coding'; --",
]
MALFORMED = ['"unclosed', "(coding", "coding)", "coding AND", "OR coding", "NOT coding",
             "coding OR NOT spike", "()", '""', "x*", "';", "(" * 40 + "a" + ")" * 40,
             "coding " * 400, "b " * 70, "a:*", "the AND of", "NOT (the)"]


def test_hostile_queries_are_safe(store):
    """Quotes, SQL, FTS5 and tsquery syntax: each is either read as plain words or refused
    with a clear InputError; nothing else escapes and the store is untouched."""
    outcomes = {}
    for text in HOSTILE:
        try:
            outcomes[text] = set(ids(store, text))
        except InputError as exc:
            outcomes[text] = str(exc)
    for text, outcome in outcomes.items():
        assert isinstance(outcome, set) and outcome <= ALL_IDS or (
            outcome.startswith("invalid search query")), (text, outcome)
    assert outcomes["coding'; --"] == {"2601.00001", "2601.00002", "2601.00003", "post:1"}
    assert outcomes["coding' || pg_sleep(5) || '"] == set()  # needs words pg, sleep, 5
    assert _count(store, PaperRow) == len(PAPERS) and _count(store, PostRow) == len(POSTS)


def test_malformed_queries_raise_input_error(store):
    for text in MALFORMED:
        with pytest.raises(InputError, match="invalid search query"):
            ids(store, text)
    assert _count(store, PaperRow) == len(PAPERS)


def test_hostile_text_reads_as_words(store):
    assert ids(store, "'; ricci --") == ["math/0211159"]
    assert ids(store, "coding & spike") == ["2601.00002"]  # tsquery signs are not operators
    assert ids(store, "coding | !cortex") == ["2601.00001"]  # "coding cortex"
    assert ids(store, '"1"="1" OR ricci') == ["math/0211159"]


def test_migration_indexes_existing_rows_and_downgrades(db_url):
    """0002, 0003 and 0008 on a store that already holds papers index them (author names
    decoded from their JSON \\u escapes; filter columns copied); downgrading removes the
    index objects; upgrading again works."""
    from alembic import command
    from alembic.config import Config as AlembicConfig
    from sqlalchemy import insert, inspect

    from tracker.store import db
    from tracker.store.search import Filters as StoreFilters
    from tracker.store.search import search as store_search

    engine = db.make_engine(db_url)
    db.upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(insert(PaperRow.__table__), [{
            "id": "2501.00001", "version": 1, "title": "Grid cells",
            "abstract": "Entorhinal spike¹.",
            "authors": ["Zoë Ñúñez"], "categories": ["q-bio.NC"], "published": day(1, 2),
            "first_seen_at": day(1, 2), "version_seen_at": day(1, 2)}])
    db.upgrade(engine)

    def found(text, **filters):
        with db.session_factory(engine)() as session:
            return [i["id"] for i in store_search(session, text, StoreFilters(**filters))]

    assert found("entorhinal") == ["2501.00001"] and found("ñúñez") == ["2501.00001"]
    assert found("spike") == ["2501.00001"]  # 0008 rebuilt the SQLite index
    assert found(None, author="zoë") == ["2501.00001"]
    assert found("entorhinal", categories=("q-bio.NC",), since=day(1, 1)) == ["2501.00001"]
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(db.migrations_dir()))
    cfg.attributes["engine"] = engine
    command.downgrade(cfg, "0007")  # the SQLite index rebuilt as it was
    assert found("entorhinal") == ["2501.00001"]
    command.downgrade(cfg, "0001")
    names = set(inspect(engine).get_table_names())
    columns = {c["name"] for c in inspect(engine).get_columns("papers")}
    assert not {n for n in names if "fts" in n or "facets" in n}
    assert "search_vector" not in columns
    db.upgrade(engine)
    assert found("grid cells") == ["2501.00001"]
    db.check_drift(engine)
    engine.dispose()


def test_sqlite_bm25_weights_are_the_rank_migration_0002_configures(sqlite_url):
    """The query calls bm25() with weights kept in search.py; they must stay the ones
    0002 stores as each FTS table's `rank`, or the two would rank differently."""
    import re

    from tracker.store import db
    from tracker.store.search import PAPERS as PAPER_SIDE
    from tracker.store.search import POSTS as POST_SIDE

    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    with engine.connect() as conn:
        for side in (PAPER_SIDE, POST_SIDE):
            rank = conn.exec_driver_sql(
                f"SELECT v FROM {side.fts}_config WHERE k = 'rank'").scalar()
            args = re.fullmatch(r"bm25\((.*)\)", rank).group(1)
            assert tuple(float(a) for a in args.split(",")) == side.weights
    engine.dispose()


def test_the_newest_sqlite_at_hand_is_used(sqlite_url):
    """With the fast-sqlite extra installed, engines run on its newer SQLite."""
    import sqlite3

    from tracker.store import db

    fast = pytest.importorskip("pysqlite3.dbapi2")
    engine = db.make_engine(sqlite_url)
    with engine.connect() as conn:
        version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
    engine.dispose()
    assert tuple(map(int, version.split("."))) == max(fast.sqlite_version_info,
                                                      sqlite3.sqlite_version_info)


def test_pythons_own_sqlite_serves_the_same_search(sqlite_url, monkeypatch):
    """Without the fast-sqlite extra (Alpine, macOS) the standard library's SQLite runs
    the same schema and gives the same results."""
    import sqlite3

    from tracker.config import from_dict
    from tracker.pipeline import App

    monkeypatch.setitem(sys.modules, "pysqlite3", None)  # as if not installed
    app = App(from_dict({"database": {"url": sqlite_url}, "feeds": []}))
    try:
        with app.sessions() as session:
            version = session.connection().exec_driver_sql("SELECT sqlite_version()").scalar()
        assert version == sqlite3.sqlite_version
        seed(app)
        for check in (test_words_phrases_prefixes_and_stemming,
                      test_boolean_operators_and_parentheses,
                      test_ranking_puts_title_and_repeated_matches_first, test_filters,
                      test_index_follows_insert_update_delete):
            check(app)
    finally:
        app.close()


@pytest.mark.parametrize("sort,min_score,index", [
    ("date", 0.93, "ix_papers_published_score"), ("score", 0.93, "ix_papers_score_published"),
    ("date", None, "ix_papers_published_score"), ("score", None, "ix_papers_score_published")])
def test_sqlite_lists_by_date_in_the_index_that_holds_the_score(sqlite_url, sort, min_score,
                                                                 index):
    """Newest first with --min-score: the walk down (published, score) stops after a page;
    the score index would make SQLite sort every paper above the threshold (0004). By score:
    only rows tied on (score, published) are sorted, not every paper (0005)."""
    from sqlalchemy import event

    from tracker.store import db
    from tracker.store import search as store_search

    engine = db.make_engine(sqlite_url)
    db.upgrade(engine)
    statements = []
    event.listen(engine, "before_cursor_execute",
                 lambda conn, cursor, sql, params, ctx, many: statements.append((sql, params)))
    with engine.begin() as conn:  # 5,000 papers, 7% of them at 0.93 or more; statistics
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) "
            "INSERT INTO papers (id, version, title, abstract, authors, categories, published,"
            " first_seen_at, version_seen_at, score) SELECT printf('2601.%05d', i), 1, 't', "
            "'a', '[]', '[]', datetime('2026-01-01', printf('+%d minutes', i)), '2026-01-01', "
            "'2026-01-01', (i % 100) / 100.0 FROM n")
        conn.exec_driver_sql("ANALYZE")  # with them SQLite favours the score index
    with engine.connect() as conn:
        store_search.search(conn, "", store_search.Filters(min_score=min_score), sort=sort)
        sql, params = next((sql, params) for sql, params in statements if "LIMIT" in sql)
        plan = [row[3] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)]
    engine.dispose()
    papers = next(step for step in plan if "papers" in step and "posts" not in step)
    assert index in papers, plan
    assert "TEMP B-TREE FOR ORDER BY" not in plan[plan.index(papers) + 1], plan
