"""Workload lists read their page from one covering index.

`ix_workloads_listing` (project_id, deleted, created_at, id, updated_at, next_fire_at)
replaces `ix_workloads_project_created` (its first three columns): a list walks it in
its order and reads each workload's version and next fire time from it, without a sort
or a lookup of the row.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 01:00:00
"""
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.create_index('ix_workloads_listing', ['project_id', 'deleted', 'created_at', 'id',
                                                       'updated_at', 'next_fire_at'], unique=False)
        batch_op.drop_index('ix_workloads_project_created')


def downgrade() -> None:
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.create_index('ix_workloads_project_created', ['project_id', 'deleted', 'created_at'],
                              unique=False)
        batch_op.drop_index('ix_workloads_listing')
