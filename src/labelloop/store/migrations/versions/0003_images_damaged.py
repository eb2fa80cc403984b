"""images.damaged: why an image's pixels are only partly there (a truncated file that still decodes)

NULL for a whole image. Set at import (the pixels are decoded once) and by ``labelloop doctor --fix``
(also for files gone missing or changed on disk since the import).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 07:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('images') as batch:
        batch.add_column(sa.Column('damaged', sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('images') as batch:
        batch.drop_column('damaged')
