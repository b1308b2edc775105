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

Before step 1, a table of at least :data:`MIN_BUCKETED_ROWS` rows (off by
default: measured slower at the issue's load, see the constant) is first
compared per *bucket* of keys: each server sums the row hashes (and counts the
rows) of each bucket (the key's record hash, seed 2, masked; the same
expression on both servers), and only the buckets whose count or
sum differ take part in steps 1 and 2, on both sides. That spares streaming
and joining the pairs of the buckets that are equal (at 160,000 rows, 1,250
buckets of 128 rows; an edit of 200 rows touches at most 200 of them). A
bucket hiding a change (two changes whose hash sums cancel out, or a row hash
collision) is a comparison that misses a key, as a row hash collision already
was: the run's verification (independent checksums) sees the table differ and
it is rewritten whole. No bucket differing although the table's checksum does
is the same case seen earlier: the pairs are then compared in full.

The master's whole rows travel only for the differing keys; the comparison
itself costs one pass over the table on each server (two with buckets, the
second one reading the differing buckets' rows only). When most rows differ
(:data:`WHOLE_FRACTION`), fetching by key is no cheaper than streaming the
table, and the caller streams it whole instead.

The comparison's row hash (:data:`ROW_HASH`, seed 1) is not the checksum's
(seed 0) that the run verifies with: a 64-bit collision that hides a changed
row from the comparison is independent of the verification's, which then
sees the table differ (and the caller rewrites the table whole).
"""

from __future__ import annotations

import threading
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
#: Buckets: tables of at least this many rows (the larger side) are compared per bucket first, with about
#: ROWS_PER_BUCKET rows in each (a power of two of buckets, at most MAX_BUCKETS). Off by default: at the
#: issue's load (160,000 SIP options, 200 users edited) the buckets' extra pass cost more than the pairs it
#: spared (bench/replication.py: typical change 1.21x slower with buckets from 4,096 rows, same rounds).
#: Module attributes: tests make small tables bucketed, the bench measures both.
MIN_BUCKETED_ROWS = 1 << 62
ROWS_PER_BUCKET = 128
MAX_BUCKETS = 1 << 16
#: The bucket of a key: the key's record hash (seed 2; columns whose hash is not portable through their text,
#: as the checksums do), masked. The bucket's sum: each row's comparison hash mixed by hashint8extended (not
#: linear, so values exchanged between two rows of a bucket move it; its 32-bit fold only ever makes a bucket
#: look equal, which the verification then catches, as for any collision).
BUCKET = "(hash_record_extended({key}, 2) & {mask})"
BUCKET_SUM = "sum(hashint8extended({hash}, 3))"


def _row_hash(table: Table, alias: str | None) -> sql.Composable:
    return sql.SQL(ROW_HASH).format(row=table.hashed_row_of(alias))


def mostly_different(master_rows: int, slave_rows: int) -> bool:
    """The row counts alone show that more than :data:`WHOLE_FRACTION` of the rows differ."""
    larger = max(master_rows, slave_rows)
    return larger > 0 and abs(master_rows - slave_rows) > WHOLE_FRACTION * larger


def bucket_count(rows: int) -> int:
    """How many buckets a table of ``rows`` rows is compared in; 0: not bucketed."""
    if rows < MIN_BUCKETED_ROWS:
        return 0
    buckets = 1
    while buckets * ROWS_PER_BUCKET < rows and buckets < MAX_BUCKETS:
        buckets *= 2
    return buckets


def _bucket_of(table: Table, buckets: int) -> sql.Composable:
    native = dict(zip(table.columns, table.native_hash or (False,) * len(table.columns), strict=True))
    key = sql.SQL("ROW({})").format(
        sql.SQL(", ").join(
            sql.Identifier(column) if native[column] else sql.SQL("{}::text").format(sql.Identifier(column))
            for column in table.key
        )
    )
    return sql.SQL(BUCKET).format(key=key, mask=sql.Literal(buckets - 1))


def differing_buckets(source, target, table: Table, buckets: int) -> list[int]:
    """The buckets whose row count or sum of row hashes differ between the two servers (both read at once)."""
    # Summed through a second hash, as the checksums (checks.py): a sum of the linear record hash would not
    # see values exchanged between two rows of one bucket.
    query = sql.SQL("SELECT {bucket}, count(*), {sum} FROM ONLY {table} GROUP BY 1").format(
        bucket=_bucket_of(table, buckets),
        sum=sql.SQL(BUCKET_SUM).format(hash=_row_hash(table, None)),
        table=table.ident,
    )
    master: dict = {}
    failure: list[BaseException] = []

    def read_master() -> None:
        try:
            source.execute(query)
            master.update((bucket, (rows, total)) for bucket, rows, total in source.fetchall())
        except BaseException as exc:  # re-raised below, in the run's thread
            failure.append(exc)

    reader = threading.Thread(target=read_master, name="buckets-master", daemon=True)
    reader.start()
    try:
        target.execute(query)
        slave = {bucket: (rows, total) for bucket, rows, total in target.fetchall()}
    finally:
        reader.join()
    if failure:
        raise failure[0]
    return sorted(bucket for bucket in master.keys() | slave.keys() if master.get(bucket) != slave.get(bucket))


def differing_keys(
    source, target, table: Table, on_bytes: Callable[[int], None], *, binary: bool, rows: int = 0
) -> tuple[int, int | None]:
    """Steps 1 and 2: stage the master's key hashes, leave the differing keys in :data:`KEYS`.

    ``rows``: the larger side's row count (bucketed from :data:`MIN_BUCKETED_ROWS`). Returns the count of
    differing keys and of differing buckets (``None`` when not bucketed, or when no bucket differed and the
    pairs were compared in full)."""
    buckets = bucket_count(rows)
    differing = differing_buckets(source, target, table, buckets) if buckets else []
    if differing:
        only = sql.SQL(" WHERE {} = ANY({}::bigint[])").format(_bucket_of(table, buckets), sql.Literal(differing))
    else:  # not bucketed; or the sums hide the difference the checksums saw: every pair, as without buckets
        only = sql.SQL("")
    target.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {}, 0::bigint AS {} FROM ONLY {} WITH NO DATA"
        ).format(MASTER_HASHES, table.key_of(), HASH_COLUMN, table.ident)
    )
    columns = sql.SQL("{}, {}").format(table.key_of(), HASH_COLUMN)
    master_pairs = sql.SQL("SELECT {}, {} FROM ONLY {}{}").format(
        table.key_of(), _row_hash(table, None), table.ident, only
    )
    copy_table(source, target, table, on_bytes, binary=binary, into=MASTER_HASHES, query=master_pairs, columns=columns)
    # No statistics on the staged pairs: never let the planner pick a nested loop, quadratic here.
    target.execute("SET LOCAL enable_nestloop = off")
    target.execute(
        sql.SQL(
            "CREATE TEMPORARY TABLE {keys} ON COMMIT DROP AS SELECT {key} FROM {hashes} AS master "
            "FULL JOIN (SELECT {key}, {hash} AS {column} FROM ONLY {table}{only}) AS slave USING ({key}) "
            "WHERE master.{column} IS DISTINCT FROM slave.{column}"
        ).format(
            keys=KEYS,
            key=table.key_of(),
            hashes=MASTER_HASHES,
            hash=_row_hash(table, None),
            column=HASH_COLUMN,
            table=table.ident,
            only=only,
        )
    )
    count = target.rowcount
    target.execute("RESET enable_nestloop")
    target.execute(sql.SQL("DROP TABLE {}").format(MASTER_HASHES))
    return count, (len(differing) if differing else None)


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


MASTER_KEYS = sql.Identifier("pg_temp", "wazo_ha_master_keys")


def keys_since_copy(
    source, target, table: Table, new_versions, master_rows: int, slave_rows: int, on_bytes: Callable[[int], None]
) -> int | None:
    """Steps 1 and 2 without hashing a row, when the slave still holds the last good copy of ``table``.

    Then the slave's rows are the master's as the copy's snapshot saw them, and
    the keys that differ are those of the master's row versions written since
    (``new_versions``, :class:`.since_copy.NewVersions`: rows added or changed)
    and those of the rows the master removed since. The removed ones are counted
    first (slave rows + new keys the slave lacks - master rows): only when some
    were, the master's keys (not its rows) travel to find them. Leaves the keys
    in :data:`KEYS`; returns their count, or ``None`` (nothing left behind) when
    the figures contradict that premise and the caller must compare by hash.
    """
    limit = int(WHOLE_FRACTION * max(master_rows, slave_rows)) + 1
    target.execute(
        sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM ONLY {} WITH NO DATA").format(
            KEYS, table.key_of(), table.ident
        )
    )
    changed = sql.SQL("SELECT {} FROM ONLY {} WHERE {} LIMIT {}").format(
        table.key_of(), table.ident, new_versions.condition(), sql.Literal(limit)
    )
    new = copy_table(source, target, table, on_bytes, binary=False, into=KEYS, query=changed, columns=table.key_of())
    if new >= limit:
        return new  # most rows differ: the caller sends the table whole
    matched = sql.SQL(" AND ").join(
        sql.SQL("{} = {}").format(sql.Identifier("live", column), sql.Identifier("keys", column))
        for column in table.key
    )
    target.execute(
        sql.SQL("SELECT count(*) FROM {} AS keys WHERE NOT EXISTS (SELECT FROM ONLY {} AS live WHERE {})").format(
            KEYS, table.ident, matched
        )
    )
    removed = slave_rows + target.fetchone()[0] - master_rows
    if removed < 0:
        discard_keys(target)
        return None
    if removed:
        target.execute(
            sql.SQL("CREATE TEMPORARY TABLE {} ON COMMIT DROP AS SELECT {} FROM ONLY {} WITH NO DATA").format(
                MASTER_KEYS, table.key_of(), table.ident
            )
        )
        every_key = sql.SQL("SELECT {} FROM ONLY {}").format(table.key_of(), table.ident)
        copy_table(source, target, table, on_bytes, into=MASTER_KEYS, query=every_key, columns=table.key_of())
        on_master = sql.SQL(" AND ").join(
            sql.SQL("{} = {}").format(sql.Identifier("live", column), sql.Identifier("master", column))
            for column in table.key
        )
        target.execute("SET LOCAL enable_nestloop = off")  # no statistics on the staged keys
        target.execute(
            sql.SQL(
                "INSERT INTO {} SELECT {} FROM ONLY {} AS live WHERE NOT EXISTS (SELECT FROM {} AS master WHERE {})"
            ).format(KEYS, table.key_of("live"), table.ident, MASTER_KEYS, on_master)
        )
        target.execute("RESET enable_nestloop")
        target.execute(sql.SQL("DROP TABLE {}").format(MASTER_KEYS))
    target.execute(sql.SQL("SELECT count(*) FROM {}").format(KEYS))
    return target.fetchone()[0]
