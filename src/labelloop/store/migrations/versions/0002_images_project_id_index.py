"""images (project_id, id) index: keyset paging of a project's images

Without it SQLite answers ``WHERE project_id = ? AND id > ? ORDER BY id LIMIT n`` through a
(project_id, ...) index plus a sort of every image of the project (9 ms at 20k images, growing
linearly); with it, a range scan of n rows at any depth.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 03:00:00
"""

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_images_project_id', 'images', ['project_id', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_images_project_id', table_name='images')
