"""Backup targets and backup target types as API resources.

`backup_targets` holds the targets an admin creates over the API (a filesystem path an
NFS export is mounted at, or an S3 bucket whose keys are named by a Barbican
`secret_ref`); `backup_target_types` names a way to a target (configured or created),
public or assigned to the projects in `backup_target_type_projects`.

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-03 15:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")


def upgrade() -> None:
    op.create_table(
        'backup_targets',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('type', sa.String(length=16), nullable=False),
        sa.Column('filesystem_export', sa.String(length=1024), nullable=True),
        sa.Column('mount_path', sa.String(length=1024), nullable=True),
        sa.Column('nfs_mount_opts', sa.String(length=1024), nullable=True),
        sa.Column('s3_endpoint_url', sa.String(length=1024), nullable=True),
        sa.Column('s3_bucket', sa.String(length=255), nullable=True),
        sa.Column('s3_region', sa.String(length=64), nullable=True),
        sa.Column('s3_prefix', sa.String(length=1024), nullable=True),
        sa.Column('secret_ref', sa.String(length=1024), nullable=True),
        sa.Column('immutable', sa.Boolean(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('created_at', Timestamp, nullable=False),
        sa.Column('updated_at', Timestamp, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_targets')),
    )
    op.create_table(
        'backup_target_types',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('backup_target', sa.String(length=255), nullable=False),
        sa.Column('is_public', sa.Boolean(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=True),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('created_at', Timestamp, nullable=False),
        sa.Column('updated_at', Timestamp, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_target_types')),
        sa.UniqueConstraint('name', name=op.f('uq_backup_target_types_name')),
    )
    op.create_index(op.f('ix_backup_target_types_backup_target'), 'backup_target_types', ['backup_target'])
    op.create_table(
        'backup_target_type_projects',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('type_id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('created_at', Timestamp, nullable=False),
        sa.ForeignKeyConstraint(['type_id'], ['backup_target_types.id'],
                                name=op.f('fk_backup_target_type_projects_type_id_backup_target_types')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_backup_target_type_projects')),
        sa.UniqueConstraint('type_id', 'project_id', name='uq_backup_target_type_projects_pair'),
    )
    op.create_index(op.f('ix_backup_target_type_projects_type_id'), 'backup_target_type_projects', ['type_id'])
    op.create_index(op.f('ix_backup_target_type_projects_project_id'), 'backup_target_type_projects',
                    ['project_id'])


def downgrade() -> None:
    op.drop_table('backup_target_type_projects')
    op.drop_index(op.f('ix_backup_target_types_backup_target'), table_name='backup_target_types')
    op.drop_table('backup_target_types')
    op.drop_table('backup_targets')
