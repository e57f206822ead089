"""listing speed: papers indexed by (score, published) instead of score alone

A listing sorted by score orders by score, then date, then the rowid that makes paging
exact (store/search.py). With the date in the score index SQLite walks it and sorts only
the rows tied on (score, date); with the score alone its planner sorted every paper
(about 550 ms on a million papers, against 2 ms).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 08:00:00
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_papers_score_published", "papers", ["score", "published"])
    op.drop_index("ix_papers_score", table_name="papers")


def downgrade() -> None:
    op.create_index("ix_papers_score", "papers", ["score"])
    op.drop_index("ix_papers_score_published", table_name="papers")
