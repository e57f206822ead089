"""Scoring and explanation: the trained (or cold-start) model plus the config keywords."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tracker.scoring.keywords import COLD_BIAS, COLD_HINT_WEIGHT, KeywordMatcher
from tracker.scoring.labels import Doc
from tracker.scoring.linear import sigmoid
from tracker.scoring.model import (
    COLD_START_VERSION,
    TrainedModel,
    category_term,
    hints,
    term_scales,
    text_parts,
)
from tracker.scoring.text import Batch, Lexicon, batch

WHY_ITEMS = 3


@dataclass(frozen=True)
class Scored:
    score: float
    why: tuple[str, ...]


@dataclass
class Explanation:
    score: float
    log_odds: float
    model_version: str
    base: float  # the text log-odds of a document without known terms, or the cold bias
    terms_up: list[tuple[str, float]] = field(default_factory=list)
    terms_down: list[tuple[str, float]] = field(default_factory=list)
    keywords: list[tuple[str, float]] = field(default_factory=list)
    categories: float = 0.0
    other_terms: float = 0.0  # sum of term contributions not listed above


class Scorer:
    def __init__(self, model: TrainedModel | None, keywords: Mapping[str, float]):
        self.model = model
        lexicon = Lexicon()  # one token lookup per batch for all of these
        self.keywords = KeywordMatcher(keywords, lexicon)
        self._hints = hints(lexicon)
        self._index = model.term_index(lexicon) if model is not None else self._hints
        self._names = model.feature_names() if model is not None else None
        if model is not None:
            self._coef, self._coef_b = model.coef.astype(float), model.coef_b.astype(float)

    @property
    def version(self) -> str:
        return self.model.version if self.model else COLD_START_VERSION

    def _parts(self, texts: Batch):
        found = self.keywords.find(texts)
        totals = np.bincount(found[0], weights=self.keywords.vector[found[1]],
                             minlength=texts.n)
        return found, text_parts(self.model, self._index, texts, totals)

    def log_odds(self, docs: list[Doc]) -> np.ndarray:
        _, parts = self._parts(batch([d.model_text for d in docs]))
        return parts.base + np.array([category_term(self.model, d.categories) for d in docs])

    def score(self, docs: list[Doc]) -> list[Scored]:
        """Scores in [0, 1] with a few short reasons each (top keywords/terms), for the
        whole batch at once: every candidate reason is a (document, value, label) row."""
        if not docs:
            return []
        texts = batch([d.model_text for d in docs])
        (kw_doc, kw), parts = self._parts(texts)
        cats = np.array([category_term(self.model, d.categories) for d in docs])
        scale_a = np.ones(len(docs))
        if parts.x is not None:
            _, scale_a, scale_b = term_scales(self.model, parts)
            x = parts.x
            rows = x.rows
            value = x.data * (self._coef[x.indices] * scale_a[rows]
                              + self._coef_b[x.indices] * scale_b[rows])
            labels, extra = self._names, (rows, value, x.indices)
        else:
            h_doc, hint = parts.hints
            labels = self._hints.phrases
            extra = (h_doc, np.full(len(hint), COLD_HINT_WEIGHT), hint)
        kw_labels = [f'"{p}"' for p in self.keywords.phrases]
        doc = np.concatenate([kw_doc, extra[0], np.arange(len(docs))])
        value = np.concatenate([self.keywords.vector[kw] * scale_a[kw_doc], extra[1], cats])
        source = np.concatenate([np.zeros(len(kw)), np.ones(len(extra[2])),
                                 np.full(len(docs), 2)]).astype(int)
        ref = np.concatenate([kw, extra[2], np.arange(len(docs))])
        why = [[] for _ in docs]
        top = _top_per_doc(doc, value, WHY_ITEMS)
        names = (kw_labels, labels)
        for d, src, r in zip(doc[top].tolist(), source[top].tolist(), ref[top].tolist(),
                             strict=True):
            why[d].append(names[src][r] if src < 2
                          else "/".join(sorted(set(docs[r].categories)))[:40])
        final = sigmoid(parts.base + cats)
        return [Scored(float(v), tuple(w)) for v, w in zip(final, why, strict=True)]

    def explain(self, doc: Doc, top: int = 8) -> Explanation:
        texts = batch([doc.model_text])
        (_, kw), parts = self._parts(texts)
        kws = {self.keywords.phrases[j]: float(self.keywords.vector[j]) for j in kw}
        cat = category_term(self.model, doc.categories)
        logit = float(parts.base[0]) + cat
        kw_rows = list(kws.items())
        if parts.x is None:
            terms = [(self._hints.phrases[j], COLD_HINT_WEIGHT) for j in parts.hints[1]]
            base = COLD_BIAS
        else:
            bases, scale_a, scale_b = term_scales(self.model, parts)
            base = float(bases[0])
            kw_rows = [(p, w * float(scale_a[0])) for p, w in kws.items()]
            weights = self._coef * scale_a[0] + self._coef_b * scale_b[0]
            terms = [(str(self._names[j]), float(v * weights[j]))
                     for j, v in zip(parts.x.indices, parts.x.data, strict=True)]
        up = sorted((t for t in terms if t[1] > 0), key=lambda t: -t[1])[:top]
        down = sorted((t for t in terms if t[1] < 0), key=lambda t: t[1])[:top]
        shown = sum(v for _, v in up) + sum(v for _, v in down)
        return Explanation(score=float(sigmoid(logit)), log_odds=logit,
                           model_version=self.version, base=base, terms_up=up,
                           terms_down=down, keywords=kw_rows, categories=cat,
                           other_terms=float(parts.base[0]) - base - shown
                           - sum(v for _, v in kw_rows))


def _top_per_doc(doc: np.ndarray, value: np.ndarray, k: int) -> np.ndarray:
    """Positions of each document's k largest positive values, best first."""
    keep = np.flatnonzero(value > 0)
    order = keep[np.lexsort((-value[keep], doc[keep]))]
    if not len(order):
        return order
    d = doc[order]
    first = np.flatnonzero(np.r_[True, d[1:] != d[:-1]])
    rank = np.arange(len(order)) - np.repeat(first, np.diff(np.r_[first, len(order)]))
    return order[rank < k]
