"""The scoring component on small labelled sets written for the tests (no database)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from tests.conftest import TEST_DATA
from tracker.errors import InputError, TrackerError
from tracker.scoring import persist
from tracker.scoring.keywords import KeywordMatcher, normalize
from tracker.scoring.labels import Doc, make_doc, read_labels
from tracker.scoring.metrics import evaluate
from tracker.scoring.model import (
    category_term,
    combine,
    make_vectorizer,
    stop_words,
    train,
)
from tracker.scoring.scorer import Scorer
from tracker.scoring.text import TermIndex, batch

SMALL = TEST_DATA / "labels" / "small.jsonl"
SPIKING = make_doc("Spiking networks and cortex",
                   "A spiking neural network reproduces neural recordings from visual cortex.")
LLM = make_doc("Large language model benchmarks", "A large language model answers questions.")


@pytest.fixture(scope="module")
def records():
    return read_labels(SMALL)


@pytest.fixture(scope="module")
def model(records):
    return train([r.doc for r in records], [r.label for r in records], config_hash="abc")


def test_train_and_score_ranks_neuroai_first(model):
    scores = Scorer(model, {}).score([SPIKING, LLM])
    assert all(0.0 <= s.score <= 1.0 for s in scores)
    assert scores[0].score > 0.5 > scores[1].score
    assert scores[0].why and all(isinstance(w, str) and len(w) < 60 for w in scores[0].why)
    assert model.n_train == 20 and model.n_positive == 8 and model.config_hash == "abc"


def test_cold_start_ranks_from_keywords_and_categories():
    from tracker.config import RelevanceConfig

    cold = Scorer(None, RelevanceConfig().keywords)
    nc = make_doc("Cortex", "We study the brain.", ["q-bio.NC"])
    cv = make_doc("Cortex", "We study the brain.", ["cs.CV"])
    spiking, llm, nc_score, cv_score = (s.score for s in cold.score([SPIKING, LLM, nc, cv]))
    assert spiking > 0.5 > llm
    assert nc_score > cv_score
    assert cold.version == "cold-start"


@pytest.mark.parametrize("trained", [False, True])
def test_keyword_weight_is_monotonic_and_local(model, trained):
    base = model if trained else None
    other = make_doc("Graph transformers", "Message passing on molecules.")
    dendritic = make_doc("Dendrites", "We study dendritic computation in a network model.")
    previous = None
    for weight in (-2.0, -1.0, 0.0, 1.0, 2.0, 4.0):
        scorer = Scorer(base, {"dendritic computation": weight})
        hit, miss = (s.score for s in scorer.score([dendritic, other]))
        if previous is not None:
            assert hit > previous[0]  # strictly up for the matching item
            assert miss == previous[1]  # untouched otherwise
        previous = (hit, miss)
    llm_down = Scorer(base, {"large language model": -1.0}).score([LLM])[0].score
    assert llm_down < Scorer(base, {}).score([LLM])[0].score


def test_keyword_matching_rules():
    matcher = KeywordMatcher({"spiking neural network": 1.0, "brain-computer interface": 1.0,
                              "EEG": 1.0, "brain": 0.5})
    text = normalize("Spiking Neural Networks for Brain Computer Interfaces (EEG); brainstorm")
    assert matcher.matches(text) == ["spiking neural network", "brain computer interface",
                                     "eeg", "brain"]
    assert matcher.matches(normalize("brainstorming with neuro-symbolic nets")) == []


@pytest.mark.parametrize("trained", [False, True])
def test_explain_is_consistent_with_score(model, trained):
    scorer = Scorer(model if trained else None, {"visual cortex": 1.5, "large language": -1})
    doc = make_doc("Visual cortex and large language models",
                   "Spiking neural networks compared with neural recordings.", ["q-bio.NC"])
    why = scorer.explain(doc, top=1000)
    total = (why.base + why.categories + sum(v for _, v in why.keywords)
             + sum(v for _, v in why.terms_up) + sum(v for _, v in why.terms_down)
             + why.other_terms)
    assert total == pytest.approx(why.log_odds, abs=1e-4)
    assert why.other_terms == pytest.approx(0.0, abs=1e-4)  # everything was listed
    assert 1 / (1 + math.exp(-why.log_odds)) == pytest.approx(why.score, abs=1e-6)
    assert why.score == pytest.approx(scorer.score([doc])[0].score, abs=1e-6)
    kws = dict(why.keywords)
    assert set(kws) == {"visual cortex", "large language"}
    if not trained:  # cold start: a keyword adds its weight to the log-odds
        assert kws == {"visual cortex": 1.5, "large language": -1.0}
    else:  # trained: its weight enters stage A; both share that stage's scale
        assert kws["visual cortex"] > 0 > kws["large language"]
        assert kws["visual cortex"] / kws["large language"] == pytest.approx(-1.5)
    if trained:
        assert why.terms_up and why.terms_down
        assert all(v > 0 for _, v in why.terms_up) and all(v < 0 for _, v in why.terms_down)


def test_missing_categories_carry_no_signal():
    """The trap of the dev data: every positive lacks categories, every negative has them.
    The text model never sees categories, and the category model learns only from items
    that have them, so an item without categories is scored on its text alone."""
    docs, labels = [], []
    for i in range(12):
        docs.append(make_doc(f"Neural recordings {i}", "Spiking networks model cortex.", []))
        labels.append(2)
        docs.append(make_doc(f"Vision {i}", "Transformers detect objects.", ["cs.CV"]))
        labels.append(0)
    trained = train(docs, labels)
    assert category_term(trained, ()) == 0.0
    text_only = train([Doc(d.text, title=d.title) for d in docs], labels)
    probe = [make_doc("Transformers", "Transformers detect objects in cortex.")]
    assert Scorer(trained, {}).score(probe)[0].score == pytest.approx(
        Scorer(text_only, {}).score(probe)[0].score, abs=1e-6)


def test_tfidf_matches_sklearn_transform(records):
    """The batch tf-idf (numpy, no sklearn when scoring) equals sklearn's transform, also
    for unseen words, repeated terms, stop words between bigram halves and empty texts."""
    texts = [r.doc.text for r in records]
    vectorizer = make_vectorizer(len(texts)).fit([normalize(t) for t in texts])
    index = TermIndex(vectorizer.vocabulary_, vectorizer.idf_, stop_words())
    probe = texts + [SPIKING.text, "", "cortex cortex of the cortex \x01 zzz neural", "!!"]
    ours = index.transform(batch(probe)).to_scipy(len(vectorizer.vocabulary_))
    theirs = vectorizer.transform([normalize(t) for t in probe])
    assert ours.shape == theirs.shape and abs(ours - theirs).max() < 1e-6


def test_an_unwritable_model_path_is_one_clear_error_and_leaves_nothing(model, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "folder").mkdir()
    for path in (tmp_path / "file" / "model.joblib", tmp_path / "folder"):
        with pytest.raises(TrackerError, match=f"cannot write the model file {path}: "):
            persist.save(model, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]
    assert not list((tmp_path / "folder").iterdir())


def test_model_file_round_trip(model, tmp_path):
    path = persist.save(model, tmp_path / "sub" / "model.joblib")
    loaded = persist.load(path)
    for name in ("version", "n_train", "n_positive", "vocab_hash", "config_hash"):
        assert getattr(loaded, name) == getattr(model, name)
    docs = [SPIKING, LLM]
    assert [s.score for s in Scorer(loaded, {}).score(docs)] == \
        [s.score for s in Scorer(model, {}).score(docs)]
    assert persist.load(tmp_path / "absent.joblib") is None
    (tmp_path / "junk.joblib").write_bytes(b"not a model")
    with pytest.raises(TrackerError, match="junk.joblib"):
        persist.load(tmp_path / "junk.joblib")


def test_stages_combine_as_a_soft_minimum():
    """Sharpness 1 is the product of the stages' probabilities; larger values approach
    min(a, b); every sharpness is strictly increasing in both stages."""
    a = np.array([-3.0, 0.0, 2.0, 8.0, 1.0])
    b = np.array([1.0, 1.0, -1.0, 0.5, 1.0])
    p = 1 / (1 + np.exp(-a)) / (1 + np.exp(-b))
    assert combine(a, b) == pytest.approx(np.log(p / (1 - p)))
    assert combine(a, b, 100.0) == pytest.approx(np.minimum(a, b), abs=0.01)
    for s in (1.0, 3.0):
        assert (combine(a + 0.1, b, s) > combine(a, b, s)).all()
        assert (combine(a, b + 0.1, s) > combine(a, b, s)).all()


def test_model_file_without_sharpness_scores_as_the_product(model, tmp_path):
    """Files saved before the sharpness existed load with 1.0 (the product), as scored then."""
    import copy

    old = copy.copy(model)
    del old.__dict__["sharpness"]
    loaded = persist.load(persist.save(old, tmp_path / "old.joblib"))
    assert loaded.sharpness == 1.0
    x = loaded.term_index().transform(batch([SPIKING.model_text]))
    a = x.dot(loaded.coef.astype(float)) + loaded.intercept
    b = x.dot(loaded.coef_b.astype(float)) + loaded.intercept_b
    expected = 1 / (1 + np.exp(-combine(a, b)[0]))
    assert Scorer(loaded, {}).score([SPIKING])[0].score == pytest.approx(expected, abs=1e-9)


def test_eval_metrics_match_hand_computed_case():
    scores = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3]
    labels = [2, 0, 2, 1, 2, 0]
    m = evaluate(scores, labels, threshold=0.5)
    assert m["average_precision"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert m["roc_auc"] == pytest.approx(6 / 9)  # 6 of 9 positive/negative pairs in order
    assert m["precision"] == pytest.approx(2 / 4) and m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["precision_at_10"] == pytest.approx(3 / 6)  # fewer than k items: all of them
    assert m["n"] == 6 and m["n_positive"] == 3
    assert evaluate(np.arange(60)[::-1], [2] * 20 + [0] * 40, 0.5)["precision_at_50"] == 0.4


def test_eval_threshold_metrics_are_undefined_rather_than_zero():
    """No positives: recall and F1 have no value (they read 0.000, as if the model missed
    them all); nothing above the threshold: precision has none."""
    m = evaluate([0.9, 0.2], [0, 1], threshold=0.5)
    assert m["recall"] is None and m["f1"] is None and m["precision"] == 0.0
    m = evaluate([0.4, 0.2], [2, 0], threshold=0.5)
    assert m["precision"] is None and m["recall"] == 0.0 and m["f1"] == 0.0


def test_precision_at_k_does_not_depend_on_the_order_of_tied_scores():
    """Cold start ties often: a tie across the k-th place counts each tied item at the
    chance it has of being among the k (P@20 was 0.85 or 0.75 by the file's line order)."""
    from tracker.scoring.metrics import precision_at

    scores = [1.0, 0.5, 0.5, 0.5, 0.5, 0.1]
    for positive in ([1, 1, 0, 0, 0, 1], [1, 0, 0, 0, 1, 1]):  # the tied positive moves
        assert precision_at(scores, positive, 3) == pytest.approx((1 + 2 * 1 / 4) / 3)
        assert precision_at(scores, positive, 1) == 1.0
        assert precision_at(scores, positive, 5) == pytest.approx(2 / 5)
    assert precision_at([], [], 5) == 0.0


@pytest.mark.parametrize(("content", "message"), [
    ('{"id": "1", "title": "t", "abstract": "a", "label": 2}\n{"id": "2", "title": "t"',
     r"bad\.jsonl:2: invalid JSON"),
    ('{"id": "1", "title": "t", "label": 2}', r"bad\.jsonl:1: missing field\(s\) abstract"),
    ('\n{"id": "1", "title": "t", "abstract": "a", "label": 3}', r"bad\.jsonl:2: unknown label 3"),
    ('{"id": "1", "title": "t", "abstract": "a", "label": "yes"}', r"bad\.jsonl:1: unknown label"),
    ('[1, 2]', r"bad\.jsonl:1: expected a JSON object"),
    ('', r"bad\.jsonl: no labelled records"),
    # one paper, two labels (the id written two ways): which is meant?
    ('{"id": "2306.07400", "title": "t", "abstract": "a", "label": 2}\n'
     '{"id": "arXiv:2306.07400v1", "title": "t", "abstract": "a", "label": 0}',
     r"bad\.jsonl:2: 2306\.07400 is labelled 0 here and 2 on line 1"),
    # records without an id would all count as one example
    ('{"id": " ", "title": "t", "abstract": "a", "label": 2}',
     r"bad\.jsonl:1: field 'id' is empty"),
])
def test_bad_label_files(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        read_labels(path)


def test_an_id_labelled_differently_in_two_files_names_both(tmp_path):
    line = '{{"id": "{}", "title": "t", "abstract": "a", "label": {}}}\n'
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(line.format("2306.07400", 2))
    second.write_text(line.format("2306.07401", 1) + line.format("2306.07400", 0))
    with pytest.raises(InputError, match=r"b\.jsonl:2: 2306\.07400 is labelled 0 here and 2 "
                                         r"on .*a\.jsonl:1"):
        read_labels(first, second)
    second.write_text(line.format("2306.07400", 2))  # the same label twice: one example
    assert len(read_labels(first, second)) == 1


def test_label_file_ids_are_read_as_stored_and_repeats_count_once(tmp_path):
    path = tmp_path / "labels.jsonl"
    line = '{{"id": "{}", "title": "t", "abstract": "a", "label": 2}}'
    path.write_text("\n".join(line.format(i) for i in (
        "https://arxiv.org/abs/2306.07400v2", "2306.07400", "2306.07400V3.pdf",
        "math.AG/0211159v1", "custom-7", "lab_v1", "lab_v2", "sample.pdf")))
    # only arXiv ids lose a version: "lab_v1" and "lab_v2" are two records, not one "lab_"
    assert [r.id for r in read_labels(path)] == ["2306.07400", "math/0211159", "custom-7",
                                                 "lab_v1", "lab_v2", "sample.pdf"]


def test_a_label_file_record_without_text_is_refused_and_a_bom_is_fine(tmp_path):
    path = tmp_path / "labels.jsonl"
    line = '{{"id": "{}", "title": "{}", "abstract": "{}", "label": 2}}\n'
    path.write_text(line.format("a", "Spiking cortex", "") + line.format("b", " ", "  "))
    with pytest.raises(InputError, match=r"labels\.jsonl:2: no title or abstract"):
        read_labels(path)
    path.write_bytes(b"\xef\xbb\xbf" + line.format("a", "Spiking cortex", "").encode())
    assert [r.id for r in read_labels(path)] == ["a"]  # as some editors save UTF-8


def test_a_label_file_record_reads_as_the_stored_paper_does(tmp_path):
    """Label files hold arXiv text as the API gives it (LaTeX accents, wrapped lines); the
    store holds letters. The model must read both alike, and an accent as its letter."""
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps({"id": "2401.00001", "title": 'Schr\\"odinger bridges of\n  '
                                "spiking networks", "abstract": "Erd\\H{o}s-R\\'enyi graphs",
                                "label": 2}))
    (record,) = read_labels(path)
    stored = make_doc("Schrödinger bridges of spiking networks", "Erdős-Rényi graphs")
    assert record.doc == stored
    assert normalize(stored.model_text).split()[:2] == ["schrodinger", "bridges"]
    assert normalize("Erdo\u030bs-Re\u0301nyi x≥y") == " erdos renyi x y "  # decomposed too


def test_label_file_format_matches_shared_data(shared_dir):
    records = read_labels(shared_dir / "data" / "neuroai_dev.jsonl")
    assert len(records) == 320 and {r.label for r in records} == {0, 1, 2}
    first = json.loads((shared_dir / "data" / "neuroai_dev.jsonl").read_text().splitlines()[0])
    assert set(first) >= {"id", "title", "abstract", "categories", "label"}


def test_scoring_a_saved_model_imports_neither_sklearn_nor_scipy(model, tmp_path):
    """Scoring runs in every ingest batch: loading sklearn (~1.5 s) there is a real cost."""
    import subprocess
    import sys

    path = persist.save(model, tmp_path / "model.joblib")
    code = ("import sys; from tracker.scoring import persist; "
            "from tracker.scoring.scorer import Scorer; "
            "from tracker.scoring.labels import make_doc; "
            f"s = Scorer(persist.load({str(path)!r}), {{'brain': 1.0}}); "
            "print(s.score([make_doc('Cortex', 'Spiking neurons.')])[0].score > 0, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "True []"
