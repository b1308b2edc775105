"""The state store's revisions (alembic skips this file)."""
