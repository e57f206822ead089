"""The relevance model: TF-IDF over title + abstract, two linear stages, a separate
category model, and the config keywords on top.

    a = intercept_a + sum(coef_a[t] * tfidf[t])   stage A: neuro-related (label 1 or 2) or not
    b = intercept_b + sum(coef_b[t] * tfidf[t])   stage B: core (2) or adjacent (1)
    k = sum(weight of each config keyword the item matches)
    text log-odds = softmin(a + k, b) = logit(sigmoid(s (a + k)) * sigmoid(s b)) / s
    log-odds = text log-odds
             + category term (only when the item has categories; 0 otherwise)
    score    = sigmoid(log-odds)

Keywords are evidence that an item is NeuroAI-related: they enter stage A (which is fitted
with them as a fixed offset, so it learns around them instead of counting them twice), and
raise (or, negative, lower) every matching item's score strictly; stage B still separates
core from adjacent work. Added to the final log-odds instead, the default keywords cost
0.04 AP in cross-validation; inside stage A they cost nothing.

Two stages measured better than one classifier (label 2 against the rest): adjacent papers
share the vocabulary of core ones, and stage B can learn what separates them from the
few hundred papers that matter instead of from thousands of generic ML ones.

An item is core when it is neuro-related AND core-like, so the weaker stage decides: with
the sharpness s = 1 the text log-odds would be those of P(neuro) * P(core | neuro); a larger
s moves the combination towards min(a + k, b) (still smooth and increasing in both), which
stops a very neuro-flavoured but adjacent paper (EEG hardware, clinical diagnosis) from
outranking core ones on stage A alone (s = 3: +0.01 AP in cross-validation). Stage A counts
label-1 (adjacent) papers as neuro-related at half weight: they are, but less clearly so.

The category term is learned only from training items that have categories, with the text
log-odds as a fixed offset, and centred on those items, so "no categories" is never a
feature: a blog post or a record without categories is scored on its text alone.
Without a trained model (cold start) the text part is replaced by a fixed bias, category
priors and a few low-weight hint phrases (see keywords.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache

import numpy as np

from tracker.scoring.keywords import (
    COLD_BIAS,
    COLD_CATEGORY_PRIORS,
    COLD_HINT_WEIGHT,
    COLD_HINTS,
    KeywordMatcher,
    normalize,
)
from tracker.scoring.labels import Doc
from tracker.scoring.linear import balanced, fit_logistic
from tracker.scoring.text import Batch, Lexicon, Rows, TermIndex, batch

FORMAT = 3  # 3: vocabulary, idf and stop words stored as plain data (no sklearn to score)
COLD_START_VERSION = "cold-start"
# Inverse L2 strengths (sklearn's C) of the two stages, picked by 5-fold CV on the dev sets.
STAGE_A_C = 16.0
STAGE_B_C = 64.0
ADJACENT_WEIGHT = 0.5  # weight of a label-1 example in stage A (label 2 and 0: 1)
SHARPNESS = 3.0  # of the soft minimum combining the stages (see combine())
CATEGORY_L2 = 2.0
ALWAYS = 30.0  # intercept of a stage with one class only: sigmoid(30) = 1


@lru_cache(maxsize=1)
def stop_words() -> frozenset:
    """sklearn's English stop words plus single characters (dropped before bigrams, as
    sklearn does). Imported only to train: a model stores its own copy."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | frozenset("abcdefghijklmnopqrstuvwxyz0123456789")


@dataclass
class TrainedModel:
    vocabulary: dict[str, int]  # term -> column
    idf: np.ndarray
    stop_words: frozenset
    coef: np.ndarray  # stage A
    intercept: float
    coef_b: np.ndarray  # stage B
    intercept_b: float
    cat_weights: dict[str, float]
    cat_center: float
    version: str
    n_train: int
    n_positive: int
    vocab_hash: str
    config_hash: str
    trained_at: str
    meta: dict = field(default_factory=dict)
    sharpness: float = 1.0  # of combine(); 1.0 for model files saved before it existed
    # ids of the examples it learnt from, so that `tracker eval` can say when a file holds
    # them (its figures then overstate); empty for model files saved before it existed
    trained_ids: frozenset = frozenset()

    def feature_names(self) -> list[str]:
        names = [""] * len(self.vocabulary)
        for term, col in self.vocabulary.items():
            names[col] = term
        return names

    def term_index(self, lexicon: Lexicon | None = None) -> TermIndex:
        return TermIndex(self.vocabulary, self.idf, self.stop_words, lexicon)


