"""A workload may be encrypted with a key held in Barbican (docs/encryption.md).

`workloads.encryption` (boolean, false for every existing workload) says whether its
data lives in a repository of its own, encrypted under a key derived from a Barbican
secret; `workloads.secret_uuid` names that secret (never its payload: no key is kept in
the database). `workloads.secret_claim` holds the secret id while the workload is live
and NULL once it is deleted; its unique index makes "a secret protects at most one live
workload" hold even under concurrent creates (NULLs never collide).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 15:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.add_column(sa.Column('encryption', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('secret_uuid', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('secret_claim', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint('uq_workloads_secret_claim', ['secret_claim'])


def downgrade() -> None:
    with op.batch_alter_table('workloads', schema=None) as batch_op:
        batch_op.drop_constraint('uq_workloads_secret_claim', type_='unique')
        batch_op.drop_column('secret_claim')
        batch_op.drop_column('secret_uuid')
        batch_op.drop_column('encryption')
