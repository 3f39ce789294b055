"""Project settings (`/settings`): the SMTP settings of e-mail about jobs, and others.

`project_settings` holds one row per project and setting name (unique pair).

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-03 15:30:00
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_TIMESTAMP = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), 'mysql', 'mariadb')


def upgrade() -> None:
    op.create_table(
        'project_settings',
        sa.Column('id', sa.String(length=36), nullable=False),
        sa.Column('project_id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.String(length=64), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('value', sa.Text(), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('category', sa.String(length=255), nullable=False),
        sa.Column('type', sa.String(length=255), nullable=False),
        sa.Column('is_public', sa.Boolean(), nullable=False),
        sa.Column('is_hidden', sa.Boolean(), nullable=False),
        sa.Column('metadata', sa.JSON(), nullable=False),
        sa.Column('created_at', _TIMESTAMP, nullable=False),
        sa.Column('updated_at', _TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_project_settings')),
        sa.UniqueConstraint('project_id', 'name', name='uq_project_settings_pair'),
    )


def downgrade() -> None:
    op.drop_table('project_settings')
