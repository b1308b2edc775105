"""Copy-back of history rows: what the slave wrote while serving, appended to the master's tables, exactly once.

The master **pulls**: it reads the slave's rows over the connection replication
already uses (the slave's replication role, which may read the slave's tables
anyway) and writes only into its own database. The slave gets no access to the
master at all.

Exactly once, whatever interrupts it (this process killed, a link cut, the
master restarted): rows go over in chunks; each chunk is ONE master
transaction that inserts the rows *and* records each one in the ledger table
:data:`LEDGER` (source, table, the slave's id and a hash of the row's
content, the id given on the master). A chunk either commits whole, rows and
ledger together, or leaves nothing; a rerun skips every row the ledger holds.
The ledger lives in its own schema, which replication never copies (only
``public`` is).

Identity of a slave row: ``(source, table, id, hash)``. ``source`` is the
slave cluster's system identifier and database, so two slaves, or one slave
reinstalled (ids restart), never hide each other's rows; the hash covers
every column but the id and the columns in :data:`MUTABLE_COLUMNS`, so a row
whose id is reused with other content is copied.

Ids: every copied row takes a new id from the master's own sequence (the
slave's id may be in use on the master, or be handed out there later). No
other table refers to these ids; the references between history rows are
text (``cel.uniqueid``/``linkedid``, ``queue_log.callid``) and are kept
as they are. ``cel.call_log_id`` names a call log in the *slave's*
wazo-call-logd database: it is copied as NULL, so the master's
wazo-call-logd sees the events as not yet turned into call logs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from psycopg2 import sql
from psycopg2.extras import execute_values

from wazo_ha_core import AlreadyRunning, PluginError

LEDGER_SCHEMA = "wazo_ha_copy_back"
LEDGER = "copied_row"
#: The history tables of the configuration database a serving node writes (WAZO-FACTS: excluded from
#: replication). The stat_* tables are not here: wazo-stat rebuilds them from queue_log on the master.
DEFAULT_TABLES = ("cel", "queue_log")
#: Columns set to NULL on the copy and left out of the row's hash: they point into the slave's own databases.
MUTABLE_COLUMNS = {"cel": ("call_log_id",)}
#: Columns that bound "since when" per table (``since`` argument).
TIME_COLUMNS = {"cel": "eventtime", "queue_log": "time"}
#: Master-side advisory lock ("wazo-cb" in ASCII): one copy-back at a time into a master.
MASTER_LOCK_KEY = 0x77617A6F2D6362
LEDGER_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {LEDGER_SCHEMA};
CREATE TABLE IF NOT EXISTS {LEDGER_SCHEMA}.{LEDGER} (
    source text NOT NULL,
    table_name text NOT NULL,
    source_id bigint NOT NULL,
    row_hash text NOT NULL,
    target_id bigint NOT NULL,
    copied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, table_name, source_id, row_hash)
);
"""


@dataclass
class TableFigures:
    """One table's outcome: rows read on the slave, copied now, and skipped (already on the master)."""

    read: int = 0
    copied: int = 0
    already: int = 0


@dataclass
class RowsReport:
    source: str
    dry_run: bool
    tables: dict[str, TableFigures] = field(default_factory=dict)

    @property
    def copied(self) -> int:
        return sum(figures.copied for figures in self.tables.values())

    def figures(self) -> dict:
        return {
            "rows_copied": self.copied,
            **{f"rows_{name}": figures.copied for name, figures in self.tables.items()},
            **{f"rows_{name}_already": figures.already for name, figures in self.tables.items()},
        }


def source_identity(slave) -> str:
    """The slave cluster's system identifier and database name (``pg_control_system``), else its database OID."""
    with slave.cursor() as cursor:
        try:
            cursor.execute("SELECT system_identifier::text, current_database() FROM pg_control_system()")
            system_id, database = cursor.fetchone()
        except Exception:  # pg_control_system() not granted: the database's own OID is unique enough per cluster
            slave.rollback()
            cursor.execute("SELECT 'oid-' || oid::text, datname FROM pg_database WHERE datname = current_database()")
            system_id, database = cursor.fetchone()
    slave.rollback()
    return f"{system_id}/{database}"


def _columns(connection, table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped "
            "ORDER BY attnum",
            (f"public.{table}",),
        )
        return [row[0] for row in cursor.fetchall()]


def _sequence(master, table: str) -> str:
    with master.cursor() as cursor:
        cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", (f"public.{table}",))
        (sequence,) = cursor.fetchone()
    if sequence is None:
        raise PluginError(f"copy-back: table public.{table} on the master has no sequence behind its id column")
    return sequence


def copy_back_rows(
    master,
    slave,
    *,
    tables: tuple[str, ...] = DEFAULT_TABLES,
    since: datetime | None = None,
    chunk_rows: int = 2000,
    dry_run: bool = False,
    after_chunk=None,
) -> RowsReport:
    """Append the slave's rows of ``tables`` missing from the master; exactly once.

    ``master`` and ``slave`` are psycopg2 connections (autocommit off; the
    session settings of :mod:`.connection`, so both print values the same
    way). ``since`` limits the rows to those whose time column is at or after
    it. ``dry_run`` counts what would be copied and writes nothing (not even
    the ledger). ``after_chunk(table, copied_so_far)`` is called after each
    commit (tests, progress).

    Raises :class:`AlreadyRunning` when another copy-back into this master
    holds its lock, :class:`PluginError` when a table is missing or differs
    between the two sides; psycopg2 errors propagate (the chunk in flight is
    rolled back, the chunks before it stay, the next run goes on from there).
    """
    source = source_identity(slave)
    report = RowsReport(source, dry_run)
    with master.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", (MASTER_LOCK_KEY,))
        if not cursor.fetchone()[0]:
            master.rollback()
            raise AlreadyRunning("copy-back already running into this master (advisory lock held)")
        if not dry_run:
            cursor.execute(LEDGER_DDL)
    master.commit()
    try:
        for table in tables:
            report.tables[table] = _copy_table(master, slave, table, source, since, chunk_rows, dry_run, after_chunk)
    finally:
        master.rollback()
        with master.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (MASTER_LOCK_KEY,))
        master.commit()
    return report


