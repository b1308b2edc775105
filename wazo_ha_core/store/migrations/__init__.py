"""Alembic environment and revisions of the state store (loaded by path by alembic; a package so that setuptools ships it)."""
