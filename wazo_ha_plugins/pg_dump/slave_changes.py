"""Slave-side configuration edits: detected before a copy would overwrite them, listed, exported as SQL.

**Marks.** At the end of every verified copy, inside the slave transaction
that commits it, the plugin records a *mark* of each replicated table of
the slave: ``[rows, content checksum]``, the checksum of :mod:`.checks`
computed without the columns a failover explains
(:data:`wazo_ha_core.user_statuses.FAILOVER_COLUMNS`: the users' DND,
forwards, … set from their phones while the slave served). Excluded tables
(``cel``, ``queue_log``, … see :data:`.catalog.DEFAULT_EXCLUDED_TABLES`) are
never replicated, so never marked. Marks are kept in the plugin's state
(key ``slave_marks <slave>``, :func:`state_key`: a master with several
standbys keeps each one's marks), per peer and database.

**Check** (:class:`Guard`), before anything is written: a table whose slave
mark differs from the recorded one *and* from the master's (same
expression, the run's snapshot) holds edits made on the slave that the copy
would lose: the run raises :class:`~wazo_ha_core.errors.SlaveChangesPending`
naming each table with its row counts (slave now, at the last copy, master),
and writes nothing. A table the slave changed the same way as the master
(e.g. after the operator replayed the export on the master) passes. With
``discard`` the copy goes on and the tables are listed in the figures
(``slave_changes_discarded``). No recorded marks (first copy, another peer)
→ nothing to compare, nothing refused.

**Listing** (:func:`compare`, ``wazo-ha slave-changes show``): the last copy
itself is not kept, so each flagged table is compared **row by row with the
master's current rows**, by primary key (``added`` on the slave, ``changed``
with the columns that differ, ``removed`` on the slave); a table without a
primary key by whole rows. A change the master made since the last copy
shows too (as its reverse): the listing is "what the copy would change",
restricted to tables the slave edited. Values are read as text.

**Export** (:func:`render_sql`): one transaction of ``INSERT``/``UPDATE``/
``DELETE`` statements that give the master the slave's version of those
rows; identifiers double-quoted, literals single-quoted with
``standard_conforming_strings`` on (set by the script), so quotes,
backslashes, newlines and any UTF-8 text replay as they were.
"""

from __future__ import annotations

import dataclasses
import time
from datetime import UTC, datetime
from typing import Any

from psycopg2 import sql

from wazo_ha_core import SlaveChangesPending
from wazo_ha_core.user_statuses import FAILOVER_COLUMNS

from . import catalog as cat
from .checks import content_of, scan

STATE_KEY = "slave_marks"


def state_key(peer: str) -> str:
    """Where one slave's marks are kept. Before, one value held the marks of whichever standby was copied
    last, so with two standbys the other's edits were never found: :meth:`Guard.recorded` still reads
    that value (:data:`STATE_KEY`) when it holds this slave's marks and nothing newer does."""
    return f"{STATE_KEY} {peer}"


#: Rows listed per table and kind in a refusal or ``show``; the export is never truncated.
SHOWN_ROWS = 50

_KEY_COLUMNS = """
SELECT a.attname::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position) ON true
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
WHERE n.nspname = %s AND c.relname = %s AND i.indisprimary
ORDER BY k.position
"""


def _without_failover_columns(table: cat.Table) -> cat.Table:
    """The table as the mark sees it: the columns a failover explains left out."""
    ignored = set(FAILOVER_COLUMNS.get(table.name, ()))
    if not ignored:
        return table
    native = table.native_hash or (False,) * len(table.columns)
    kept = [(column, plain) for column, plain in zip(table.columns, native, strict=True) if column not in ignored]
    return dataclasses.replace(table, columns=tuple(c for c, _ in kept), native_hash=tuple(n for _, n in kept))


def marks(cursor, tables: list[cat.Table], figures: dict[str, list] | None = None) -> dict[str, list]:
    """``{table: [rows, checksum]}`` without the failover columns.

    ``figures``: a :func:`.checks.scan` with checksums of the same tables in
    the same transaction, reused for the tables that have no failover columns.
    """
    own = [table for table in tables if table.name in FAILOVER_COLUMNS or not figures or table.name not in figures]
    result = {name: content_of(values) for name, values in (figures or {}).items()}
    if own:
        scanned = scan(cursor, [_without_failover_columns(table) for table in own], checksums=True)
        result.update({name: content_of(values) for name, values in scanned.items()})
    return {table.name: [int(result[table.name][0]), str(result[table.name][1])] for table in tables}


