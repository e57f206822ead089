"""listing speed: papers indexed by (published, score) instead of published alone

A listing with no text query is sorted newest first; with `--min-score` SQLite would either
walk the published index and read each paper's wide row to test its score, or collect every
paper above the score from the score index and sort them all (about 280 ms for a threshold
that 7% of a million papers pass). With the score in the date index, the walk tests it in
the index and stops after a page; the worst case, a threshold nobody passes, reads the
index once (about 50 ms on a million papers). The search code keeps SQLite from choosing
the score index for these listings (see store/search._filters).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 05:20:00
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_papers_published_score", "papers", ["published", "score"])
    op.drop_index("ix_papers_published", table_name="papers")


def downgrade() -> None:
    op.create_index("ix_papers_published", "papers", ["published"])
    op.drop_index("ix_papers_published_score", table_name="papers")
