"""Batch text processing for scoring: normalisation, keyword matching and tf-idf of many
documents at once. Scoring runs inside every ingest batch, so per-document Python loops are
avoided: the batch is joined into one string (documents separated by a control character),
normalised with one str.translate, split once, matched with one compiled regex and turned
into tf-idf with numpy (no scipy or sklearn import when scoring).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from tracker.scoring import _ALNUM, _ascii

SEP = "\x01"  # between documents in a joined batch; never survives normalize()
_SEP = SEP.encode()
_BATCH = bytes(c if c in _ALNUM or c == 1 else 32 for c in range(256))  # SEP kept


class Lexicon:
    """One token -> id dictionary shared by everything that reads a batch (keywords, hints,
    tf-idf terms), so each token of a batch is looked up once. Id 0 is SEP; a token not in
    the lexicon reads as -1."""

    def __init__(self):
        self.ids: dict[bytes, int] = {_SEP: 0}
        self._tables: dict[int, np.ndarray] = {}

    def add(self, word: bytes) -> int:
        return self.ids.setdefault(word, len(self.ids))

    def table(self, local: dict[bytes, int], *, sep: int = -3) -> np.ndarray:
        """Global id -> a component's own code (`local`), -1 for the rest; index -1
        (unknown token) also reads -1. Cached until the lexicon grows."""
        cached = self._tables.get(id(local))
        if cached is not None and len(cached) == len(self.ids) + 1:
            return cached
        out = np.full(len(self.ids) + 1, -1, dtype=np.int64)
        out[0] = sep
        for word, code in local.items():
            out[self.ids[word]] = code
        self._tables[id(local)] = out
        return out


@dataclass
class Batch:
    """Normalised documents: `tokens` (bytes) of all documents, each document followed by
    a SEP token."""

    n: int
    tokens: list[bytes]
    _read: tuple | None = None

    def read(self, lexicon: Lexicon) -> tuple[np.ndarray, np.ndarray]:
        """(lexicon id of each token, document of each token), computed once per lexicon."""
        if self._read is None or self._read[0] is not lexicon:
            ids = np.fromiter(map(lexicon.ids.get, self.tokens, repeat(-1)), dtype=np.int64,
                              count=len(self.tokens))
            sep = ids == 0
            self._read = (lexicon, ids, np.cumsum(sep) - sep)
        return self._read[1], self._read[2]


def batch(texts: Sequence[str]) -> Batch:
    """One lower/encode/translate/split over the whole batch (C loops, no per-text work)."""
    joined = SEP.join(texts)
    if joined.count(SEP) != len(texts) - 1:  # a document holds SEP itself: drop it there
        joined = SEP.join(t.replace(SEP, " ") for t in texts)
    raw = _ascii(joined + SEP).translate(_BATCH)
    return Batch(len(texts), raw.replace(_SEP, b" \x01 ").split())


class PhraseSet:
    """Phrases (normalised word sequences) matched on a batch's tokens with a vectorised
    walk down a trie: every token position starts a walk, step k follows the k-th word. The
    last word may carry a plural ending ("network" matches "networks"). Every matching phrase
    counts, overlapping or not ("brain" inside "brain computer interface")."""

    def __init__(self, phrases: Sequence[str], lexicon: Lexicon | None = None):
        self.phrases = list(phrases)
        self.lexicon = lexicon or Lexicon()
        self._words: dict[bytes, int] = {}
        edges: dict[tuple[int, int], int] = {}  # (node, word) -> child; root is node 0
        ends: dict[int, list[int]] = {}  # node -> phrases ending there
        self._depth = 0
        for j, phrase in enumerate(self.phrases):
            *head, last = phrase.encode().split()
            for variant in (last, last + b"s", last + b"es"):
                node = 0
                for word in (*head, variant):
                    w = self._words.setdefault(word, len(self._words))
                    self.lexicon.add(word)
                    node = edges.setdefault((node, w), len(edges) + 1)
                ends.setdefault(node, []).append(j)
            self._depth = max(self._depth, len(head) + 1)
        self._w = max(len(self._words), 1)
        keys = sorted((node * self._w + w, child) for (node, w), child in edges.items())
        self._keys = np.array([k for k, _ in keys] or [-1], dtype=np.int64)
        self._child = np.array([c for _, c in keys] or [0], dtype=np.int64)
        width = max((len(v) for v in ends.values()), default=1)
        self._ends = np.full((len(edges) + 1, width), -1, dtype=np.int64)
        for node, found in ends.items():
            self._ends[node, :len(set(found))] = sorted(set(found))

    def find(self, b: Batch) -> tuple[np.ndarray, np.ndarray]:
        """(document index, phrase index) of every distinct match, sorted."""
        ids, doc = b.read(self.lexicon)
        words = self.lexicon.table(self._words)[ids]
        start = np.flatnonzero(words >= 0)
        node = np.zeros(len(start), dtype=np.int64)
        hits_at, hits = [], []
        for step in range(self._depth):
            pos = start + step
            ok = pos < len(words)
            start, node, pos = start[ok], node[ok], pos[ok]
            key = node * self._w + words[pos]
            at = np.minimum(np.searchsorted(self._keys, key), len(self._keys) - 1)
            ok = (self._keys[at] == key) & (words[pos] >= 0)
            start, node = start[ok], self._child[at[ok]]
            ends = self._ends[node]
            hits_at.append(np.repeat(start, ends.shape[1])[ends.ravel() >= 0])
            hits.append(ends.ravel()[ends.ravel() >= 0])
        n = max(len(self.phrases), 1)
        if not hits:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        key = np.unique(doc[np.concatenate(hits_at)] * n + np.concatenate(hits))
        return key // n, key % n


@dataclass
class Rows:
    """A CSR matrix without scipy: row i holds indices/data[indptr[i]:indptr[i + 1]]."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @property
    def rows(self) -> np.ndarray:
        return np.repeat(np.arange(len(self.indptr) - 1), np.diff(self.indptr))

    def dot(self, vector: np.ndarray) -> np.ndarray:
        return np.bincount(self.rows, weights=self.data * vector[self.indices],
                           minlength=len(self.indptr) - 1)

    def to_scipy(self, n_cols: int):
        from scipy.sparse import csr_matrix

        return csr_matrix((self.data, self.indices, self.indptr),
                          shape=(len(self.indptr) - 1, n_cols))


