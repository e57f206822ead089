"""source_state.validators_url: the feed URL that the stored ETag / Last-Modified came from

A feed whose URL is changed in the config must be fetched unconditionally at its new home:
sent there, the old URL's validators can draw a 304 that keeps the new feed's posts out for
good. Rows stored before this revision have no URL, so each feed is fetched whole once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("source_state", sa.Column("validators_url", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("source_state") as batch:
        batch.drop_column("validators_url")
