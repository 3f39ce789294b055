"""A snapshot records the tiers of a tiered schedule it was taken for.

`snapshots.schedule_tiers` (JSON, NULL under the 4.x form) lists the tiers a scheduled
snapshot's fire time belongs to (["hourly"], ["daily", "weekly"], ...), or ["manual"]
for one taken on request; per-tier retention reads it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 08:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedule_tiers', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('snapshots', schema=None) as batch_op:
        batch_op.drop_column('schedule_tiers')