def terms(norm: str) -> list[str]:
    """Unigrams and bigrams of a normalize()d text, without stop words and single
    characters: the analyzer the vectorizer is fitted with at training time. Scoring gets the
    same terms from text.TermIndex, batch-wise (tested equal to sklearn's transform)."""
    stop = stop_words()
    tokens = [t for t in norm.split() if t not in stop]
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def make_vectorizer(n_docs: int = 1000):
    """Rare (one document) and very common (over half) terms are dropped, except on tiny
    training sets (a new install with a few labels), where that would leave nothing."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    small = n_docs < 50
    return TfidfVectorizer(analyzer=terms, sublinear_tf=True, min_df=1 if small else 2,
                           max_df=1.0 if small else 0.5,
                           max_features=300_000, dtype=np.float32)


def train(docs: list[Doc], labels: list[int], *, keywords: Mapping[str, float] | None = None,
          config_hash: str = "", use_categories: bool = True) -> TrainedModel:
    """Fit on labelled docs (2 core, 1 adjacent, 0 not; positive = 2). Needs a 2 and a 0
    or 1. `keywords` (the config's) are added to the log-odds when scoring; stage A is fitted
    with them as a fixed offset, so it learns around them rather than count them twice."""
    labels = np.asarray(labels)
    y = (labels == 2).astype(int)
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError("training needs both relevant (label 2) and other examples")
    texts = batch([d.model_text for d in docs])
    norms = [normalize(d.model_text) for d in docs]
    offset = KeywordMatcher(keywords or {}).totals(texts)
    vectorizer = make_vectorizer(len(docs))
    x = vectorizer.fit_transform(norms)
    coef, intercept = _stage(x, (labels >= 1).astype(int), offset, STAGE_A_C,
                             np.where(labels == 1, ADJACENT_WEIGHT, 1.0))
    near = labels >= 1
    coef_b, intercept_b = _stage(x[near], y[near], np.zeros(int(near.sum())), STAGE_B_C)
    cat_weights, cat_center = {}, 0.0
    if use_categories:
        text = combine(x @ coef + intercept + offset, x @ coef_b + intercept_b, SHARPNESS)
        cat_weights, cat_center = _fit_categories(docs, y, text)
    vocab = "\n".join(vectorizer.get_feature_names_out())
    vocab_hash = hashlib.sha256(vocab.encode()).hexdigest()[:12]
    digest = hashlib.sha256(vocab_hash.encode() + coef.tobytes() + coef_b.tobytes()
                            + repr((sorted(cat_weights.items()), SHARPNESS)).encode())
    vocabulary = {term: int(col) for term, col in vectorizer.vocabulary_.items()}
    return TrainedModel(vocabulary, vectorizer.idf_.astype(np.float64), stop_words(),
                        coef, intercept, coef_b, intercept_b, cat_weights,
                        cat_center, version=f"tfidf-{digest.hexdigest()[:10]}",
                        n_train=len(docs), n_positive=int(y.sum()), vocab_hash=vocab_hash,
                        config_hash=config_hash,
                        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        meta={"stage_a_c": STAGE_A_C, "stage_b_c": STAGE_B_C,
                              "adjacent_weight": ADJACENT_WEIGHT},
                        sharpness=SHARPNESS)


def _stage(x, y, offset, c: float, weights=None) -> tuple[np.ndarray, float]:
    """One class-balanced stage; with one class only (e.g. no adjacent examples, as with
    user labels alone) the stage always says yes and the other stage decides."""
    if y.min() == y.max():
        return np.zeros(x.shape[1], dtype=np.float32), ALWAYS if y.max() else -ALWAYS
    weights = np.ones(len(y)) if weights is None else weights
    beta, bias = fit_logistic(x, y, balanced(y, weights), offset, 1.0 / c)
    return beta.astype(np.float32), bias


def combine(a, b, sharpness: float = 1.0):
    """Soft minimum of two log-odds: logit(sigmoid(s a) * sigmoid(s b)) / s, computed in
    log space, finite for any finite a, b: log p = -softplus(-a) - softplus(-b) and
    log(1 - p) = log(sigmoid(-a) + sigmoid(a) sigmoid(-b)). Increasing in a and in b; s = 1
    is the log-odds of the product of the two probabilities, s -> infinity gives min(a, b)."""
    a, b = sharpness * np.asarray(a, dtype=float), sharpness * np.asarray(b, dtype=float)
    log_p = -np.logaddexp(0, -a) - np.logaddexp(0, -b)
    log_q = np.logaddexp(-np.logaddexp(0, a), -np.logaddexp(0, -a) - np.logaddexp(0, b))
    return (log_p - log_q) / sharpness


def _fit_categories(docs, y, text_logit) -> tuple[dict[str, float], float]:
    """Category indicators, fitted with the text log-odds (+ keywords) as offset, on the
    training items that have categories only; centred on them."""
    rows = [i for i, d in enumerate(docs) if d.categories]
    vocab = sorted({c for i in rows for c in docs[i].categories})
    if len(rows) < 10 or not vocab or len(set(y[rows])) < 2:
        return {}, 0.0
    index = {c: j for j, c in enumerate(vocab)}
    m = np.zeros((len(rows), len(vocab)))
    for r, i in enumerate(rows):
        for c in set(docs[i].categories):
            m[r, index[c]] = 1.0
    beta, _ = fit_logistic(m, y[rows], balanced(y[rows], np.ones(len(rows))),
                           text_logit[rows], CATEGORY_L2)
    return {c: float(beta[j]) for c, j in index.items()}, float((m @ beta).mean())


def category_term(model: TrainedModel | None, categories) -> float:
    """The log-odds the categories add; exactly 0 when there are none."""
    cats = set(categories)
    if not cats:
        return 0.0
    if model is None:
        return sum(COLD_CATEGORY_PRIORS.get(c, 0.0) for c in cats)
    if not model.cat_weights:
        return 0.0
    return sum(model.cat_weights.get(c, 0.0) for c in cats) - model.cat_center


def hints(lexicon: Lexicon | None = None) -> KeywordMatcher:
    return KeywordMatcher({hint: COLD_HINT_WEIGHT for hint in COLD_HINTS}, lexicon)


@dataclass
class TextParts:
    """The text side of the log-odds for a batch: `base` per doc; for a trained model also
    the tf-idf matrix and the two stages' log-odds (for explanations)."""

    base: np.ndarray
    x: Rows | None = None
    a: np.ndarray | None = None
    b: np.ndarray | None = None
    hints: tuple[np.ndarray, np.ndarray] | None = None  # cold start: (doc, hint) matches


def text_parts(model: TrainedModel | None, index: TermIndex | KeywordMatcher, texts: Batch,
               keywords: np.ndarray) -> TextParts:
    """`keywords`: each document's keyword total. Cold start: bias + hints (`index` is
    hints()) + keywords; trained: `index` is model.term_index() (built once per scorer)."""
    if model is None:
        doc, hint = index.find(texts)
        totals = np.bincount(doc, weights=index.vector[hint], minlength=texts.n)
        return TextParts(COLD_BIAS + totals + keywords, hints=(doc, hint))
    x = index.transform(texts)
    a = x.dot(model.coef.astype(float)) + model.intercept + keywords
    b = x.dot(model.coef_b.astype(float)) + model.intercept_b
    return TextParts(combine(a, b, model.sharpness), x, a, b)


def term_scales(model: TrainedModel, parts: TextParts):
    """Exact attribution of the text log-odds to terms and keywords. With a0, b0 the
    intercepts: text = combine(a0, b0) + [combine(a, b0) - combine(a0, b0)]
    + [combine(a, b) - combine(a, b0)]; each bracket is shared among the stage's inputs in
    proportion to their linear contributions: term t adds tfidf[t] * (coef_a[t] * scale_a
    + coef_b[t] * scale_b), keyword k adds weight[k] * scale_a. Returns (base, scale_a,
    scale_b) per doc."""
    a0, b0, s = model.intercept, model.intercept_b, model.sharpness
    base = combine(np.full_like(parts.a, a0), np.full_like(parts.b, b0), s)
    return base, _ratio(combine(parts.a, b0, s) - base, parts.a - a0,
                        lambda t: combine(t, b0, s), a0), \
        _ratio(parts.base - combine(parts.a, b0, s), parts.b - b0,
               lambda t: combine(parts.a, t, s), b0)


def _ratio(delta, step, fn, at, eps: float = 1e-6):
    """delta / step, or the slope of fn at `at` where step is ~0 (no net stage effect)."""
    slope = (fn(at + eps) - fn(at - eps)) / (2 * eps)
    small = np.abs(step) < eps
    return np.where(small, slope, delta / np.where(small, 1.0, step))


def model_info(model: TrainedModel | None) -> dict:
    if model is None:
        return {"version": COLD_START_VERSION}
    return {"version": model.version, "n_train": model.n_train,
            "n_positive": model.n_positive, "vocab_hash": model.vocab_hash,
            "vocabulary": len(model.vocabulary), "config_hash": model.config_hash,
            "trained_at": model.trained_at, "sharpness": model.sharpness, **model.meta}
