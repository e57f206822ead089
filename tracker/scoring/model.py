"""The relevance model: TF-IDF over title + abstract, a linear classifier, a separate
category model, and the config keywords on top.

    log-odds = text_intercept + sum(coef[t] * tfidf[t])       (trained text model)
             + category term (only when the item has categories; 0 otherwise)
             + sum(weight of each config keyword the item matches)
    score    = sigmoid(log-odds)

The category term is learned only from training items that have categories, with the text
log-odds as a fixed offset, and centred on those items, so "no categories" is never a
feature: a blog post or a record without categories is scored on its text alone.
Without a trained model (cold start) the text part is replaced by a fixed bias, category
priors and a few low-weight hint phrases (see keywords.py).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import repeat

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from tracker.scoring.keywords import (
    COLD_BIAS,
    COLD_CATEGORY_PRIORS,
    COLD_HINT_WEIGHT,
    COLD_HINTS,
    KeywordMatcher,
    normalize,
)
from tracker.scoring.labels import Doc

FORMAT = 1
# sklearn's English stop words plus single characters (dropped before bigrams, as sklearn does).
_STOP = frozenset(ENGLISH_STOP_WORDS) | frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
COLD_START_VERSION = "cold-start"
# Label 1 (adjacent) trains as a negative: the digest wants core NeuroAI first. Full weight
# measured best in 5-fold CV on the dev sets (as positives at low weight it was clearly worse).
LABEL1_WEIGHT = 1.0
TEXT_C = 16.0
CATEGORY_L2 = 2.0


@dataclass
class TrainedModel:
    vectorizer: object  # fitted TfidfVectorizer
    coef: np.ndarray
    intercept: float
    cat_weights: dict[str, float]
    cat_center: float
    version: str
    n_train: int
    n_positive: int
    vocab_hash: str
    config_hash: str
    trained_at: str
    meta: dict = field(default_factory=dict)

    def feature_names(self) -> np.ndarray:
        return self.vectorizer.get_feature_names_out()


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -35, 35)))


def terms(norm: str) -> list[str]:
    """Unigrams and bigrams of a normalize()d text, without stop words and single
    characters. Our own analyzer, fed the text already normalized for keyword matching: faster
    than sklearn's regex tokenizer plus n-gram loop, which dominate scoring time."""
    tokens = [t for t in norm.split() if t not in _STOP]
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
          config_hash: str = "", label1_weight: float = LABEL1_WEIGHT,
          text_c: float = TEXT_C, use_categories: bool = True) -> TrainedModel:
    """Fit on labelled docs (label 2 = positive). Needs at least one of each class.
    `keywords` (the config's) are a fixed offset during training, as they are when scoring,
    so the learned weights add to them rather than count them twice."""
    y = np.array([1 if label == 2 else 0 for label in labels])
    weights = np.array([label1_weight if label == 1 else 1.0 for label in labels])
    if y.sum() == 0 or y.sum() == len(y):
        raise ValueError("training needs both relevant (label 2) and other examples")
    norms = [normalize(d.text) for d in docs]
    matcher = KeywordMatcher(keywords or {})
    offset = np.array([matcher.total(n) for n in norms])
    vectorizer = make_vectorizer(len(docs))
    x = vectorizer.fit_transform(norms)
    beta, intercept = fit_logistic(x, y, balanced(y, weights), offset, 1.0 / text_c)
    coef = beta.astype(np.float32)
    cat_weights, cat_center = {}, 0.0
    if use_categories:
        cat_weights, cat_center = _fit_categories(docs, y, weights,
                                                   x @ coef + intercept + offset)
    vocab = "\n".join(vectorizer.get_feature_names_out())
    vocab_hash = hashlib.sha256(vocab.encode()).hexdigest()[:12]
    digest = hashlib.sha256(vocab_hash.encode() + coef.tobytes()
                            + repr(sorted(cat_weights.items())).encode())
    return TrainedModel(vectorizer, coef, intercept, cat_weights, cat_center,
                        version=f"tfidf-{digest.hexdigest()[:10]}", n_train=len(docs),
                        n_positive=int(y.sum()), vocab_hash=vocab_hash,
                        config_hash=config_hash,
                        trained_at=datetime.now(UTC).isoformat(timespec="seconds"),
                        meta={"label1_weight": label1_weight, "text_c": text_c})


