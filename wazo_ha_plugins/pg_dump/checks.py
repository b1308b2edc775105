"""Checksums (verify before commit) and fingerprints (skip when unchanged).

* **Checksum** of a table: its row count and the sum, as two 64-bit halves,
  of the md5 of each row's text. Order-independent (no sort, constant
  memory) and computed by the server, identically on both sides because
  both sessions print values with the same settings.
* **Fingerprint** of a table: its row count and the sum of a hash of each
  row version's ``xmin``. Any INSERT, UPDATE or DELETE replaces or removes
  row versions, and a new version carries the id of a transaction that had
  not committed when the last fingerprint was taken, so the fingerprint
  changes; reading it costs a scan without converting rows to text, which is
  what makes a run every minute cheap. A false "changed" (e.g. after
  ``VACUUM FULL``) only costs a copy.
"""

from __future__ import annotations

import hashlib
import json

from psycopg2 import sql

from .catalog import SCHEMA, Table

Figures = dict[str, list]

_CHECKSUM = sql.SQL(
    "SELECT {name}, count(*), "
    "coalesce(sum(('x' || substr(h, 1, 16))::bit(64)::bigint::numeric), 0)::text, "
    "coalesce(sum(('x' || substr(h, 17, 16))::bit(64)::bigint::numeric), 0)::text "
    "FROM (SELECT md5(ROW({columns})::text) AS h FROM ONLY {table}) AS rows"
)
_FINGERPRINT = sql.SQL(
    "SELECT {name}, count(*), coalesce(sum(hashint8extended(xmin::text::bigint, 0)::numeric), 0)::text "
    "FROM ONLY {table}"
)
_SEQUENCE = sql.SQL("SELECT {name}, last_value::text, is_called FROM {sequence}")


def _union(cursor, parts: list[sql.Composable]) -> Figures:
    if not parts:
        return {}
    cursor.execute(sql.SQL(" UNION ALL ").join(parts))
    return {row[0]: list(row[1:]) for row in cursor.fetchall()}


def table_checksums(cursor, tables: list[Table]) -> Figures:
    """``{table: [rows, sum_high, sum_low]}`` for each table, in one round trip."""
    return _union(
        cursor,
        [
            _CHECKSUM.format(name=sql.Literal(table.name), columns=table.column_list, table=table.ident)
            for table in tables
        ],
    )


def sequence_values(cursor, sequences: list[str]) -> Figures:
    """``{sequence: [last_value, is_called]}``."""
    return _union(
        cursor,
        [_SEQUENCE.format(name=sql.Literal(name), sequence=sql.Identifier(SCHEMA, name)) for name in sequences],
    )


def fingerprint(cursor, tables: list[Table], sequences: list[str]) -> str:
    """A digest of the row versions of ``tables`` and the values of ``sequences``."""
    per_table = _union(
        cursor,
        [_FINGERPRINT.format(name=sql.Literal(table.name), table=table.ident) for table in tables],
    )
    document = {
        "tables": {table.name: per_table.get(table.name) for table in tables},
        "columns": {table.name: list(table.columns) for table in tables},
        "sequences": sequence_values(cursor, sequences),
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def differences(master: Figures, slave: Figures) -> list[str]:
    """Names whose figures differ (or are missing on one side), sorted."""
    return sorted(name for name in master.keys() | slave.keys() if master.get(name) != slave.get(name))
