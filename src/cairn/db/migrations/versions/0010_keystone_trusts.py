"""Keystone trusts: the delegation through which scheduled work acts for a user.

`keystone_trusts` records each trust Cairn made (for a workload, or through /trusts);
`workloads.scheduler_trust` (JSON, NULL without a trust) is what the workload's detail
shows of its own: `{"trust": <keystone_trusts.id>, "is_valid": bool}`.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:40:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        'keystone_trusts',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('keystone_trust_id', sa.String(length=64), nullable=False),
        sa.Column('role_names', sa.JSON(), nullable=False),
        sa.Column('is_cloud_trust', sa.Boolean(), nullable=False),
        sa.Column('hidden', sa.Boolean(), nullable=False),
        sa.Column('workload_id', sa.String(length=36), nullable=True),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('created_at', Timestamp, nullable=False),
        sa.Column('updated_at', Timestamp, nullable=True),
        sa.Column('deleted_at', Timestamp, nullable=True),
        sa.Column('deleted', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_keystone_trusts')),
    )
    with op.batch_alter_table('keystone_trusts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_keystone_trusts_project_id'), ['project_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_keystone_trusts_workload_id'), ['workload_id'], unique=False)
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('scheduler_trust', sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.drop_column('scheduler_trust')
    with op.batch_alter_table('keystone_trusts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_keystone_trusts_workload_id'))
        batch_op.drop_index(batch_op.f('ix_keystone_trusts_project_id'))
    op.drop_table('keystone_trusts')
