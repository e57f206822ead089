"""Group a week's papers into a few themed sections.

Each paper's title + abstract becomes a TF-IDF vector fitted on that week alone (so the terms
that separate this week's papers are the ones that count); k-means splits them into a few
clusters and each cluster is named by the top terms of its centroid. Deterministic for the
same input (fixed seed), so golden-file tests hold.
"""

from __future__ import annotations

import math
import warnings

OTHER = "Other papers"
SINGLE = "Papers"


def group_by_theme(texts: list[str], *, max_groups: int = 5, min_group: int = 3,
                   name_terms: int = 3) -> list[tuple[str, list[int]]]:
    """Return [(section name, [indices into texts])]. Sections come in the order of their
    first member (callers pass texts best first), members keep their input order. Clusters
    smaller than `min_group` are pooled into "Other papers"."""
    if not texts:
        return []
    k = min(max_groups, math.floor(math.sqrt(len(texts) / 2)))
    if k < 2:
        return [(SINGLE, list(range(len(texts))))]
    matrix, terms = _vectors(texts)
    if matrix is None:
        return [(SINGLE, list(range(len(texts))))]
    from sklearn.cluster import KMeans
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():  # near-duplicate texts give fewer distinct clusters: fine
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = KMeans(n_clusters=k, n_init=4, random_state=0).fit(matrix)
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(model.labels_):
        groups.setdefault(int(label), []).append(index)
    sections, other = [], []
    for label, members in groups.items():
        name = _name(model.cluster_centers_[label], terms, name_terms)
        if len(members) < min_group or name == OTHER:  # small, or nothing distinctive
            other += members
            continue
        sections.append((name, members))
    if other:
        sections.append((OTHER, sorted(other)))
    if len(sections) == 1:
        return [(SINGLE, list(range(len(texts))))]
    sections.sort(key=lambda section: (section[0] == OTHER, section[1][0]))
    return _unique_names(sections)


def _vectors(texts: list[str]):
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(stop_words="english", sublinear_tf=True, max_df=0.6,
                                 token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z-]{2,}\b")
    try:
        matrix = vectorizer.fit_transform(texts)
    except ValueError:  # no usable terms at all (e.g. only stop words)
        return None, None
    return matrix, vectorizer.get_feature_names_out()


def _name(centroid, terms, count: int) -> str:
    top = centroid.argsort()[::-1][:count]
    return " · ".join(str(terms[i]) for i in top if centroid[i] > 0) or OTHER


def _unique_names(sections: list[tuple[str, list[int]]]) -> list[tuple[str, list[int]]]:
    seen: dict[str, int] = {}
    result = []
    for name, members in sections:
        seen[name] = seen.get(name, 0) + 1
        result.append((name if seen[name] == 1 else f"{name} ({seen[name]})", members))
    return result