#: The checksum's formula (checks.py) the marks were computed with: marks of another formula cannot be
#: compared and count as none (2: the row hash hashed again before the sum).
CHECKSUM_FORMULA = 2


def _identity(peer: str, database: str) -> dict[str, Any]:
    return {"peer": peer, "database": database, "checksum": CHECKSUM_FORMULA}


class Guard:
    """One run's check before writing, and the marks it records after the commit."""

    def __init__(self, state, peer: str, database: str, discard: bool = False):
        self.state, self.identity, self.discard = state, _identity(peer, database), discard
        self.discarded: list[str] = []

    def recorded(self) -> dict[str, Any] | None:
        saved = self.state.get(state_key(self.identity["peer"]))
        if saved is None:  # recorded by a version that kept one value for every slave
            saved = self.state.get(STATE_KEY)
        if not saved or {key: saved.get(key) for key in self.identity} != self.identity:
            return None
        return saved

    def check(self, source, target, tables: list[cat.Table], slave_figures: dict[str, list]) -> None:
        """Raise :class:`SlaveChangesPending` when the slave holds edits the copy would overwrite."""
        saved = self.recorded()
        if saved is None:
            return
        before = saved["tables"]
        slave = marks(target, tables, slave_figures or None)
        suspects = [table for table in tables if table.name in before and slave[table.name] != before[table.name]]
        if not suspects:
            return
        master = marks(source, suspects)
        edited = [table.name for table in suspects if master[table.name] != slave[table.name]]
        if not edited:
            return
        if self.discard:
            self.discarded = edited
            return
        detail = ", ".join(
            f"{name} ({slave[name][0]} rows on the slave, {before[name][0]} at the last copy, "
            f"{master[name][0]} on the master)"
            for name in edited
        )
        raise SlaveChangesPending(
            f"the slave {self.identity['peer']}'s configuration was edited since the last good copy "
            f"({saved.get('at', 'time unknown')}) and this replication would overwrite it: {detail}. Review with "
            "`wazo-ha slave-changes show`; keep the edits with `wazo-ha slave-changes export FILE` replayed on "
            "the master (`psql asterisk -f FILE`); or overwrite them with `wazo-ha replicate --discard-slave-changes`",
            edited,
        )

    def remember(self, slave_marks: dict[str, list]) -> None:
        """After the commit: these marks are the slave as the copy left it."""
        at = datetime.now(UTC).replace(microsecond=0).isoformat()
        self.state.set(state_key(self.identity["peer"]), {**self.identity, "at": at, "tables": slave_marks})


# --- listing and export --------------------------------------------------------------------------------


def key_columns(cursor, table: str) -> list[str]:
    cursor.execute(_KEY_COLUMNS, (cat.SCHEMA, table))
    return [row[0] for row in cursor.fetchall()]


def _rows(cursor, table: cat.Table) -> list[tuple]:
    """Every row, each value as text (``None`` for NULL), in the master's column order."""
    cursor.execute(
        sql.SQL("SELECT {} FROM ONLY {}").format(
            sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(column)) for column in table.columns),
            table.ident,
        )
    )
    return cursor.fetchall()


def table_changes(source, target, table: cat.Table) -> dict[str, Any]:
    """The slave's rows of ``table`` against the master's: added, changed, removed on the slave."""
    columns = list(table.columns)
    ignored = set(FAILOVER_COLUMNS.get(table.name, ()))
    key = key_columns(source, table.name)
    master_rows, slave_rows = _rows(source, table), _rows(target, table)
    if not key:  # no primary key: whole rows, as multisets
        remaining = list(master_rows)
        added = []
        for row in slave_rows:
            if row in remaining:
                remaining.remove(row)
            else:
                added.append(dict(zip(columns, row, strict=True)))
        removed = [dict(zip(columns, row, strict=True)) for row in remaining]
        return {"table": table.name, "key": [], "added": added, "changed": [], "removed": removed}
    positions = [columns.index(column) for column in key]

    def keyed(rows):
        return {tuple(row[p] for p in positions): row for row in rows}

    on_master, on_slave = keyed(master_rows), keyed(slave_rows)
    added = [dict(zip(columns, on_slave[k], strict=True)) for k in sorted(on_slave.keys() - on_master.keys(), key=str)]
    removed = [dict(zip(key, k, strict=True)) for k in sorted(on_master.keys() - on_slave.keys(), key=str)]
    changed = []
    for k in sorted(on_master.keys() & on_slave.keys(), key=str):
        differing = {
            column: [m, s]
            for column, m, s in zip(columns, on_master[k], on_slave[k], strict=True)
            if m != s and column not in ignored
        }
        if differing:
            changed.append({"key": dict(zip(key, k, strict=True)), "columns": differing})
    return {"table": table.name, "key": key, "added": added, "changed": changed, "removed": removed}


