"""Scoring and explanation: the trained (or cold-start) model plus the config keywords."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tracker.scoring.keywords import COLD_BIAS, KeywordMatcher, normalize
from tracker.scoring.labels import Doc
from tracker.scoring.linear import sigmoid
from tracker.scoring.model import (
    COLD_START_VERSION,
    HINTS,
    TrainedModel,
    category_term,
    term_scales,
    text_parts,
)

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
        self.keywords = KeywordMatcher(keywords)
        self._names = model.feature_names() if model is not None else None

    @property
    def version(self) -> str:
        return self.model.version if self.model else COLD_START_VERSION

    def log_odds(self, docs: list[Doc]) -> np.ndarray:
        norms = [normalize(d.text) for d in docs]
        base = text_parts(self.model, norms, [self.keywords.total(n) for n in norms]).base
        return base + np.array([category_term(self.model, d.categories) for d in docs])

    def score(self, docs: list[Doc]) -> list[Scored]:
        """Scores in [0, 1] with a few short reasons each (top keywords/terms)."""
        if not docs:
            return []
        norms = [normalize(d.text) for d in docs]
        found = [self.keywords.contributions(n) for n in norms]
        parts = text_parts(self.model, norms, [sum(k.values()) for k in found])
        scale_a = np.ones(len(docs))
        if parts.x is not None:
            _, scale_a, scale_b = term_scales(self.model, parts)
            contrib = self._contributions(parts.x, scale_a, scale_b)
        out = []
        for i, (doc, norm, kws) in enumerate(zip(docs, norms, found, strict=True)):
            cat = category_term(self.model, doc.categories)
            reasons = [(w * scale_a[i], f'"{p}"') for p, w in kws.items() if w > 0]
            if parts.x is not None:
                reasons += self._top_terms(parts.x, contrib, i)
            else:
                reasons += [(w, p) for p, w in HINTS.contributions(norm).items()]
            if cat > 0:
                reasons.append((cat, "/".join(sorted(set(doc.categories)))[:40]))
            reasons.sort(key=lambda r: -r[0])
            logit = parts.base[i] + cat
            out.append(Scored(float(sigmoid(logit)), tuple(r[1] for r in reasons[:WHY_ITEMS])))
        return out

    def _contributions(self, x, scale_a, scale_b) -> np.ndarray:
        """Every stored tf-idf value times its term's effective weight, for the whole batch
        at once (aligned with x.data)."""
        rows = np.repeat(np.arange(x.shape[0]), np.diff(x.indptr))
        return x.data * (self.model.coef[x.indices] * scale_a[rows]
                         + self.model.coef_b[x.indices] * scale_b[rows])

    def _top_terms(self, x, contrib, i: int) -> list[tuple[float, str]]:
        start, end = x.indptr[i], x.indptr[i + 1]
        row = contrib[start:end]
        best = np.argpartition(-row, WHY_ITEMS)[:WHY_ITEMS] if len(row) > WHY_ITEMS \
            else range(len(row))
        return [(float(row[j]), str(self._names[x.indices[start + j]]))
                for j in best if row[j] > 0]

    def explain(self, doc: Doc, top: int = 8) -> Explanation:
        norm = normalize(doc.text)
        kws = self.keywords.contributions(norm)
        parts = text_parts(self.model, [norm], [sum(kws.values())])
        cat = category_term(self.model, doc.categories)
        logit = float(parts.base[0]) + cat
        kw_rows = list(kws.items())
        if parts.x is None:
            terms = list(HINTS.contributions(norm).items())
            base = COLD_BIAS
        else:
            bases, scale_a, scale_b = term_scales(self.model, parts)
            base = float(bases[0])
            kw_rows = [(p, w * float(scale_a[0])) for p, w in kws.items()]
            weights = self.model.coef * scale_a[0] + self.model.coef_b * scale_b[0]
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
