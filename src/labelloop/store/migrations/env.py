"""Alembic environment: runs on the connection labelloop passes in (never a URL from an ini)."""

from alembic import context

from labelloop.store.tables import Base

connection = context.config.attributes.get("connection")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
