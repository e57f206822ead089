"""Relevance use cases (issue 4). CONTRACT used by ingest; the relevance work replaces the body.

    score_new(app, session, paper_ids, post_ids) -> int
        Score the given stored items with the current model (cold-start keywords when no
        model is trained), set papers.score/posts.score and score_model, add a `scores`
        history row with `why` (a few short strings: top terms/keywords). Does not commit;
        the caller's transaction does. Returns how many items were scored.
"""

from __future__ import annotations


def score_new(app, session, paper_ids: list[str], post_ids: list[int]) -> int:
    return 0  # placeholder until the relevance model lands
