"""Alembic environment and revisions of the state store, loaded by path; a package so that setuptools ships it."""
