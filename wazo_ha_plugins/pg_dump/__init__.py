"""``pg_dump``: the configuration database streamed from the master to the slave.

See :mod:`wazo_ha_plugins.pg_dump.plugin` and ``docs/plugins/pg_dump.rst``.
"""

from .plugin import PgDumpReplication

__all__ = ["PgDumpReplication"]
