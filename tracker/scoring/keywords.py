"""Config keywords ([relevance.keywords], phrase = weight) and cold-start priors.

A phrase matches case-insensitively at word boundaries, with '-' and spaces interchangeable
and an optional plural ending ("spiking neural network" matches "Spiking Neural Networks").
Each matched phrase adds its weight once to the log-odds of the score, whatever the model:
raising a weight can only raise the scores of items that match it, and never touches others.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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

# Everything but a-z and 0-9 becomes a space (str.translate: 3x faster than a regex).
_KEEP = set("abcdefghijklmnopqrstuvwxyz0123456789")
_TO_SPACE = {i: " " for i in range(0x3000) if chr(i) not in _KEEP}


def normalize(text: str) -> str:
    """Lower case, punctuation and hyphens to single spaces, padded with one space each
    side (also applied to phrases). Score with the normalized text to do this once."""
    return " " + " ".join(text.lower().translate(_TO_SPACE).split()) + " "


class KeywordMatcher:
    """Each phrase is matched on its own (overlapping phrases both count). A plain substring
    test screens each phrase first, so the regex runs only where the phrase may occur."""

    def __init__(self, weights: Mapping[str, float]):
        self.weights: dict[str, float] = {}
        for phrase, weight in weights.items():
            key = normalize(phrase).strip()
            if key:
                self.weights[key] = self.weights.get(key, 0.0) + float(weight)
        self._checks = [(phrase, " " + phrase, re.compile(rf" {re.escape(phrase)}(?:s|es)? "))
                        for phrase in self.weights]

    def matches(self, norm: str) -> list[str]:
        """Distinct phrases found in `norm` (a normalize()d text), in config order."""
        return [phrase for phrase, head, regex in self._checks
                if head in norm and regex.search(norm)]

    def contributions(self, norm: str) -> dict[str, float]:
        return {phrase: self.weights[phrase] for phrase in self.matches(norm)}

    def total(self, norm: str) -> float:
        return sum(self.weights[p] for p in self.matches(norm))