def compare(source, target, tables: list[cat.Table], recorded: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Per table the slave edited (against ``recorded`` marks, or every table when none): its row changes."""
    slave = marks(target, tables)
    master = marks(source, tables)
    before = (recorded or {}).get("tables")
    flagged = [
        table
        for table in tables
        if slave[table.name] != master[table.name] and (before is None or slave[table.name] != before.get(table.name))
    ]
    result = []
    for table in flagged:
        changes = table_changes(source, target, table)
        if changes["added"] or changes["changed"] or changes["removed"]:
            result.append(changes)
    return result


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str | None) -> str:
    """A standard SQL literal (``standard_conforming_strings`` on: a backslash is itself)."""
    if value is None:
        return "NULL"
    if "\x00" in value:
        raise ValueError("a text value with a NUL character cannot be written as a PostgreSQL literal")
    return "'" + value.replace("'", "''") + "'"


def _where(key: dict[str, str | None]) -> str:
    return " AND ".join(
        f"{quote_ident(column)} IS NULL" if value is None else f"{quote_ident(column)} = {quote_literal(value)}"
        for column, value in key.items()
    )


def render_sql(changes: list[dict[str, Any]], *, peer: str, generated: float | None = None) -> str:
    """The SQL giving the master the slave's version of the listed rows (one transaction, to review first)."""
    stamp = datetime.fromtimestamp(generated or time.time(), UTC).replace(microsecond=0).isoformat()
    lines = [
        f"-- wazo-ha slave-changes export: configuration edits found on the slave {peer}, {stamp}.",
        "-- Review, then replay on the MASTER: psql asterisk -v ON_ERROR_STOP=1 -f THIS_FILE",
        "-- Rows the master changed since the last copy appear too (as their reverse): drop those lines.",
        "-- Inserted rows keep the slave's ids: check they do not clash with rows created on the master since.",
        "SET standard_conforming_strings = on;",
        "SET client_encoding = 'UTF8';",
        "BEGIN;",
    ]
    for table in changes:
        ident = f"{quote_ident(cat.SCHEMA)}.{quote_ident(table['table'])}"
        lines.append(f"-- {table['table']}")
        for key in table["removed"]:
            # A script for the operator, every name and value quoted by quote_ident/quote_literal.
            lines.append(f"DELETE FROM {ident} WHERE {_where(key)};")  # noqa: S608
        for change in table["changed"]:
            assignments = ", ".join(
                f"{quote_ident(column)} = {quote_literal(values[1])}" for column, values in change["columns"].items()
            )
            lines.append(f"UPDATE {ident} SET {assignments} WHERE {_where(change['key'])};")  # noqa: S608
        for row in table["added"]:
            columns = ", ".join(quote_ident(column) for column in row)
            values = ", ".join(quote_literal(value) for value in row.values())
            lines.append(f"INSERT INTO {ident} ({columns}) VALUES ({values});")  # noqa: S608
    lines.append("COMMIT;")
    return "\n".join(lines) + "\n"


def list_changes(plugin, peer: str) -> dict[str, Any]:
    """Both databases read in one repeatable-read snapshot each; nothing written. See :func:`compare`."""
    import psycopg2.errors

    from wazo_ha_core import PluginError, PluginTimeout

    from .connection import first_line

    timeout = float(plugin.config["timeout"])
    try:
        with plugin.reading_both(peer) as (master, slave):
            return _listed(plugin, peer, master.cursor(), slave.cursor())
    except psycopg2.errors.QueryCanceled as exc:
        raise PluginTimeout(f"listing the slave's changes exceeded {timeout:g} s: {first_line(exc)}") from None
    except psycopg2.Error as exc:
        raise PluginError(f"listing the slave {peer}'s changes failed: {first_line(exc)}") from None


def _listed(plugin, peer: str, source, target) -> dict[str, Any]:
    catalog = cat.read_catalog(source, plugin.excluded)
    recorded = Guard(plugin.context.state, peer, plugin.config["database"]).recorded()
    tables = compare(source, target, catalog.tables, recorded)
    return {
        "method": (
            "tables whose slave rows changed since the last good copy ("
            + (recorded or {}).get("at", "none recorded: every table that differs from the master")
            + "), compared row by row with the master's current rows by primary key"
        ),
        "tables": tables,
        "sql": render_sql(tables, peer=peer),
    }
