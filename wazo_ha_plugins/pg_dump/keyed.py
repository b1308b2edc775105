"""Comparing one table row by row, by primary key, and moving only the rows whose key differs.

Inside the run's single slave transaction, for a table with a primary key
whose checksum differs:

1. the master's ``(key, row hash)`` pairs (one ``bigint`` per row, read in
   the run's snapshot) are streamed into a temporary table on the slave;
2. the slave joins them with its own pairs (``FULL JOIN`` on the key): a key
   whose hash differs or exists on one side only is a differing key (a row
   added, changed or removed, a key changed in place being one removed and
   one added);
3. the slave's rows with those keys are deleted and the master's rows with
   those keys are fetched (``COPY`` of a ``SELECT … WHERE key IN (…)``) and
   loaded. Untouched rows keep their row version.

The master's whole rows travel only for the differing keys; the comparison
itself costs one pass over the table on each server. When most rows differ
(:data:`WHOLE_FRACTION`), fetching by key is no cheaper than streaming the
table, and the caller streams it whole instead.

The comparison's row hash (:data:`ROW_HASH`, seed 1) is not the checksum's
(seed 0) that the run verifies with: a 64-bit collision that hides a changed
row from the comparison is independent of the verification's, which then
sees the table differ (and the caller rewrites the table whole).
"""

from __future__ import annotations

from collections.abc import Callable

from psycopg2 import sql

from .catalog import Table
from .stream import copy_table

MASTER_HASHES = sql.Identifier("pg_temp", "wazo_ha_master_hashes")
KEYS = sql.Identifier("pg_temp", "wazo_ha_keys")
HASH_COLUMN = sql.Identifier("wazo_ha row hash")
#: The per-row hash the comparison matches keys on; ``{row}`` is the table's hashed ``ROW(…)``.
#: A module attribute so that a test can force collisions (the verification must still catch them).
ROW_HASH = "hash_record_extended({row}, 1)"
#: Above this fraction of differing rows (of the larger side), the table travels whole.
WHOLE_FRACTION = 0.3


def _row_hash(table: Table, alias: str | None) -> sql.Composable:
    return sql.SQL(ROW_HASH).format(row=table.hashed_row_of(alias))


def mostly_different(master_rows: int, slave_rows: int) -> bool:
    """The row counts alone show that more than :data:`WHOLE_FRACTION` of the rows differ."""
    larger = max(master_rows, slave_rows)
    return larger > 0 and abs(master_rows - slave_rows) > WHOLE_FRACTION * larger


def differing_keys(source, target, table: Table, on_bytes: Callable[[int], None], *, binary: bool) -> int:
    """Steps 1 and 2: stage the master's key hashes, leave the differing keys in :data:`KEYS`; returns their count."""
    target.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {}, 0::bigint AS {} FROM ONLY {} WITH NO DATA"
        ).format(MASTER_HASHES, table.key_of(), HASH_COLUMN, table.ident)
    )
    columns = sql.SQL("{}, {}").format(table.key_of(), HASH_COLUMN)
    master_pairs = sql.SQL("SELECT {}, {} FROM ONLY {}").format(table.key_of(), _row_hash(table, None), table.ident)
    copy_table(source, target, table, on_bytes, binary=binary, into=MASTER_HASHES, query=master_pairs, columns=columns)
    # No statistics on the staged pairs: never let the planner pick a nested loop, quadratic here.
    target.execute("SET LOCAL enable_nestloop = off")
    target.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {keys} ON COMMIT DROP AS SELECT {key} FROM {hashes} AS master "
            "FULL JOIN (SELECT {key}, {hash} AS {column} FROM ONLY {table}) AS slave USING ({key}) "
            "WHERE master.{column} IS DISTINCT FROM slave.{column}"
        ).format(
            keys=KEYS,
            key=table.key_of(),
            hashes=MASTER_HASHES,
            hash=_row_hash(table, None),
            column=HASH_COLUMN,
            table=table.ident,
        )
    )
    count = target.rowcount
    target.execute("RESET enable_nestloop")
    target.execute(sql.SQL("DROP TABLE {}").format(MASTER_HASHES))
    return count


def discard_keys(target) -> None:
    """Drop :data:`KEYS` when the table travels whole after all."""
    target.execute(sql.SQL("DROP TABLE {}").format(KEYS))


def replace_keys(source, target, table: Table, on_bytes: Callable[[int], None], *, binary: bool) -> tuple[int, int]:
    """Step 3: delete the slave's rows whose key is in :data:`KEYS`, load the master's rows with those keys.

    Returns ``(inserted, deleted)``.
    """
    target.execute(
        sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(column)) for column in table.key), KEYS
        )
    )
    keys = target.fetchall()
    matched = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("live", column), sql.Identifier("keys", column))
        for column in table.key
    )
    target.execute(sql.SQL("DELETE FROM ONLY {} AS live USING {} AS keys WHERE {}").format(table.ident, KEYS, matched))
    deleted = target.rowcount
    target.execute(sql.SQL("DROP TABLE {}").format(KEYS))
    if not keys:
        return 0, deleted
    # The keys travel as text arrays, turned back into the key's types on the master (a read-only
    # transaction: no temporary table there). The sessions' settings (UTC, ISO dates) are the same.
    arrays = sql.SQL(", ").join(
        sql.SQL("{}::text[]::{}[]").format(sql.Literal([key[index] for key in keys]), sql.SQL(key_type))
        for index, key_type in enumerate(table.key_types)
    )
    query = sql.SQL("SELECT {} FROM ONLY {} WHERE ({}) IN (SELECT * FROM unnest({}))").format(
        table.column_list, table.ident, table.key_of(), arrays
    )
    inserted = copy_table(source, target, table, on_bytes, binary=binary, query=query)
    return inserted, deleted
