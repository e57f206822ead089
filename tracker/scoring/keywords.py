"""Config keywords ([relevance.keywords], phrase = weight) and cold-start priors.

A phrase matches case-insensitively at word boundaries, with '-' and spaces interchangeable
and an optional plural ending ("spiking neural network" matches "Spiking Neural Networks").
Each matched phrase adds its weight once to the log-odds of the score, whatever the model:
raising a weight can only raise the scores of items that match it, and never touches others.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from tracker.scoring import normalize
from tracker.scoring.text import Batch, Lexicon, PhraseSet, batch

__all__ = ["KeywordMatcher", "normalize"]

# Cold start (no trained model): log-odds added for these arXiv categories. Only present
# categories add anything; an item without categories (a blog post) gets nothing.
COLD_CATEGORY_PRIORS = {"q-bio.NC": 2.0, "cs.NE": 1.0}
COLD_BIAS = -3.0  # an item matching nothing scores sigmoid(-3) ~ 0.05

# Extra cold-start phrases at a small weight: they break ties among items matching the
# same config keywords. Not configurable on purpose; config keywords are the user's knob.
COLD_HINTS = (
    "neural activity", "neurons", "neuronal", "cortex", "cortical", "cognitive",
    "cognition", "neuroimaging", "spiking", "synaptic", "plasticity", "meg", "ecog",
    "electrophysiology", "calcium imaging", "decoding", "brain-inspired", "human behavior",
    "representational similarity", "neural encoding", "hebbian", "biological",
)
COLD_HINT_WEIGHT = 0.3


class KeywordMatcher:
    """Overlapping phrases both count ("brain" and "brain computer interface")."""

    def __init__(self, weights: Mapping[str, float], lexicon: Lexicon | None = None):
        self.weights: dict[str, float] = {}
        for phrase, weight in weights.items():
            key = normalize(phrase).strip()
            if key:
                self.weights[key] = self.weights.get(key, 0.0) + float(weight)
        self.phrases = list(self.weights)
        self.vector = np.array([self.weights[p] for p in self.phrases], dtype=float)
        self._set = PhraseSet(self.phrases, lexicon)

    def find(self, b: Batch) -> tuple[np.ndarray, np.ndarray]:
        """(document index, phrase index) of each distinct match in a batch, sorted."""
        return self._set.find(b)

    def totals(self, b: Batch) -> np.ndarray:
        """Each document's sum of matched weights."""
        docs, found = self.find(b)
        return np.bincount(docs, weights=self.vector[found], minlength=b.n)

    def matches(self, text: str) -> list[str]:
        """Distinct phrases found in one text, in config order."""
        return [self.phrases[j] for j in self.find(batch([text]))[1]]

    def contributions(self, text: str) -> dict[str, float]:
        return {phrase: self.weights[phrase] for phrase in self.matches(text)}

    def total(self, text: str) -> float:
        return sum(self.weights[p] for p in self.matches(text))
