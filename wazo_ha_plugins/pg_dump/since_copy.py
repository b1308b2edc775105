"""What changed since the last good copy: the tables to leave out, and the master's rows written since.

Every verified copy records, per replicated table and per server, the
table's *fingerprint* as the copy left it (:mod:`.checks`: the row count and
the sum of a hash of each row version's ``xmin``), with each cluster's
incarnation (:func:`.since_verified.transactions`) and the table's columns.
The next copy reads both servers' fingerprints first — one pass without
hashing a single column, about a fifth of the cost of the checksums — and a
table whose two fingerprints are the recorded ones, on the same two
clusters, with the same columns, still holds the rows the last copy
verified equal on both sides: it is not checksummed, compared, written or
verified again. Only the other tables (in a typical change, the few an edit
touched) go through the copy as before, with the same verification.

Why a recorded fingerprint is enough (the argument that already lets an
unchanged run skip, :meth:`.plugin._Run.unchanged`): an ``INSERT``,
``UPDATE`` or ``DELETE`` adds or removes row versions, and a new version's
``xmin`` is a transaction that had not committed when the fingerprint was
recorded; ``xmin`` survives freezing (PostgreSQL keeps the raw id), ``VACUUM
FULL`` and ``CLUSTER``. What could bring old transaction ids back is a
cluster restored from a backup (its new transactions reuse the ids of the
timeline it lost) or another cluster on the same address: the incarnation
(``system_identifier`` and postmaster start time) differs then, and every
table is examined. A table the slave's own sessions change after it was
read here is caught by the next run: its fingerprint is recorded as read.

For a table the slave still holds as copied (its fingerprint the recorded
one) but the master changed, :class:`NewVersions` tells the master's row
versions written after the copy's snapshot (also recorded): their keys, and
those of the rows the master removed, are the keys that differ
(:func:`.keyed.keys_since_copy`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from psycopg2 import sql

from .catalog import Table

#: Plugin state key of the fingerprints recorded with the last good copy to one slave (``{STATE_KEY} {peer}``:
#: a master with several standbys keeps one record per standby).
STATE_KEY = "fingerprints_at_copy"


def state_key(peer: str) -> str:
    return f"{STATE_KEY} {peer}"


def incarnation(cursor, cluster: str) -> str:
    """The cluster's incarnation (:func:`.since_verified.transactions`) and the database's OID: a database
    dropped and created again — from a template or a file copy, whose rows keep their ``xmin`` — is another."""
    cursor.execute("SELECT oid::text FROM pg_database WHERE datname = current_database()")
    return f"{cluster} database {cursor.fetchone()[0]}"


def scope(peer: str, database: str, excluded) -> dict[str, Any]:
    """What a record is valid for: the slave, the database and the excluded tables."""
    return {"peer": peer, "database": database, "excluded": sorted(excluded)}


def recorded_for(state, scope_now: dict[str, Any]) -> dict[str, Any] | None:
    """The record of the last good copy, if it was made for this very scope and has the shape :func:`record`
    writes (anything else — another version's, a damaged state — is no record: every table is examined)."""
    recorded = state.get(state_key(scope_now["peer"]))
    if not isinstance(recorded, dict) or recorded.get("scope") != scope_now:
        return None
    sides = [recorded.get(side) for side in ("master", "slave")]
    if not isinstance(recorded.get("columns"), dict) or not all(
        isinstance(side, dict) and isinstance(side.get("cluster"), str) and isinstance(side.get("tables"), dict)
        for side in sides
    ):
        return None
    return recorded


@dataclass
class Findings:
    """What a copy learnt from the last good copy's record, before comparing anything.

    ``fingerprints``: both servers' scans (empty when there was no record to
    compare them with); ``unchanged``: the tables to leave out; ``new_versions``:
    the master's rows written since the recorded snapshot (``None``: not usable),
    for the tables in ``slave_as_copied``.
    """

    clusters: dict[str, str]
    master_snapshot: str
    fingerprints: dict[str, dict[str, list]] = field(default_factory=dict)
    unchanged: set[str] = field(default_factory=set)
    slave_as_copied: set[str] = field(default_factory=set)
    new_versions: NewVersions | None = None

    def new_versions_of(self, name: str) -> NewVersions | None:
        return self.new_versions if name in self.slave_as_copied else None


def as_copied(
    recorded: dict[str, Any] | None,
    clusters: dict[str, str],
    fingerprints: dict[str, dict[str, list]],
    tables: list[Table],
) -> dict[str, set[str]]:
    """Per server (``"master"``, ``"slave"``), the names of the tables it still holds as the last good copy
    left them; empty sets when there is no record or either cluster is another incarnation.

    ``clusters``/``fingerprints``: ``{"master": …, "slave": …}``, each server's
    incarnation and its :func:`.checks.scan` without checksums.
    """
    sides = ("master", "slave")
    if recorded is None or any(recorded[side]["cluster"] != clusters[side] for side in sides):
        return {side: set() for side in sides}
    columns = recorded["columns"]
    return {
        side: {
            table.name
            for table in tables
            if columns.get(table.name) == list(table.columns)
            and table.name in fingerprints[side]
            and recorded[side]["tables"].get(table.name) == [str(value) for value in fingerprints[side][table.name][:2]]
        }
        for side in sides
    }


def record(
    state,
    scope_now: dict[str, Any],
    clusters: dict[str, str],
    master_snapshot: str,
    fingerprints: dict[str, dict[str, list]],
    tables: list[Table],
) -> None:
    """After the commit: both servers' fingerprints of every table as the copy left them (read in the copy's
    master snapshot, ``master_snapshot``, and its slave transaction)."""
    sides = {
        side: {
            "cluster": clusters[side],
            "tables": {table.name: [str(value) for value in fingerprints[side][table.name][:2]] for table in tables},
        }
        for side in ("master", "slave")
    }
    sides["master"]["snapshot"] = master_snapshot
    state.set(
        state_key(scope_now["peer"]),
        {"scope": scope_now, **sides, "columns": {table.name: list(table.columns) for table in tables}},
    )


# --- the rows the master changed since the last copy -----------------------------------------------------------

_INT4_MAX = (1 << 31) - 1


class NewVersions:
    """The master's row versions written after the last good copy's snapshot, as a ``WHERE`` condition.

    A row version is *new* when its ``xmin`` is a transaction the copy's snapshot
    did not see: at or after its ``xmax``, or in its in-progress list. ``age(xmin)``
    counts back from a reference fixed for the whole transaction (as :mod:`.checks`
    uses it: no per-row text conversion), so the condition is ``age(xmin) <= A``
    or ``age(xmin)`` one of the in-progress ids' ages. Rows frozen long ago may
    read as new (their raw ``xmin`` wrapped): fetched needlessly, never missed.
    A new version the condition missed could only be one whose ``xmin`` wrapped
    around since the copy, 2³¹ transactions later; the verification would see
    its table differ, and the run rewrite it whole.
    """

    def __init__(self, newer_than: int, in_progress: list[int]):
        self.newer_than, self.in_progress = newer_than, in_progress

    @classmethod
    def since(cls, cursor, snapshot: str) -> NewVersions | None:
        """The condition for versions newer than ``snapshot`` (``pg_current_snapshot()``'s text, recorded in
        the copy's master transaction), read in this master transaction; ``None`` when the snapshot is too old
        for ``age()`` to tell (2³¹ transactions) or does not parse."""
        try:
            _, xmax_text, xip_text = snapshot.split(":")
            snapshot_xmax, in_progress = int(xmax_text), [int(xid) for xid in xip_text.split(",") if xid]
        except (AttributeError, ValueError):
            return None
        cursor.execute("SELECT age('3'::xid)::bigint, pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        age_of_3, now_xmax = cursor.fetchone()
        reference32 = (age_of_3 + 3) % (1 << 32)
        # The reference as a 64-bit id: the one nearest this snapshot's xmax with those low 32 bits.
        offset = (reference32 - now_xmax) % (1 << 32)
        reference = now_xmax + (offset - (1 << 32) if offset >= 1 << 31 else offset)
        newer_than = reference - snapshot_xmax
        ages = [reference - xid for xid in in_progress]
        if not 0 <= newer_than < _INT4_MAX or not all(0 <= age < _INT4_MAX for age in ages):
            return None
        return cls(newer_than, ages)

    def condition(self) -> sql.Composable:
        return sql.SQL("(age(xmin) <= {} OR age(xmin) = ANY({}::integer[]))").format(
            sql.Literal(self.newer_than), sql.Literal(self.in_progress)
        )