def fit_logistic(x, y, weights, offset, l2: float) -> tuple[np.ndarray, float]:
    """Weighted L2 logistic regression with a fixed per-row offset in the log-odds (sklearn
    has no offsets): minimises sum w*logloss(offset + x.beta + b) + l2*|beta|^2/2, b free.
    The offsets let the text model learn around the config keywords instead of double
    counting them, and the category model learn around the text."""
    from scipy.optimize import minimize

    sign = np.where(y > 0, 1.0, -1.0)

    def loss(theta):
        beta, bias = theta[:-1], theta[-1]
        z = sign * (offset + x @ beta + bias)
        g = -weights * sign * sigmoid(-z)
        value = np.sum(weights * np.logaddexp(0, -z)) + 0.5 * l2 * beta @ beta
        return value, np.append(x.T @ g + l2 * beta, g.sum())

    start = np.zeros(x.shape[1] + 1)
    theta = minimize(loss, start, jac=True, method="L-BFGS-B",
                     options={"maxiter": 2000}).x
    return theta[:-1], float(theta[-1])


def balanced(y, weights) -> np.ndarray:
    """Per-row weights that give both classes the same total weight."""
    out = weights.astype(float).copy()
    for cls in (0, 1):
        mask = y == cls
        out[mask] *= len(y) / (2.0 * max(weights[mask].sum(), 1e-9))
    return out


def _fit_categories(docs, y, weights, text_logit) -> tuple[dict[str, float], float]:
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
    beta, _ = fit_logistic(m, y[rows], balanced(y[rows], weights[rows]), text_logit[rows],
                           CATEGORY_L2)
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


HINTS = KeywordMatcher({hint: COLD_HINT_WEIGHT for hint in COLD_HINTS})


def text_parts(model: TrainedModel | None, docs: list[Doc], norms: list[str]):
    """(base log-odds per doc, sparse tf-idf matrix or None). Cold start: bias + hints
    (`norms` are the normalize()d texts)."""
    if model is None:
        return np.array([COLD_BIAS + HINTS.total(n) for n in norms]), None
    x = tfidf(model.vectorizer, norms)
    return np.asarray(x @ model.coef).ravel() + model.intercept, x


def tfidf(vectorizer, norms: list[str]):
    """The same matrix as vectorizer.transform(norms) (sublinear tf, idf, l2 rows), built
    with C-level lookups and duplicate summing: about twice as fast as sklearn's loop."""
    from scipy.sparse import coo_matrix
    from sklearn.preprocessing import normalize as l2_rows

    get = vectorizer.vocabulary_.get
    cols, lengths = array("i"), []
    for norm in norms:
        found = terms(norm)
        cols.extend(map(get, found, repeat(-1)))
        lengths.append(len(found))
    cols = np.frombuffer(cols, dtype=np.int32)
    rows = np.repeat(np.arange(len(norms), dtype=np.int32), lengths)
    known = cols >= 0
    shape = (len(norms), len(vectorizer.vocabulary_))
    x = coo_matrix((np.ones(int(known.sum()), dtype=np.float32), (rows[known], cols[known])),
                   shape=shape).tocsr()  # sums repeated terms into counts
    x.data = (1.0 + np.log(x.data)) * vectorizer.idf_[x.indices].astype(np.float32)
    return l2_rows(x, copy=False)


def model_info(model: TrainedModel | None) -> dict:
    if model is None:
        return {"version": COLD_START_VERSION}
    return {"version": model.version, "n_train": model.n_train,
            "n_positive": model.n_positive, "vocab_hash": model.vocab_hash,
            "vocabulary": len(model.coef), "config_hash": model.config_hash,
            "trained_at": model.trained_at, **model.meta}
