"""Project quotas, the audit log, and pausing a workload's schedule.

- `allowed_quotas`: one row per (project, quota type): how much of the type the project
  may use (`allowed_value`) and where a warning starts (`high_watermark`). The quota
  types are fixed in code (`cairn.workloads.quotas.QUOTA_TYPES`). A quota row is also
  the lock that serialises the requests that would use its type (docs/operations.md).
- `audit_log`: who did what to which object, when; written in the unit of work of the
  change it records.
- `workloads.schedule_paused_at`: set while the workload's schedule is paused (nothing
  fires), NULL otherwise.
- `workload_instances.quota_disks`: how many disks the instance had when it joined the
  workload (what the Volumes quota counts).

Revision ID: 0008
Revises: 0005
Create Date: 2026-12-03 15:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mariadb').with_variant(mysql.DATETIME(fsp=6), 'mysql')
BIGINT = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table('allowed_quotas',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('quota_type_id', sa.String(length=36), nullable=False),
    sa.Column('allowed_value', BIGINT, nullable=False),
    sa.Column('high_watermark', BIGINT, nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('updated_at', TIMESTAMP, nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_allowed_quotas')),
    sa.UniqueConstraint('project_id', 'quota_type_id', name='uq_allowed_quotas_project_type')
    )
    op.create_table('audit_log',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', TIMESTAMP, nullable=False),
    sa.Column('project_id', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.String(length=64), nullable=False),
    sa.Column('action', sa.String(length=64), nullable=False),
    sa.Column('object_type', sa.String(length=32), nullable=False),
    sa.Column('object_id', sa.String(length=64), nullable=False),
    sa.Column('object_name', sa.String(length=255), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('request_id', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_log'))
    )
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_log_created_at'), ['created_at'], unique=False)
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('schedule_paused_at', TIMESTAMP, nullable=True))
    with op.batch_alter_table('workload_instances', schema=None) as batch_op:
        batch_op.add_column(sa.Column('quota_disks', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('workload_instances', schema=None) as batch_op:
        batch_op.drop_column('quota_disks')
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.drop_column('schedule_paused_at')
    with op.batch_alter_table('audit_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_audit_log_created_at'))
    op.drop_table('audit_log')
    op.drop_table('allowed_quotas')
