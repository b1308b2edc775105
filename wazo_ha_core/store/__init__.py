"""The state store: HA settings, the event journal and plugin state, behind one class.

See :class:`Store`. The schema is managed only by the shipped alembic
migrations (``wazo-ha db upgrade``); every read and write first checks that
the database is at the shipped revision and otherwise raises
:class:`~wazo_ha_core.errors.StoreNotMigrated`.
"""

from .store import Store

__all__ = ["Store"]
