"""The project store: SQLAlchemy tables (SQLite or PostgreSQL), migrations, image files."""

from labelloop.store.db import Store
from labelloop.store.project import ProjectContext, find_project_root, init_project, open_project

__all__ = ["ProjectContext", "Store", "find_project_root", "init_project", "open_project"]
