"""Relevance benchmark: 5-fold stratified CV over ../shared/data (neuroai_dev + stream_dev),
tracker vs baselines, with and without categories; cold start; a new install's first few
labels (why `[relevance] min_relevant` defaults to 50); scoring speed.

    /work/venv/bin/python bench/relevance.py [--shared ../shared/data] [--speed-n 100000]
                                             [--seed 0]   (StratifiedKFold random_state)

Prints figures; asserts nothing. Positive = label 2. Nothing is saved.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from tracker.config import RelevanceConfig
from tracker.scoring.labels import Doc, read_labels
from tracker.scoring.metrics import evaluate
from tracker.scoring.model import train
from tracker.scoring.scorer import Scorer

DEFAULT_KEYWORDS = RelevanceConfig().keywords


def baseline_categories(train_docs, train_labels, docs):
    return [1.0 if {"q-bio.NC", "cs.NE"} & set(d.categories) else 0.0 for d in docs]


def baseline_keyword_count(train_docs, train_labels, docs):
    from tracker.scoring.keywords import KeywordMatcher, normalize

    matcher = KeywordMatcher({k: 1.0 for k, w in DEFAULT_KEYWORDS.items() if w > 0})
    return [float(len(matcher.matches(normalize(d.text)))) for d in docs]


def baseline_sanity(train_docs, train_labels, docs):
    """arxiv-sanity-lite: TF-IDF 1-2 grams, sublinear tf, max_df 0.5, LinearSVC C=0.1."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    def text(d):
        return d.text + " " + " ".join(d.categories)

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, max_df=0.5,
                          strip_accents="unicode", lowercase=True, dtype=np.float32)
    x = vec.fit_transform([text(d) for d in train_docs])
    svm = LinearSVC(C=0.1, class_weight="balanced", max_iter=10000)
    svm.fit(x, [1 if y == 2 else 0 for y in train_labels])
    return svm.decision_function(vec.transform([text(d) for d in docs]))


def tracker(keywords, **options):
    """As shipped: trained with the keywords as offset, scored with them on top."""
    def run(train_docs, train_labels, docs):
        model = train(train_docs, train_labels, keywords=keywords, **options)
        return Scorer(model, keywords).log_odds(docs)
    return run


def cross_validate(method, docs, labels, folds):
    """Mean of the per-fold figures, plus AP and P@20 of the pooled out-of-fold scores
    (each fold holds only ~24 positives, which caps a per-fold P@20 that ranks them)."""
    rows, related, pooled, misses = [], [], np.zeros(len(docs)), []
    for train_idx, test_idx in folds:
        scores = np.asarray(method([docs[i] for i in train_idx],
                                   [labels[i] for i in train_idx], [docs[i] for i in test_idx]))
        pooled[test_idx] = scores
        test_labels = np.array([labels[i] for i in test_idx])
        rows.append(evaluate(scores, test_labels, threshold=0.0))
        # the ranking of the fold's related papers (label 1 or 2) alone: what the figures
        # would be if every unrelated paper were ranked last, i.e. core against adjacent
        near = test_labels >= 1
        related.append(evaluate(scores[near], test_labels[near], threshold=0.0))
        # what the top 20 holds besides core papers: adjacent (1) or unrelated (0) ones
        top = list(test_labels[np.argsort(-scores, kind="stable")[:20]])
        misses.append(f"{top.count(1)}/{top.count(0)}")
    out = {k: float(np.mean([r[k] for r in rows]))
           for k in ("average_precision", "precision_at_20", "roc_auc")}
    whole = evaluate(pooled, labels, threshold=0.0)
    out["folds"] = " ".join(f"{r['average_precision']:.3f}/{r['precision_at_20']:.2f}"
                            for r in rows)
    out["misses"] = " ".join(misses)
    out["related"] = (f"AP {np.mean([r['average_precision'] for r in related]):.3f}  "
                      f"P@20 {np.mean([r['precision_at_20'] for r in related]):.3f}")
    return {**out, "pooled_ap": whole["average_precision"],
            "pooled_p20": whole["precision_at_20"], "pooled_p50": whole["precision_at_50"]}


def line(name, m):
    print(f"  {name:40s} AP {m['average_precision']:.3f}  P@20 {m['precision_at_20']:.3f}"
          f"  ROC AUC {m['roc_auc']:.3f} | pooled AP {m['pooled_ap']:.3f}"
          f"  P@20 {m['pooled_p20']:.3f}  P@50 {m['pooled_p50']:.3f}", flush=True)
    if name.startswith("tracker"):
        print(f"  {'':40s} per fold AP/P@20: {m['folds']}", flush=True)
        print(f"  {'':40s} per fold top 20, label 1/label 0: {m['misses']}", flush=True)
        print(f"  {'':40s} ranking label 1-2 papers only (mean over folds): {m['related']}",
              flush=True)


