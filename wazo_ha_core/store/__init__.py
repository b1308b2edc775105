"""The state store: HA settings, the event journal and plugin state, behind one class.

See :class:`Store`. The schema is managed only by the shipped alembic
migrations (``wazo-ha db upgrade``); every read and write first checks that
the database is at the shipped revision and otherwise raises
:class:`~wazo_ha_core.errors.StoreNotMigrated`.

``Store`` is imported on first use (PEP 562): :mod:`.revision` must stay
importable without SQLAlchemy (``wazo-ha status`` reads its snapshot without it).
"""

__all__ = ["Store"]


def __getattr__(name: str):
    if name == "Store":
        from .store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