class TermIndex:
    """Maps a batch to the tf-idf of a fitted vocabulary of unigrams and bigrams ("a b"),
    identical to sklearn's TfidfVectorizer(sublinear_tf=True, norm="l2") with the model's
    analyzer (stop words dropped before bigrams are formed)."""

    def __init__(self, vocabulary: dict[str, int], idf: np.ndarray, stop_words,
                 lexicon: Lexicon | None = None):
        words = sorted({w for term in vocabulary for w in term.split()})
        self._lookup = {w.encode(): i for i, w in enumerate(words)}
        self._lookup.update({w.encode(): -2 for w in stop_words})
        self.lexicon = lexicon or Lexicon()
        for word in self._lookup:
            self.lexicon.add(word)
        t = len(words)
        self._t = t
        self._uni = np.full(t + 1, -1, dtype=np.int64)  # last slot: unknown word
        pairs, cols = [], []
        for term, col in vocabulary.items():
            parts = term.split()
            ids = [self._lookup[p.encode()] for p in parts]
            if len(ids) == 1:
                self._uni[ids[0]] = col
            else:
                pairs.append(ids[0] * t + ids[1])
                cols.append(col)
        order = np.argsort(pairs)
        self._pairs = np.asarray(pairs, dtype=np.int64)[order]
        self._pair_cols = np.asarray(cols, dtype=np.int64)[order]
        self.idf = np.asarray(idf, dtype=np.float64)
        self.n_features = len(vocabulary)

    def transform(self, b: Batch) -> Rows:
        ids, doc = b.read(self.lexicon)
        ids = self.lexicon.table(self._lookup)[ids]
        keep = ids != -2  # stop words go before bigrams are formed
        ids, doc = ids[keep], doc[keep]
        uni = self._uni[np.where(ids >= 0, ids, self._t)]
        left, right = ids[:-1], ids[1:]
        ok = (left >= 0) & (right >= 0)
        key = left[ok] * self._t + right[ok]
        at = np.minimum(np.searchsorted(self._pairs, key), max(len(self._pairs) - 1, 0))
        hit = self._pairs[at] == key if len(self._pairs) else np.zeros(len(key), bool)
        rows = np.concatenate([doc[uni >= 0], doc[:-1][ok][hit]])
        cols = np.concatenate([uni[uni >= 0], self._pair_cols[at[hit]]])
        cell, counts = np.unique(rows * self.n_features + cols, return_counts=True)
        rows, cols = cell // self.n_features, cell % self.n_features
        data = (1.0 + np.log(counts)) * self.idf[cols]
        norms = np.sqrt(np.bincount(rows, weights=data * data, minlength=b.n))
        data /= norms[rows]
        indptr = np.searchsorted(rows, np.arange(b.n + 1))
        return Rows(indptr, cols, data)
