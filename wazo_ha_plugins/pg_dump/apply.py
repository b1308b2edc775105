"""Bringing one slave table to the master's content, inside the run's single slave transaction.

Two ways, chosen by ``write_mode``:

* ``changed_rows`` (default), one of three methods per table, chosen from
  the figures (recorded as ``Applied.method``):

  - ``load``: the slave's table is empty (a first copy): nothing to compare,
    the master's rows are streamed straight in;
  - ``keys``: the table has a primary key and at most
    :data:`~.keyed.WHOLE_FRACTION` of its rows differ: rows are compared by
    key and only the differing keys' rows travel (:mod:`.keyed`);
  - ``since copy``: the same, when the slave still holds the last good copy
    of the table: the differing keys are those of the master's row versions
    written since that copy and of the rows it removed
    (:func:`.keyed.keys_since_copy`), found without hashing a row;
  - ``whole``: no primary key, or most rows differ (from the row counts, or
    from the key comparison): the whole table travels, as follows.

  The master's rows are streamed into a
  temporary table on the slave (no WAL, no index, no lock on the live
  table); two anti-joins then delete the slave rows the master no longer
  has and insert the master rows the slave lacks. An unchanged row is never
  rewritten, so the work (heap, index and WAL writes) follows the size of
  the change, not of the table, and readers are never blocked (MVCC). A
  table without a primary key may hold duplicate rows, which a set
  comparison cannot count: it is rewritten whole, from the staged copy.
* ``truncate``: today's way; the caller truncates every replicated table at
  once and each is reloaded with one ``COPY``. Readers wait until commit.

Rows are compared with the checksum's per-row hash as the join key and an
exact ``IS NOT DISTINCT FROM`` of the same column values as the recheck, so
a hash collision can never leave a changed row in place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from psycopg2 import sql

from . import keyed
from .catalog import Table
from .stream import copy_table

STAGE = sql.Identifier("pg_temp", "wazo_ha_stage")


@dataclass
class Applied:
    """What one table's update wrote on the slave."""

    inserted: int = 0
    deleted: int = 0
    method: str = "reload"  # load, keys, whole (changed_rows) or reload (truncate)
    keys: int = 0  # differing keys found by the key comparison (the rows fetched by key)
    buckets: int | None = None  # differing buckets the key comparison was limited to (None: not bucketed)


def _same_row(table: Table) -> sql.Composable:
    """Join condition: ``stage`` row equals ``live`` row (hash to join on, exact values to recheck)."""
    staged, live = table.hashed_row_of("stage"), table.hashed_row_of("live")
    condition = "hash_record_extended({s}, 0) = hash_record_extended({l}, 0) AND {s} IS NOT DISTINCT FROM {l}"
    return sql.SQL(condition).format(s=staged, l=live)


def reload(source, target, table: Table, on_bytes: Callable[[int], None], *, binary: bool) -> Applied:
    """``truncate`` mode: the table is already empty in this transaction; one COPY fills it."""
    return Applied(inserted=copy_table(source, target, table, on_bytes, binary=binary))


def update_changed_rows(
    source,
    target,
    table: Table,
    master_rows: int,
    slave_rows: int,
    on_bytes: Callable[[int], None],
    *,
    binary: bool,
    whole: bool = False,
    new_versions=None,
) -> Applied:
    """``changed_rows`` mode: make the live table equal to the master's rows, writing only the differences.

    ``master_rows`` and ``slave_rows`` are the row counts from the scans that
    found the table differs. ``whole``: do not compare by key (the method
    ``whole`` whatever the figures). ``new_versions``: the slave's table is
    as the last good copy left it, and this (:class:`.since_copy.NewVersions`)
    tells the master's rows written since (the method ``since copy``).
    """
    if slave_rows == 0:  # nothing to compare with: stream straight in
        return Applied(inserted=copy_table(source, target, table, on_bytes, binary=binary), method="load")
    if table.has_primary_key and not whole and not keyed.mostly_different(master_rows, slave_rows):
        larger = max(master_rows, slave_rows)
        differing, method, buckets = None, "since copy", None
        if new_versions is not None:
            differing = keyed.keys_since_copy(source, target, table, new_versions, master_rows, slave_rows, on_bytes)
        if differing is None:
            method = "keys"
            differing, buckets = keyed.differing_keys(source, target, table, on_bytes, binary=binary, rows=larger)
        if differing <= keyed.WHOLE_FRACTION * larger:
            inserted, deleted = keyed.replace_keys(source, target, table, on_bytes, binary=binary)
            return Applied(inserted=inserted, deleted=deleted, method=method, keys=differing, buckets=buckets)
        keyed.discard_keys(target)
    target.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM ONLY {} WITH NO DATA").format(
            STAGE, table.column_list, table.ident
        )
    )
    staged = copy_table(source, target, table, on_bytes, binary=binary, into=STAGE)
    if staged == 0 or not table.has_primary_key:
        applied = _replace_all(target, table)
    else:
        applied = _replace_differences(target, table)
    target.execute(sql.SQL("DROP TABLE {}").format(STAGE))  # free its space now, not at commit
    applied.method = "whole"
    return applied


def _replace_all(target, table: Table) -> Applied:
    target.execute(sql.SQL("DELETE FROM ONLY {}").format(table.ident))
    deleted = target.rowcount
    columns = table.column_list
    target.execute(
        sql.SQL("INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {}").format(
            table.ident, columns, columns, STAGE
        )
    )
    return Applied(inserted=target.rowcount, deleted=deleted)


def _replace_differences(target, table: Table) -> Applied:
    live = sql.SQL("ONLY {} AS live").format(table.ident)
    # The staging table has no statistics: never let the planner pick a nested loop, quadratic here.
    target.execute("SET LOCAL enable_nestloop = off")
    target.execute(
        sql.SQL("DELETE FROM {} WHERE NOT EXISTS (SELECT FROM {} AS stage WHERE {})").format(
            live, STAGE, _same_row(table)
        )
    )
    deleted = target.rowcount
    # Runs after the DELETE: a changed row's old version is gone, its key is free.
    target.execute(
        sql.SQL(
            "INSERT INTO {} ({}) OVERRIDING SYSTEM VALUE SELECT {} FROM {} AS stage "
            "WHERE NOT EXISTS (SELECT FROM {} WHERE {})"
        ).format(table.ident, table.column_list, table.columns_of("stage"), STAGE, live, _same_row(table))
    )
    inserted = target.rowcount
    target.execute("RESET enable_nestloop")
    return Applied(inserted=inserted, deleted=deleted)
