""" "Nothing committed on either server since the last verified run": an exact test, without scanning a table.

The fingerprints (:mod:`.checks`) scan every replicated table on both servers.
This module answers the same question for the common idle case with a few
catalogue reads. Its *marker* of one server is:

* the cluster's incarnation: ``system_identifier`` and ``pg_postmaster_start_time()``
  (a restored or restarted cluster never matches an older marker);
* ``pg_current_snapshot()``: its ``xmax`` and in-progress list describe exactly the
  set of completed transactions (every id below ``xmax`` not listed). That set only
  grows, and every transaction that changes a row, a table, a grant or a role —
  in any database of the cluster, excluded tables included — takes an id and
  completes, so an equal snapshot means the same committed rows everywhere.
  ``xmax`` is a 64-bit ``xid8`` (epoch included): it never comes back.
* the sequences' values (``nextval`` changes them without a transaction id), compared
  in full.

It is only a shortcut: any transaction at all (a call logged in an excluded table,
autovacuum's ANALYZE, a Wazo daemon's bookkeeping) makes the markers differ and
the run falls back to the fingerprints. It never says "unchanged" when a row changed.

When a marker is recorded (:func:`record`), it must describe the verified state:

* master: read in the run's REPEATABLE READ transaction, where ``pg_current_snapshot()``
  *is* the snapshot the fingerprints (and a copy) read;
* slave: read before and after its fingerprint scan (READ COMMITTED); recorded only
  if both are equal (the completed set only grows, so the scan saw that state).

Only a run that found both fingerprints equal to the last good copy records markers;
a copy forgets them (the slave's commit moves its snapshot), so the run after a copy
scans, and the runs after that can skip without scanning.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

#: Plugin state key of the markers recorded by the last verified unchanged run.
STATE_KEY = "verified_markers"

_MARKER = (
    "SELECT (SELECT system_identifier FROM pg_control_system())::text, pg_postmaster_start_time()::text, "
    "pg_current_snapshot()::text"
)


def transactions(cursor) -> dict[str, str]:
    """The cluster's incarnation and its completed-transactions snapshot."""
    cursor.execute(_MARKER)
    system, started, snapshot = cursor.fetchone()
    return {"cluster": f"{system}@{started}", "snapshot": snapshot}


def sequences_digest(values: dict[str, list]) -> str:
    """A digest of :func:`.checks.sequence_values` (the values, not the names' order)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def scope(last_good: dict[str, Any] | None, excluded) -> dict[str, Any] | None:
    """What markers are valid for: the last good copy's state (peer, database, fingerprints) and the
    excluded tables; ``None`` when there is no last good copy."""
    if not last_good:
        return None
    return {**last_good, "excluded": sorted(excluded)}


def record(state, scope_now: dict[str, Any], sequences: list[str], figures: dict, master: dict, slave: dict) -> None:
    """Remember the verified state's markers (``master``/``slave``: :func:`transactions` plus ``sequences``,
    the :func:`sequences_digest` of the values the fingerprints were computed with); ``figures``: the
    catalogue's figures a skipped run reports (``tables``, ``excluded``)."""
    state.set(
        STATE_KEY, {"scope": scope_now, "sequences": sequences, "figures": figures, "master": master, "slave": slave}
    )


def forget(state) -> None:
    if state.get(STATE_KEY) is not None:
        state.delete(STATE_KEY)


def recorded_for(state, scope_now: dict[str, Any] | None) -> dict[str, Any] | None:
    """The recorded markers if they were recorded for this very scope, else ``None``."""
    recorded = state.get(STATE_KEY)
    if scope_now is None or not isinstance(recorded, dict) or recorded.get("scope") != scope_now:
        return None
    return recorded


def still(cursor, side: dict[str, Any], names: list[str], sequence_values) -> bool:
    """This server's marker equals ``side`` (its half of :func:`record`): same incarnation, same completed
    transactions, then (read only if so: no DDL can have dropped one) the same values of sequences ``names``.
    ``sequence_values(cursor, names)`` is :func:`.checks.sequence_values`."""
    if transactions(cursor) != {"cluster": side["cluster"], "snapshot": side["snapshot"]}:
        return False
    return sequences_digest(sequence_values(cursor, names)) == side["sequences"]
