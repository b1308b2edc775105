"""The store's schema revision this version of the library needs, importable without SQLAlchemy."""

#: The newest shipped migration. Every read and write compares the database with it, so it is
#: a constant rather than alembic's script directory (importing alembic and parsing the scripts
#: cost more than a whole `wazo-ha status`); tests/unit/test_startup.py keeps it equal to alembic's head.
#: ``wazo-ha status`` trusts its snapshot (:mod:`wazo_ha_core.status_snapshot`) only at this revision.
HEAD_REVISION = "0001"
