"""layers: a project's analysis in several layers (regions, and the objects inside them)

Each existing project becomes a project of one layer, named after its task ("regions" for a
regions project, "objects" otherwise), whose rows are the project's own: nothing moves.
``projects.owner_id`` marks the hidden project that holds a further layer's rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('projects') as batch:
        batch.add_column(sa.Column('owner_id', sa.Integer(), nullable=True))
        batch.create_index('ix_projects_owner_id', ['owner_id'])
        batch.create_foreign_key('fk_projects_owner_id', 'projects', ['owner_id'], ['id'], ondelete='CASCADE')
    op.create_table(
        'layers',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('project_id', sa.Integer(), nullable=False),
        sa.Column('store_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('parent_id', sa.Integer(), nullable=True),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['project_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['store_id'], ['projects.id'], ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['parent_id'], ['layers.id'], ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('project_id', 'name', name='uq_layer_name'),
        sa.UniqueConstraint('store_id'),
    )
    op.create_index('ix_layers_project_id', 'layers', ['project_id'])
    op.execute("INSERT INTO layers (project_id, store_id, name, kind, parent_id, position, created_at) "
               "SELECT id, id, CASE WHEN task = 'regions' THEN 'regions' ELSE 'objects' END, task, NULL, 0, "
               "created_at FROM projects")


def downgrade() -> None:
    # the rows of further layers go with their hidden projects; a project's first layer is the project
    op.execute("DELETE FROM projects WHERE owner_id IS NOT NULL")
    op.drop_index('ix_layers_project_id', table_name='layers')
    op.drop_table('layers')
    with op.batch_alter_table('projects') as batch:
        batch.drop_constraint('fk_projects_owner_id', type_='foreignkey')
        batch.drop_index('ix_projects_owner_id')
        batch.drop_column('owner_id')