def few_labels(dev, stream, sizes=(5, 20, 50, 90), draws=3) -> None:
    """A new install that stored the stream week and has k papers labelled relevant (k core
    papers of neuroai_dev), trained as `tracker train` would with no label files: the stored
    unlabelled papers that cold start scored under the 0.5 digest threshold are the
    negatives (background), or the user also labelled k irrelevant ones (hard: label 0/1
    papers of neuroai_dev) and nothing else. Measured on the stream week against cold start:
    AP, and how many items reach the threshold (how many of them core)."""
    docs, labels = [r.doc for r in stream], np.array([r.label for r in stream])
    core = [r.doc for r in dev if r.label == 2]
    other = [r.doc for r in dev if r.label < 2]

    def report(name, log_odds):
        m = evaluate(log_odds, labels, threshold=0.0)
        top = log_odds >= 0.0
        return (m["average_precision"], int(top.sum()), int((top & (labels == 2)).sum()), name)

    def show(rows):
        ap, n, hit = (np.mean([r[i] for r in rows]) for i in range(3))
        print(f"  {rows[0][3]:40s} AP {ap:.3f}  items >= 0.5: {n:6.1f} ({hit:.1f} core)"
              f"   [{' '.join(f'{r[0]:.3f}' for r in rows)}]", flush=True)

    print(f"first labels of a new install ({len(docs)} stream papers, {(labels == 2).sum()} "
          f"core; mean of {draws} draws, AP per draw in brackets)")
    cold = Scorer(None, DEFAULT_KEYWORDS).log_odds(docs)
    show([report("cold start (default keywords)", cold)])
    background = [d for d, log_odds in zip(docs, cold, strict=True) if log_odds < 0.0]
    rng = np.random.default_rng(0)
    for negatives in ("background", "hard"):
        for k in sizes:
            if negatives == "hard" and k > len(other):
                continue
            rows = []
            for _ in range(draws):
                positives = [core[i] for i in rng.choice(len(core), k, replace=False)]
                against = background if negatives == "background" else \
                    [other[i] for i in rng.choice(len(other), k, replace=False)]
                model = train(positives + against, [2] * k + [0] * len(against),
                              keywords=DEFAULT_KEYWORDS)
                rows.append(report(f"{k} relevant + {negatives} negatives",
                                   Scorer(model, DEFAULT_KEYWORDS).log_odds(docs)))
            show(rows)


def speed(n: int, docs, labels):
    model = train(docs, labels, keywords=DEFAULT_KEYWORDS)
    scorer = Scorer(model, DEFAULT_KEYWORDS)
    pool = [docs[i % len(docs)] for i in range(n)]
    for name, s in (("trained", scorer), ("cold start", Scorer(None, DEFAULT_KEYWORDS))):
        start = time.process_time()
        for i in range(0, n, 2000):  # batches, as rescore does
            s.score(pool[i:i + 2000])
        print(f"  scoring {n} items ({name}, with why): {time.process_time() - start:.1f} s CPU")


def main() -> None:
    from sklearn.model_selection import StratifiedKFold

    parser = argparse.ArgumentParser()
    parser.add_argument("--shared", default=str(Path(__file__).resolve().parents[2]
                                                / "shared" / "data"))
    parser.add_argument("--speed-n", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0, help="random_state of the folds")
    args = parser.parse_args()
    dev = read_labels(Path(args.shared) / "neuroai_dev.jsonl")
    stream = read_labels(Path(args.shared) / "stream_dev.jsonl")
    records = dev + stream
    docs = [r.doc for r in records]
    labels = [r.label for r in records]
    plain = [Doc(d.text, title=d.title) for d in docs]
    folds = list(StratifiedKFold(5, shuffle=True, random_state=args.seed).split(docs, labels))
    print(f"{len(docs)} records, {sum(y == 2 for y in labels)} positive (label 2); "
          f"5-fold stratified CV (by label, random_state {args.seed}): "
          "mean over folds | pooled out-of-fold scores")
    for title, data in (("with categories", docs), ("text only (categories removed)", plain)):
        print(title)
        line("(a) q-bio.NC or cs.NE", cross_validate(baseline_categories, data, labels, folds))
        line("(b) keyword count", cross_validate(baseline_keyword_count, data, labels, folds))
        line("(c) arxiv-sanity-lite SVM", cross_validate(baseline_sanity, data, labels, folds))
        line("tracker, trained, default keywords",
             cross_validate(tracker(DEFAULT_KEYWORDS), data, labels, folds))
        line("tracker, trained, no keywords", cross_validate(tracker({}), data, labels, folds))
        cold = lambda tr, tl, d: Scorer(None, DEFAULT_KEYWORDS).log_odds(d)  # noqa: E731
        line("tracker, cold start (no training)", cross_validate(cold, data, labels, folds))
    few_labels(dev, stream)
    speed(args.speed_n, docs, labels)


if __name__ == "__main__":
    main()
