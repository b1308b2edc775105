"""Follow mode's hook: a cheap reading of the master that moves when the configuration may have changed.

One query on one kept connection, about a millisecond of the server's time
(no table is scanned):

* ``tables``: the sum of ``n_tup_ins + n_tup_upd + n_tup_del`` over the
  replicated tables (schema ``public`` minus the excluded ones) in
  ``pg_stat_user_tables``. It ignores the call records, the queue log and
  the library's own journal, so a busy PBX or our own runs do not move it.
  PostgreSQL 15 flushes a backend's counters when it goes idle, but no more
  than once a second: a backend that commits twice within a second has its
  second write counted only after 10 idle seconds (``PGSTAT_IDLE_INTERVAL``).
  Hence ``lag``.
* ``any_write``: ``pg_current_wal_lsn()``, which moves at once on any
  write of the cluster; it covers the lagging counter (and ``TRUNCATE``,
  which the counters do not count).

Kept apart from the replication run: it shares nothing with it but the
master's endpoint and the list of excluded tables.
"""

from __future__ import annotations

import psycopg2

from wazo_ha_core import PeerUnreachable, PluginError
from wazo_ha_core.extensions import ChangeSignal

from .catalog import SCHEMA
from .connection import Endpoint, close_quietly, connect, first_line

#: PostgreSQL 15's PGSTAT_IDLE_INTERVAL (10 s) plus a margin: the longest a table counter lags a commit.
STATS_LAG = 11.0
APPLICATION_NAME = "wazo-ha follow"
_QUERY = (
    "SELECT pg_current_wal_lsn()::text, "
    "coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint "
    "FROM pg_stat_user_tables WHERE schemaname = %s AND NOT (relname = ANY(%s))"
)


class MasterChangeSignal:
    """Reads :class:`~wazo_ha_core.extensions.ChangeSignal` from the master, reconnecting after a failure."""

    def __init__(self, endpoint: Endpoint, excluded: set[str], connect_timeout: float):
        self.endpoint, self.excluded, self.connect_timeout = endpoint, sorted(excluded), connect_timeout
        self.connection = None

    def read(self) -> ChangeSignal:
        """One reading; raises :class:`PluginError` (and drops the connection) when it fails."""
        try:
            if self.connection is None:
                self.connection = connect(self.endpoint, self.connect_timeout, max(5.0, self.connect_timeout))
                self.connection.autocommit = True  # every reading its own snapshot of the statistics
                with self.connection.cursor() as cursor:
                    cursor.execute("SET application_name = %s", (APPLICATION_NAME,))
            with self.connection.cursor() as cursor:
                cursor.execute(_QUERY, (SCHEMA, self.excluded))
                lsn, writes = cursor.fetchone()
        except PeerUnreachable as exc:  # the master is this node: not a peer problem
            self.close()
            raise PluginError(f"change signal: {exc}") from None
        except psycopg2.Error as exc:
            self.close()
            raise PluginError(f"change signal from the {self.endpoint.describe()} failed: {first_line(exc)}") from None
        return ChangeSignal(tables=int(writes), any_write=lsn, lag=STATS_LAG)

    def close(self) -> None:
        close_quietly(self.connection)
        self.connection = None
