"""A job records what it writes outside the database before it writes it.

`jobs.destinations` (JSON, NULL when the job writes nothing) lists the files a restore
creates and the data a snapshot leaves on its target; a `cleanup` job reads it to remove
what a failed, cancelled or reaped job left behind.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 18:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destinations', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.drop_column('destinations')
