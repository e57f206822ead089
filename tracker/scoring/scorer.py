"""Scoring and explanation: the trained (or cold-start) model plus the config keywords."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tracker.scoring.keywords import COLD_BIAS, KeywordMatcher, normalize
from tracker.scoring.labels import Doc
from tracker.scoring.model import (
    COLD_START_VERSION,
    HINTS,
    TrainedModel,
    category_term,
    sigmoid,
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
    base: float  # the text model's intercept, or the cold-start bias
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
        base, _ = text_parts(self.model, docs, norms)
        extra = [category_term(self.model, d.categories) + self.keywords.total(n)
                 for d, n in zip(docs, norms, strict=True)]
        return base + np.array(extra)

    def score(self, docs: list[Doc]) -> list[Scored]:
        """Scores in [0, 1] with a few short reasons each (top keywords/terms)."""
        if not docs:
            return []
        norms = [normalize(d.text) for d in docs]
        base, x = text_parts(self.model, docs, norms)
        out = []
        for i, (doc, norm) in enumerate(zip(docs, norms, strict=True)):
            kws = self.keywords.contributions(norm)
            cat = category_term(self.model, doc.categories)
            reasons = [(w, f'"{p}"') for p, w in kws.items() if w > 0]
            if x is not None:
                reasons += self._top_terms(x, i)
            else:
                reasons += [(w, p) for p, w in HINTS.contributions(norm).items()]
            if cat > 0:
                reasons.append((cat, "/".join(sorted(set(doc.categories)))[:40]))
            reasons.sort(key=lambda r: -r[0])
            logit = base[i] + cat + sum(kws.values())
            out.append(Scored(float(sigmoid(logit)), tuple(r[1] for r in reasons[:WHY_ITEMS])))
        return out

    def _top_terms(self, x, i: int) -> list[tuple[float, str]]:
        start, end = x.indptr[i], x.indptr[i + 1]
        cols = x.indices[start:end]
        contrib = x.data[start:end] * self.model.coef[cols]
        best = np.argpartition(-contrib, WHY_ITEMS)[:WHY_ITEMS] if len(cols) > WHY_ITEMS \
            else range(len(cols))
        return [(float(contrib[j]), str(self._names[cols[j]])) for j in best if contrib[j] > 0]

    def explain(self, doc: Doc, top: int = 8) -> Explanation:
        norm = normalize(doc.text)
        base, x = text_parts(self.model, [doc], [norm])
        kws = self.keywords.contributions(norm)
        cat = category_term(self.model, doc.categories)
        logit = float(base[0]) + cat + sum(kws.values())
        if x is None:
            terms = list(HINTS.contributions(norm).items())
            intercept = COLD_BIAS
        else:
            terms = [(str(self._names[j]), float(v * self.model.coef[j]))
                     for j, v in zip(x.indices, x.data, strict=True)]
            intercept = self.model.intercept
        up = sorted((t for t in terms if t[1] > 0), key=lambda t: -t[1])[:top]
        down = sorted((t for t in terms if t[1] < 0), key=lambda t: t[1])[:top]
        shown = sum(v for _, v in up) + sum(v for _, v in down)
        return Explanation(score=float(sigmoid(logit)), log_odds=logit,
                           model_version=self.version, base=intercept, terms_up=up,
                           terms_down=down, keywords=list(kws.items()), categories=cat,
                           other_terms=float(base[0]) - intercept - shown)
