"""Relevance use cases on a real store (SQLite and PostgreSQL): score_new, rescore, labels,
train from files + labels + seeds, explain, eval, tune; the CLI commands."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from tests.conftest import TEST_DATA
from tracker.cli import cli
from tracker.config import RelevanceConfig
from tracker.errors import InputError, NotFoundError, TrackerError
from tracker.pipeline import App, relevance
from tracker.scoring import persist
from tracker.store.db import transaction
from tracker.store.schema import LabelRow, PaperRow, PostRow, ScoreRow
from tracker.store.scores import items_by_ids

SMALL = TEST_DATA / "labels" / "small.jsonl"
NOW = datetime(2026, 11, 23, 8, tzinfo=UTC)
NEURO = ("Spiking neural networks model visual cortex",
         "We compare spiking neural network representations with neural recordings.")
OTHER = ("Vision transformers for detection", "Sparse attention improves object detection.")


def add_papers(app, rows, now=NOW):
    """rows: (id, title, abstract, categories, first_seen_at offset in days)."""
    with transaction(app.sessions) as session:
        for pid, title, abstract, cats, days in rows:
            seen = now - timedelta(days=days)
            session.add(PaperRow(id=pid, version=1, title=title, abstract=abstract,
                                 authors=["A. Author"], categories=cats,
                                 primary_category=cats[0] if cats else None, published=seen,
                                 first_seen_at=seen, version_seen_at=seen))


def add_post(app, title, summary, days=1):
    with transaction(app.sessions) as session:
        row = PostRow(feed="blog", guid=f"g-{title}", title=title, summary_text=summary,
                      first_seen_at=NOW - timedelta(days=days))
        session.add(row)
        session.flush()
        return row.id


@pytest.fixture
def cfg(make_config, tmp_path):
    def build(**relevance_overrides):
        # the label sets here are small by design; the minimum has its own test
        relevance_cfg = {"model_path": str(tmp_path / "model.joblib"), "min_relevant": 1,
                         **relevance_overrides}
        return make_config({"relevance": relevance_cfg})
    return build


@pytest.fixture
def filled(cfg):
    app = App(cfg())
    add_papers(app, [("2401.00001", *NEURO, ["q-bio.NC"], 1),
                     ("2401.00002", *OTHER, ["cs.CV"], 2),
                     ("2401.00003", "Large language model agents", "Agents write code.",
                      ["cs.CL"], 10)])
    post_id = add_post(app, "Dendritic computation explained", "Dendrites compute; a blog post.")
    yield app, post_id
    app.close()


def scores_of(app):
    with app.sessions() as session:
        papers = dict(session.execute(select(PaperRow.id, PaperRow.score)).all())
        posts = dict(session.execute(select(PostRow.id, PostRow.score)).all())
        models = set(session.scalars(select(PaperRow.score_model)))
        history = session.scalar(select(func.count()).select_from(ScoreRow))
    return papers, posts, models, history




def invoke(config_file, *args):
    return CliRunner().invoke(cli, ["--config", str(config_file), *args])


def test_score_new_cold_start_in_callers_transaction(filled):
    app, post_id = filled
    with transaction(app.sessions) as session:
        stored = items_by_ids(session, ["2401.00001", "2401.00002"], [post_id])
        assert relevance.score_new(app, session, stored) == 3
    papers, posts, models, history = scores_of(app)
    assert papers["2401.00001"] > 0.5 > papers["2401.00002"]
    assert papers["2401.00003"] is None and posts[post_id] is not None
    assert models == {"cold-start", None} and history == 3
    with app.sessions() as session:
        row = session.scalars(select(ScoreRow).where(ScoreRow.paper_id == "2401.00001")).one()
    assert row.config_hash == app.config.relevance_hash() and row.model_version == "cold-start"
    assert row.why and all(isinstance(w, str) for w in row.why)


def test_score_new_rolls_back_with_the_caller(filled):
    app, _ = filled
    with pytest.raises(RuntimeError), transaction(app.sessions) as session:
        relevance.score_new(app, session, items_by_ids(session, ["2401.00001"], []))
        raise RuntimeError("ingest failed later in the batch")
    assert scores_of(app)[0]["2401.00001"] is None


def test_rescore_touches_every_item_in_batches(filled, cfg, monkeypatch):
    app, post_id = filled
    monkeypatch.setattr(relevance, "RESCORE_BATCH", 2)  # several batches of each kind
    seen = []
    total, changed = relevance.rescore(app, now=NOW, progress=seen.append)
    assert (total, changed) == (4, 4) and sum(seen) == 4 and len(seen) >= 3
    first = scores_of(app)
    assert None not in first[0].values() and None not in first[1].values()
    # A new keyword changes only the items it matches; every item is still rescored.
    app2 = App(cfg(keywords={**RelevanceConfig().keywords, "object detection": 3.0}))
    total, changed = relevance.rescore(app2, now=NOW)
    second = scores_of(app2)
    assert total == 4 and changed == 1
    assert second[0]["2401.00002"] > first[0]["2401.00002"]
    assert second[3] == first[3] + 1
    app2.close()


def test_train_from_files_labels_and_seeds(filled, cfg, caplog):
    app, post_id = filled
    relevance.label(app, ["2401.00002"], "relevant", now=NOW)  # user label (odd, but theirs)
    relevance.label(app, [f"post:{post_id}"], "irrelevant", now=NOW)
    seeded = App(cfg(seed_papers=["arXiv:2401.00001v2", "9999.99999"]))  # any id form
    with caplog.at_level("WARNING", logger="tracker.pipeline.relevance"):
        report = relevance.train(seeded, [str(SMALL)])
    assert report.sources == {"files": 20, "seeds": 1, "user_labels": 2, "background": 0}
    assert "1 seed paper(s) not stored yet, so not trained on: 9999.99999" in caplog.text
    assert report.n_train == 23 and report.n_positive == 8 + 1 + 1
    info = relevance.model_info(seeded)
    assert info["version"] == report.version and info["n_train"] == 23
    relevance.rescore(seeded, now=NOW)
    _, _, models, _ = scores_of(seeded)
    assert models == {report.version}
    seeded.close()


def test_a_users_label_overrides_a_file_line_whatever_form_its_id_takes(filled, cfg, tmp_path):
    app, _ = filled
    relevance.label(app, ["2401.00002"], "irrelevant", now=NOW)
    labels = tmp_path / "labels.jsonl"
    labels.write_text(SMALL.read_text() + '{"id": "arXiv:2401.00002v1", "title": "t", '
                      '"abstract": "a", "label": 2}\n')
    report = relevance.train(app, [str(labels)])
    # the file's 20 + this one, which the user's label replaces: 21 examples, 8 relevant,
    # each counted once, under the source it was taken from
    assert report.n_train == 21 and report.n_positive == 8
    assert report.sources["files"] == 20 and report.sources["user_labels"] == 1
    assert sum(report.sources.values()) == report.n_train


def test_train_with_only_positives_uses_background_negatives(filled, cfg):
    app, _ = filled
    relevance.label(app, ["2401.00001"], "relevant", now=NOW)
    report = relevance.train(app, [])
    assert report.sources["background"] == 2 and report.n_positive == 1
    with pytest.raises(InputError, match="cannot train"):
        relevance.label(app, ["2401.00001"], "clear")
        relevance.train(app, [])


def test_background_negatives_leave_out_papers_scored_for_the_digest(filled):
    """The papers the tracker now puts in the digest are the likeliest relevant ones of the
    unlabelled: taught as negatives, they would sink."""
    app, post_id = filled
    relevance.rescore(app)  # cold start: only the spiking / visual cortex paper reaches 0.5
    papers, _, _, _ = scores_of(app)
    assert papers["2401.00001"] >= app.config.digest.min_score > papers["2401.00002"]
    relevance.label(app, [f"post:{post_id}"], "relevant", now=NOW)
    report = relevance.train(app, [])
    assert report.sources["background"] == 2
    trained = persist.load(app.config.relevance.model_path).trained_ids
    assert {"2401.00002", "2401.00003"} <= trained and "2401.00001" not in trained


def test_a_few_negatives_beside_many_positives_get_background_negatives(filled, tmp_path):
    """One "irrelevant" label beside a file of relevant papers: without background, stage A
    learnt from 2 negatives and called nearly every paper of a real stream relevant."""
    app, _ = filled
    relevance.label(app, ["2401.00003"], "irrelevant")
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(line for line in SMALL.read_text().splitlines(keepends=True)
                              if '"label": 2' in line))
    report = relevance.train(app, [str(labels)])
    assert report.sources == {"files": 8, "seeds": 0, "user_labels": 1, "background": 2}
    relevance.rescore(app)
    papers, _, _, _ = scores_of(app)
    assert papers["2401.00001"] > papers["2401.00002"] > papers["2401.00003"]


def test_core_and_adjacent_labels_without_a_negative_get_background_negatives(filled, cfg,
                                                                            tmp_path):
    app, _ = filled
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(line for line in SMALL.read_text().splitlines(keepends=True)
                              if '"label": 0' not in line))
    report = relevance.train(app, [str(labels)])
    # the three stored papers: without them stage A would see one class and pass everything
    assert report.sources["background"] == 3
    adjacent = tmp_path / "adjacent.jsonl"
    adjacent.write_text("".join(line for line in SMALL.read_text().splitlines(keepends=True)
                                if '"label": 1' in line))
    with pytest.raises(InputError, match="cannot train on 2 labelled examples with 0 relevant"):
        relevance.train(app, [str(adjacent)])  # the stored papers added are not counted
    relevance.rescore(app)
    papers, _, _, _ = scores_of(app)
    assert papers["2401.00001"] > papers["2401.00002"]


def test_too_few_relevant_examples_are_refused_and_no_model_is_written(filled, cfg, db_url,
                                                                      tmp_path):
    app = App(cfg(min_relevant=10))  # SMALL has 8 relevant; one stored paper is labelled
    relevance.label(app, ["2401.00002"], "relevant")
    with pytest.raises(InputError, match="only 9 relevant examples; training needs at "
                                         "least 10"):
        relevance.train(app, [str(SMALL)])
    assert not Path(app.config.relevance.model_path).exists()
    assert relevance.scorer(app).version == "cold-start"
    assert relevance.train(App(cfg(min_relevant=9)), [str(SMALL)]).n_positive == 9

    config_file = _config_file(tmp_path, db_url, min_relevant=50)
    result = invoke(config_file, "train", "--labels", str(SMALL))
    assert result.exit_code == 2 and "Traceback" not in result.output
    *warnings, error = result.stderr.splitlines()  # the warning: seeds not fetched yet
    assert error.startswith("error: only 9 relevant examples; training needs at least 50")
    assert [w.split(" WARNING ")[1][:22] for w in warnings] == ["2 seed paper(s) not st"]
    assert "stored scores stay as they are" in result.stderr


def test_label_errors(filled):
    app, _ = filled
    with pytest.raises(NotFoundError):
        relevance.label(app, ["2999.00001"], "relevant")
    with pytest.raises(InputError):
        relevance.label(app, ["post:abc"], "relevant")
    assert relevance.label(app, ["2401.00001v3"], "irrelevant") == [("2401.00001", "irrelevant")]
    # replaced, not added
    assert relevance.label(app, ["2401.00001"], "relevant") == [("2401.00001", "relevant")]
    with app.sessions() as session:
        assert session.scalars(select(LabelRow.label)).all() == ["relevant"]
    assert [r for _, r in relevance.label(app, ["2401.00001"], "clear")] == ["cleared"]
    assert [r for _, r in relevance.label(app, ["2401.00001"], "clear")] == ["no label"]


def test_cli_labels_several_items_at_once_all_or_nothing(filled, db_url, tmp_path):
    app, post_id = filled
    config_file = _config_file(tmp_path, db_url)
    result = invoke(config_file, "label", "2401.00001v2", "2999.00001", f"post:{post_id}",
                    "9999.99999", "relevant")
    assert result.exit_code == 1
    assert "no stored item 2999.00001, 9999.99999; nothing labelled" in result.output
    with app.sessions() as session:
        assert session.scalars(select(LabelRow.label)).all() == []
    result = invoke(config_file, "label", "2401.00001v2", f"post:{post_id}", "relevant")
    assert (result.exit_code, result.output) == (0, f"2401.00001: relevant\npost:{post_id}: "
                                                    "relevant\n")
    result = invoke(config_file, "label", "2401.00001", "2401.00002", "2401.00001v1", "clear")
    assert result.output == "2401.00001: cleared\n2401.00002: no label\n"  # each item once
    with app.sessions() as session:
        assert session.execute(select(LabelRow.post_id, LabelRow.label)).all() == \
            [(post_id, "relevant")]


def test_tune_reports_entering_and_leaving_without_writing(filled, cfg):
    app, post_id = filled
    relevance.rescore(app, now=NOW)
    before = scores_of(app)
    changed = App(cfg(keywords={"object detection": 5.0, "spiking neural network": -5.0,
                                "neural recordings": 0.0, "visual cortex": 0.0}))
    weeks = relevance.tune(changed, weeks=2, now=NOW)
    assert [len(w.entering) for w in weeks] == [1, 0]
    assert [w.entering[0][0].key for w in weeks[:1]] == ["2401.00002"]
    assert [w.leaving[0][0].key for w in weeks[:1]] == ["2401.00001"]
    assert scores_of(changed) == before
    assert relevance.pick(_items(("a", 0.9), ("b", 0.8), ("c", 0.7), ("d", None)), 0.75, 1) \
        == {"a": "a"}
    changed.close()


def test_tune_lets_labels_decide_as_the_digest_does(filled, cfg):
    """The same change as above, with the entering paper labelled irrelevant and the leaving
    one relevant: the digest would keep the one and never send the other, whatever the
    scores, so neither moves."""
    app, _ = filled
    relevance.rescore(app, now=NOW)
    relevance.label(app, ["2401.00002"], "irrelevant", now=NOW)
    relevance.label(app, ["2401.00001"], "relevant", now=NOW)
    changed = App(cfg(keywords={"object detection": 5.0, "spiking neural network": -5.0,
                                "neural recordings": 0.0, "visual cortex": 0.0}))
    week = relevance.tune(changed, weeks=1, now=NOW)[0]
    assert (week.entering, week.leaving) == ([], [])
    changed.close()
    labels = {"u": "relevant", "a": "irrelevant"}
    candidates = _items(("a", 0.9), ("b", 0.8), ("u", None))
    assert set(relevance.pick(candidates, 0.5, 3, labels)) == {"b", "u"}
    assert set(relevance.pick(candidates, 0.5, 1, labels)) == {"b"}


def _items(*scored, seen=NOW):
    from tracker.digest.build import Item

    return [Item("paper", key, key, None, score, seen) for key, score in scored]


def test_tune_picks_as_the_digest_does_among_equal_scores_and_shared_posts():
    """Cold-start scores tie often; the digest takes the newest of them, and one entry for
    a post that several feeds carry. tune picked by id and counted each copy, so it
    reported swaps and moves the digest never makes."""
    from dataclasses import replace

    older = _items(("2401.10001", 0.65), seen=NOW - timedelta(days=2))
    newer = _items(("2401.10002", 0.65), seen=NOW - timedelta(days=1))
    assert relevance.pick(older + newer, 0.5, 1) == {"2401.10002": "2401.10002"}
    a, b, c = _items(("post:1", 0.9), ("post:2", 0.8), ("2401.10003", 0.7))
    shared = [replace(item, kind="post", url="https://blog.example/x") for item in (a, b)]
    assert relevance.pick([*shared, c], 0.5, 2) == {"https://blog.example/x": "post:1",
                                                     "2401.10003": "2401.10003"}
    # the other copy now scores best: the same entry, so nothing enters or leaves
    rescored = [replace(shared[0], score=0.05), shared[1], c]
    assert relevance.pick(rescored, 0.5, 2).keys() == {"https://blog.example/x", "2401.10003"}


def test_tune_sees_one_entry_in_a_post_two_feeds_carry(cfg):
    """The best copy changes (its text loses the keyword, the other's has it); the digest
    still shows one entry for the link, so nothing enters or leaves."""
    app = App(cfg())
    with transaction(app.sessions) as session:
        for feed, summary, score in (("a", "Spiking neural network of the brain.", 0.9),
                                     ("b", "A post.", 0.8)):
            session.add(PostRow(feed=feed, guid="g", title="New results",
                                link="https://blog.example/new", summary_text=summary,
                                score=score, first_seen_at=NOW - timedelta(days=1)))
    changed = App(cfg(keywords={"spiking neural network": -5.0, "post": 5.0}))
    [week] = relevance.tune(changed, weeks=1, now=NOW)
    assert (week.entering, week.leaving) == ([], [])
    changed.close()
    app.close()


def test_tune_replays_the_digests_choice_so_archive_never_enters(filled, cfg):
    app, _ = filled
    with transaction(app.sessions) as session:  # a backfilled paper: stored now, from 2019
        session.add(PaperRow(id="1905.00001", version=1, title="Object detection at scale",
                             abstract="Object detection with sparse attention.",
                             authors=["A. Author"], categories=["cs.CV"],
                             published=datetime(2019, 5, 1, tzinfo=UTC),
                             first_seen_at=NOW - timedelta(days=1),
                             version_seen_at=NOW - timedelta(days=1)))
    relevance.rescore(app, now=NOW)
    changed = App(cfg(keywords={"object detection": 5.0, "spiking neural network": -5.0}))
    this_week = relevance.tune(changed, weeks=1, now=NOW)[0]
    assert [row[0].key for row in this_week.entering] == ["2401.00002"]  # 1905.00001: archive
    changed.close()


def _config_file(tmp_path, db_url, **relevance_cfg):
    relevance_cfg.setdefault("model_path", str(tmp_path / "model.joblib"))
    relevance_cfg.setdefault("min_relevant", 1)
    lines = ["feeds = []", "[database]", f"url = {json.dumps(db_url)}", "[relevance]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in relevance_cfg.items()]
    path = tmp_path / "tracker.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_cli_label_train_rescore_explain_eval(filled, db_url, tmp_path):
    app, post_id = filled
    config_file = _config_file(tmp_path, db_url)
    result = invoke(config_file, "eval", "--labels", str(SMALL), "--format", "json")
    assert result.exit_code == 0, result.output
    cold = json.loads(result.output)
    assert {"average_precision", "roc_auc", "precision_at_10", "precision_at_20",
            "precision_at_50", "precision", "recall", "f1", "n", "n_positive"} <= set(cold)
    assert cold["n"] == 20 and cold["n_positive"] == 8 and cold["model_version"] == "cold-start"
    assert cold["n_seen_in_training"] == 0 and "trained on" not in result.stderr
    result = invoke(config_file, "label", "arXiv:2401.00003v2", "irrelevant")
    assert result.output == "2401.00003: irrelevant\n"  # the item as it is stored
    assert result.exit_code == 0 and "irrelevant" in result.output
    result = invoke(config_file, "train", "--labels", str(SMALL))
    assert result.exit_code == 0, result.output
    assert "21 examples" in result.output and (tmp_path / "model.joblib").is_file()
    result = invoke(config_file, "eval", "--labels", str(SMALL), "--format", "json")
    assert json.loads(result.stdout)["n_seen_in_training"] == 20  # the file it learnt from
    assert f"20 of the 20 records in {SMALL} are examples the model was trained on" \
        in result.stderr
    held_out = tmp_path / "held_out.jsonl"  # the same texts under other ids: not seen
    held_out.write_text("".join(json.dumps({**json.loads(line), "id": f"held-{i}"}) + "\n"
                                for i, line in enumerate(SMALL.read_text().splitlines())))
    result = invoke(config_file, "eval", "--labels", str(held_out), "--format", "json")
    assert json.loads(result.stdout)["n_seen_in_training"] == 0 and not result.stderr
    relevant = tmp_path / "relevant.jsonl"  # one class only: no AP or ROC AUC to give
    relevant.write_text("".join(line + "\n" for line in held_out.read_text().splitlines()
                                if json.loads(line)["label"] == 2))
    result = invoke(config_file, "eval", "--labels", str(relevant))
    assert result.exit_code == 0 and "n_positive         8\n" in result.output
    assert "roc_auc            n/a (needs records labelled 2 and others)" in result.output
    result = invoke(config_file, "rescore")
    assert result.exit_code == 0 and "rescored 4 items" in result.output
    result = invoke(config_file, "explain", "2401.00001", "--format", "json")
    why = json.loads(result.output)
    assert why["id"] == "2401.00001" and why["model_version"].startswith("tfidf-")
    assert scores_of(app)[0]["2401.00001"] == pytest.approx(why["score"], abs=1e-6)
    result = invoke(config_file, "explain", "2401.00001", "--top", "2")
    assert "up:" in result.output and "down:" in result.output and "keywords:" in result.output
    up_line = next(line for line in result.output.splitlines() if "up:" in line)
    assert up_line.count(",") == 1  # two terms
    result = invoke(config_file, "tune", "--weeks", "2")
    assert result.exit_code == 0 and "0 enter, 0 leave" in result.output
    weeks = json.loads(invoke(config_file, "tune", "--weeks", "2", "--format", "json").stdout)
    assert len(weeks) == 2 and "T" in weeks[0]["start"]  # ISO 8601, as all JSON output
    assert datetime.fromisoformat(weeks[0]["start"]).tzinfo is not None


def test_keyword_changes_after_training_are_flagged_by_explain_and_a_warning(
        filled, db_url, tmp_path):
    app, _ = filled
    config_file = _config_file(tmp_path, db_url)
    assert invoke(config_file, "train", "--labels", str(SMALL)).exit_code == 0
    assert invoke(config_file, "rescore").exit_code == 0
    result = invoke(config_file, "explain", "2401.00001")
    assert "stored score" not in result.output and "trained with other" not in result.output

    config_file.write_text(config_file.read_text()
                           + '[relevance.keywords]\n"spiking neural network" = 5.0\n')
    result = invoke(config_file, "explain", "2401.00001")
    stored = scores_of(app)[0]["2401.00001"]
    assert f"stored score {stored:.3f} (tfidf-" in result.output
    assert "`tracker rescore` updates it" in result.output
    assert "trained with other [relevance.keywords]" in result.stderr
    why = json.loads(invoke(config_file, "explain", "2401.00001", "--format", "json").stdout)
    assert why["stored_score"] == pytest.approx(stored) and why["score"] != why["stored_score"]


def test_rescore_without_the_model_file_keeps_a_trained_models_scores(filled, db_url,
                                                                     tmp_path):
    app, _ = filled
    config_file = _config_file(tmp_path, db_url)
    assert invoke(config_file, "train", "--labels", str(SMALL)).exit_code == 0
    assert invoke(config_file, "rescore").exit_code == 0
    before = scores_of(app)
    (tmp_path / "model.joblib").unlink()  # a typo in model_path would look the same

    result = invoke(config_file, "rescore")
    assert result.exit_code == 1 and "would replace them with cold-start scores" in result.output
    assert "--cold-start" in result.output and scores_of(app) == before
    result = invoke(config_file, "explain", "2401.00001")  # says why, not "rescore"
    assert "that model's file is not loaded" in result.output and "model_path" in result.output
    assert "`tracker rescore` updates it" not in result.output
    result = invoke(config_file, "rescore", "--cold-start")
    assert result.exit_code == 0 and scores_of(app)[2] == {"cold-start"}


def test_cli_bad_input_is_one_line(filled, db_url, tmp_path):
    config_file = _config_file(tmp_path, db_url)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "1", "title": "t", "abstract": "a", "label": 2}\n{oops\n')
    result = invoke(config_file, "train", "--labels", str(bad))
    assert result.exit_code == 2 and f"{bad}:2: invalid JSON" in result.output
    result = invoke(config_file, "label", "2999.00001", "relevant")
    assert result.exit_code == 1 and "no stored item 2999.00001" in result.output
    result = invoke(config_file, "label", "2401.00001", "maybe")
    assert result.exit_code == 2


def test_scorer_is_cached_per_app_and_reloaded_after_training(filled):
    app, _ = filled
    assert relevance.scorer(app) is relevance.scorer(app)  # loaded once, not per batch
    assert relevance.scorer(app).version == "cold-start"
    report = relevance.train(app, [str(SMALL)])
    with transaction(app.sessions) as session:
        relevance.score_new(app, session, items_by_ids(session, ["2401.00001"], []))
    with app.sessions() as session:
        assert session.get(PaperRow, "2401.00001").score_model == report.version


@pytest.mark.parametrize("content", [b"not a joblib file", b""])
def test_corrupt_model_file_falls_back_to_cold_start_in_ingest_only(filled, cfg, caplog,
                                                                    content, db_url, tmp_path):
    app, post_id = filled
    path = tmp_path / "model.joblib"
    path.write_bytes(content)
    with caplog.at_level("WARNING", logger="tracker.pipeline.relevance"):
        for batch in (["2401.00001", "2401.00002"], ["2401.00003"]):
            with transaction(app.sessions) as session:
                stored = items_by_ids(session, batch, [post_id])
                assert relevance.score_new(app, session, stored) == len(batch) + 1
    warnings = [r for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and str(path) in warnings[0].getMessage()
    papers, _, models, _ = scores_of(app)
    assert None not in papers.values() and models == {"cold-start"}
    for use in (lambda: relevance.explain(app, "2401.00001"), lambda: relevance.rescore(app)):
        with pytest.raises(TrackerError, match="cannot read model file") as info:
            use()
        assert str(path) in str(info.value) and "tracker train" in info.value.hint
    result = invoke(_config_file(tmp_path, db_url), "eval", "--labels", str(SMALL))
    assert result.exit_code == 1 and result.output.count("\n") == 1
    assert str(path) in result.output and "tracker train" in result.output


def test_a_missing_model_file_behind_trained_scores_is_a_warning_in_ingest(filled, caplog):
    app, post_id = filled
    relevance.train(app, [str(SMALL)])
    relevance.rescore(app)
    Path(app.config.relevance.model_path).unlink()  # say, the worker runs in another directory
    caplog.clear()
    with caplog.at_level("WARNING", logger="tracker.pipeline.relevance"):
        with transaction(app.sessions) as session:
            stored = items_by_ids(session, ["2401.00001"], [post_id])
            assert relevance.score_new(app, session, stored) == 2  # still scored: never lost
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and app.config.relevance.model_path in warnings[0]
    assert "cold start" in warnings[0] and "tracker train" in warnings[0]
    for use in (lambda a: relevance.explain(a, "2401.00001"), lambda a: relevance.tune(a),
                lambda a: relevance.evaluate_file(a, str(SMALL))):  # each says so too
        caplog.clear()
        fresh = App(app.config)
        with caplog.at_level("WARNING", logger="tracker.pipeline.relevance"):
            use(fresh)
        fresh.close()
        assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == warnings


def test_explain_of_an_item_never_scored_says_so(filled, db_url, tmp_path):
    result = invoke(_config_file(tmp_path, db_url), "explain", "2401.00001")
    assert result.exit_code == 0, result.output
    assert "not scored yet" in result.output and "changed since" not in result.output