def _copy_table(master, slave, table, source, since, chunk_rows, dry_run, after_chunk) -> TableFigures:
    slave_columns, master_columns = _columns(slave, table), _columns(master, table)
    if not slave_columns:
        raise PluginError(f"copy-back: table public.{table} is missing on the slave")
    if "id" not in master_columns or set(slave_columns) - set(master_columns):
        extra = sorted(set(slave_columns) - set(master_columns))
        raise PluginError(
            f"copy-back: table public.{table} differs between slave and master (columns only on the slave: "
            f"{', '.join(extra) or 'none'}; both nodes must run the same Wazo version)"
        )
    mutable = MUTABLE_COLUMNS.get(table, ())
    data = [column for column in slave_columns if column != "id" and column not in mutable]
    sequence = None if dry_run else _sequence(master, table)
    figures = TableFigures()
    last_id = None
    while True:
        rows = _read_chunk(slave, table, data, mutable, since, last_id, chunk_rows)
        if not rows:
            break
        last_id = rows[-1][0]
        figures.read += len(rows)
        copied = _write_chunk(master, table, data, source, sequence, rows, dry_run)
        figures.copied += copied
        figures.already += len(rows) - copied
        if after_chunk is not None:
            after_chunk(table, figures.copied)
    slave.rollback()
    return figures


def _read_chunk(slave, table, data, mutable, since, last_id, chunk_rows) -> list[tuple]:
    """``(id, hash, *data as text)`` of the next rows by id (keyset: stable while the slave writes)."""
    identifiers = [sql.Identifier(column) for column in data]
    hashed = sql.SQL("md5(ROW({})::text)").format(sql.SQL(", ").join(identifiers))
    as_text = sql.SQL(", ").join(sql.SQL("{}::text").format(identifier) for identifier in identifiers)
    conditions, params = [], []
    if last_id is not None:
        conditions.append(sql.SQL("id > %s"))
        params.append(last_id)
    if since is not None and table in TIME_COLUMNS:
        conditions.append(sql.SQL("{} >= %s").format(sql.Identifier(TIME_COLUMNS[table])))
        params.append(since)
    where = sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conditions) if conditions else sql.SQL("")
    query = sql.SQL("SELECT id, {}, {} FROM public.{}{} ORDER BY id LIMIT %s").format(
        hashed, as_text, sql.Identifier(table), where
    )
    with slave.cursor() as cursor:
        cursor.execute(query, [*params, chunk_rows])
        return cursor.fetchall()


def _write_chunk(master, table, data, source, sequence, rows, dry_run) -> int:
    """One master transaction: the chunk's new rows and their ledger entries, or nothing. Returns rows copied."""
    columns = sql.SQL(", ").join(sql.Identifier(column) for column in data)
    try:
        with master.cursor() as cursor:
            cursor.execute(
                sql.SQL(
                    "CREATE TEMP TABLE incoming ON COMMIT DROP AS "
                    "SELECT NULL::bigint AS source_id, NULL::text AS row_hash, NULL::bigint AS target_id, {} "
                    "FROM public.{} LIMIT 0"
                ).format(columns, sql.Identifier(table))
            )
            execute_values(
                cursor,
                sql.SQL("INSERT INTO incoming (source_id, row_hash, {}) VALUES %s").format(columns).as_string(cursor),
                rows,
                page_size=1000,
            )
            if not dry_run or _ledger_exists(cursor):
                cursor.execute(
                    sql.SQL(
                        "DELETE FROM incoming i USING {}.{} l WHERE l.source = %s AND l.table_name = %s "
                        "AND l.source_id = i.source_id AND l.row_hash = i.row_hash"
                    ).format(sql.Identifier(LEDGER_SCHEMA), sql.Identifier(LEDGER)),
                    (source, table),
                )
            if dry_run:
                cursor.execute("SELECT count(*) FROM incoming")
                return cursor.fetchone()[0]
            cursor.execute("UPDATE incoming SET target_id = nextval(%s::regclass)", (sequence,))
            copied = cursor.rowcount
            cursor.execute(
                sql.SQL("INSERT INTO public.{} (id, {}) SELECT target_id, {} FROM incoming ORDER BY source_id").format(
                    sql.Identifier(table), columns, columns
                )
            )
            cursor.execute(
                sql.SQL(
                    "INSERT INTO {}.{} (source, table_name, source_id, row_hash, target_id) "
                    "SELECT %s, %s, source_id, row_hash, target_id FROM incoming"
                ).format(sql.Identifier(LEDGER_SCHEMA), sql.Identifier(LEDGER)),
                (source, table),
            )
        if dry_run:
            master.rollback()
        else:
            master.commit()
        return copied
    except BaseException:
        master.rollback()
        raise
    finally:
        if dry_run:
            master.rollback()


def _ledger_exists(cursor) -> bool:
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{LEDGER_SCHEMA}.{LEDGER}",))
    return cursor.fetchone()[0]
