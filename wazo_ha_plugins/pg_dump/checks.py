"""Checksums (verify before commit) and fingerprints (skip when unchanged).

* **Checksum** of a table: its row count and the sum of a 64-bit hash of
  each row (``hash_record_extended`` of the row's columns, hashed again by
  ``hashtextextended``: the record hash is linear in its columns' hashes, so
  its plain sum could not tell two rows that exchanged a value). Order-independent
  (no sort, constant memory) and computed by each server. Columns are hashed
  as they are when their type's hash agrees with their text (integers, text,
  varchar, uuid, booleans, bytea, dates, timestamps and arrays of these) and
  through their text otherwise (enums, whose hash is of an OID local to each
  database; json, which has no hash; floats, intervals, numerics, whose hash
  ignores differences their text shows). Both sides evaluate the same
  expression, built from the master's catalog, with the same session
  settings. This costs about a third of an md5 of each row's text.
* **Fingerprint** of a table: its row count and the sum of a hash of each
  row version's ``xmin``. Any INSERT, UPDATE or DELETE replaces or removes
  row versions, and a new version carries the id of a transaction that had
  not committed when the last fingerprint was taken, so the fingerprint
  changes; reading it costs a scan without converting rows to text, which is
  what makes a run every minute cheap. A false "changed" (e.g. after
  ``VACUUM FULL`` or ``FREEZE``) only costs a copy.
"""

from __future__ import annotations

import hashlib
import json

from psycopg2 import sql

from .catalog import SCHEMA, Table

Figures = dict[str, list]

# A row version's xmin, rebuilt from age(xmin) (no per-row text conversion, which
# costs twice the scan): age counts back from a reference transaction id that is
# fixed for the whole transaction, and is INT_MAX for a frozen row, whose xmin reads 2.
_REFERENCE = "SELECT (age('3'::xid)::bigint + 3 + 4294967296) % 4294967296"
_XMIN_SUM = sql.SQL(
    "coalesce(sum(hashint8extended(CASE WHEN age(xmin) = 2147483647 THEN 2 "
    "ELSE ({reference} - age(xmin) + 4294967296) % 4294967296 END, 0)), 0)::text"
)
# Each row's hash goes through a second, non-linear hash before the sum. hash_record_extended combines
# its columns' hashes linearly (h = 31·h + column hash), so a plain sum of it over the rows is a sum per
# column: values swapped between two rows (two users' names exchanged) left it equal, and a copy missed them.
_ROW_SUM = sql.SQL("coalesce(sum(hashtextextended(hash_record_extended({row}, 0)::text, 0)), 0)::text")
_SEQUENCE = sql.SQL("SELECT {name}, last_value::text, is_called FROM {sequence}")


def _union(cursor, parts: list[sql.Composable]) -> Figures:
    if not parts:
        return {}
    cursor.execute(sql.SQL(" UNION ALL ").join(parts))
    return {row[0]: list(row[1:]) for row in cursor.fetchall()}


def scan(cursor, tables: list[Table], *, checksums: bool) -> Figures:
    """One pass over every table, in one round trip.

    ``{table: [rows, xmin_sum]}``, or ``[rows, xmin_sum, row_hash_sum]`` with ``checksums``.
    """
    cursor.execute(_REFERENCE)
    xmin_sum = _XMIN_SUM.format(reference=sql.Literal(int(cursor.fetchone()[0])))
    parts = []
    for table in tables:
        sums = [xmin_sum, _ROW_SUM.format(row=table.hashed_row)] if checksums else [xmin_sum]
        parts.append(
            sql.SQL("SELECT {}, count(*), {} FROM ONLY {}").format(
                sql.Literal(table.name), sql.SQL(", ").join(sums), table.ident
            )
        )
    return _union(cursor, parts)


def nonempty(cursor, tables: list[Table]) -> set[str]:
    """The names of ``tables`` that hold at least one row, in one round trip (a page read per table, no scan)."""
    parts = [
        sql.SQL("SELECT {} WHERE EXISTS (SELECT FROM ONLY {})").format(sql.Literal(table.name), table.ident)
        for table in tables
    ]
    if not parts:
        return set()
    cursor.execute(sql.SQL(" UNION ALL ").join(parts))
    return {row[0] for row in cursor.fetchall()}


def content_of(values: list) -> list:
    """``[rows, row_hash_sum]`` out of one table's figures from a :func:`scan` with checksums."""
    return [values[0], values[2]]


def checksums_of(figures: Figures) -> Figures:
    """``{table: [rows, row_hash_sum]}`` out of a :func:`scan` with checksums."""
    return {name: content_of(values) for name, values in figures.items()}


def sequence_values(cursor, sequences: list[str]) -> Figures:
    """``{sequence: [last_value, is_called]}``."""
    return _union(
        cursor,
        [_SEQUENCE.format(name=sql.Literal(name), sequence=sql.Identifier(SCHEMA, name)) for name in sequences],
    )


def fingerprint_of(figures: Figures, tables: list[Table], sequences: Figures) -> str:
    """A digest of the row versions (from :func:`scan`) and the sequence values."""
    document = {
        "tables": {table.name: figures[table.name][:2] if table.name in figures else None for table in tables},
        "columns": {table.name: list(table.columns) for table in tables},
        "sequences": sequences,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def fingerprint(cursor, tables: list[Table], sequences: list[str]) -> str:
    """A digest of the row versions of ``tables`` and the values of ``sequences``."""
    return fingerprint_of(scan(cursor, tables, checksums=False), tables, sequence_values(cursor, sequences))


def differences(master: Figures, slave: Figures) -> list[str]:
    """Names whose figures differ (or are missing on one side), sorted."""
    return sorted(name for name in master.keys() | slave.keys() if master.get(name) != slave.get(name))
