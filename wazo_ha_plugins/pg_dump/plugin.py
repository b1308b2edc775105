"""The ``pg_dump`` replication backend: the configuration DB streamed master → slave, atomically.

One run (see :meth:`PgDumpReplication.replicate`):

1. connect to the master (local) and the slave (the peer), each bounded by
   ``timeouts.connect``, the slave with the TLS settings (:mod:`.tls`; the
   figure ``tls`` says whether the link was clear, encrypted or verified);
   take the slave's advisory lock (a second run, from any node, gets
   :class:`AlreadyRunning`);
2. preflight: same ``alembic_version``, slave database UTF-8, every
   replicated table/column/sequence present on the slave, permission to
   write them and to disable foreign-key triggers;
3. fingerprint the master's replicated data (in the snapshot the copy will
   read) and the slave's; both equal to the last good copy → ``skipped``;
4. checksum the slave's tables; the master's come table by table from a
   second session in the same snapshot (:class:`_TableByTable`) while, in
   ONE slave transaction with ``session_replication_role = replica`` (the
   ``tenant`` ↔ ``endpoint_sip`` cycle), each table that differs is brought
   to the master's rows (:mod:`.apply`: loaded straight in when empty on the
   slave, compared by primary key and only the differing keys' rows fetched
   (:mod:`.keyed`), or streamed whole when most rows differ or it has no
   key; or ``TRUNCATE`` and reload); sequences set with the transactional
   ``ALTER SEQUENCE … RESTART``;
5. verify: row counts and content checksums of every written table, and
   sequence values, equal to the master's; a table compared by key that
   still differs (a collision of the comparison's row hash, which is not
   the checksum's) is rewritten whole and checked again; any other
   difference rolls back and names the tables;
6. commit, remember the fingerprints in ``context.state``.

Before step 4 writes anything, :mod:`.slave_changes` refuses the run when
the slave's configuration was edited since the last good copy (unless
``discard_slave_changes``); it records the slave's marks with each commit.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Any

import psycopg2
import psycopg2.errors
from psycopg2 import sql

from wazo_ha_core import (
    AlreadyRunning,
    OperationResult,
    PeerUnreachable,
    PluginError,
    PluginTimeout,
    PreflightError,
    ReplicationBackend,
)

from . import apply, since_copy, since_verified, slave_changes, tls, user_statuses
from . import catalog as cat
from .checks import (
    checksums_of,
    content_of,
    differences,
    fingerprint_of,
    nonempty,
    scan,
    sequence_values,
)
from .connection import Endpoint, close_quietly, connect, first_line
from .stream import SourceFailed

#: Key of the session advisory lock taken on the slave ("wazo-ha" in ASCII).
ADVISORY_LOCK_KEY = 0x77617A6F2D6861
STATE_KEY = "last_good"
WRITE_MODES = {
    "changed_rows": "writes only the rows that differ, readers never blocked",
    "truncate": "rewrites every table, readers blocked until commit",
}


def _no_progress(message: str, figures: dict[str, Any]) -> None:
    pass


class PgDumpReplication(ReplicationBackend):
    """Streams schema ``public`` of the configuration database to the slave."""

    default_config = {
        "database": "asterisk",
        "master_host": "/var/run/postgresql",
        "master_port": 5432,
        "master_user": "postgres",
        "master_password_file": None,
        "slave_port": 5432,
        "slave_user": None,  # null: the replication role of issue 6, setting slave_db.role
        "slave_password_file": None,  # null (and no passfile): setting paths.replication_password
        "passfile": None,
        "require_password": True,
        **tls.DEFAULTS,  # sslmode prefer; sslrootcert, sslcrl null
        "write_mode": "changed_rows",
        "exclude_tables_add": [],
        "exclude_tables_remove": [],
        "timeout": 600,
        "progress_bytes": 1 << 20,
    }

    def __init__(self, context):
        super().__init__(context)
        self._validate_config()
        self.excluded = cat.excluded_names(self.config["exclude_tables_add"], self.config["exclude_tables_remove"])
        self._signal = None  # follow mode's MasterChangeSignal, opened on first use

    # --- settings -------------------------------------------------------------------

    def _validate_config(self) -> None:
        config = self.config

        def bad(key: str, expected: str) -> PluginError:
            return PluginError(f"plugin_config.{self.name}.{key} must be {expected}, got {config[key]!r}")

        unknown = sorted(set(config) - set(self.default_config))
        if unknown:
            raise PluginError(f"plugin_config.{self.name}: unknown key(s) {', '.join(unknown)}")
        for key in ("database", "master_host", "master_user"):
            if not isinstance(config[key], str) or not config[key]:
                raise bad(key, "a non-empty string")
        if config["slave_user"] is not None and not (isinstance(config["slave_user"], str) and config["slave_user"]):
            raise bad("slave_user", "a non-empty string or null")
        for key in ("master_port", "slave_port"):
            if isinstance(config[key], bool) or not isinstance(config[key], int) or not 0 < config[key] < 65536:
                raise bad(key, "a TCP port number")
        for key in ("master_password_file", "slave_password_file", "passfile"):
            if config[key] is not None and not (isinstance(config[key], str) and config[key].startswith("/")):
                raise bad(key, "an absolute path or null")
        for key in ("exclude_tables_add", "exclude_tables_remove"):
            value = config[key]
            if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
                raise bad(key, "a list of table names")
        for key in ("timeout", "progress_bytes"):
            if isinstance(config[key], bool) or not isinstance(config[key], (int, float)) or config[key] <= 0:
                raise bad(key, "a positive number")
        if config["write_mode"] not in WRITE_MODES:
            raise bad("write_mode", " or ".join(f"{mode!r} ({meaning})" for mode, meaning in WRITE_MODES.items()))
        if not isinstance(config["require_password"], bool):
            raise bad("require_password", "true or false")
        tls.validate(config, f"plugin_config.{self.name}")

    def _path(self, key: str) -> Path | None:
        value = self.config[key]
        return None if value is None else self.context.settings.resolve(value)

    def master_endpoint(self) -> Endpoint:
        return Endpoint(
            "master",
            self.config["master_host"],
            self.config["master_port"],
            self.config["master_user"],
            self.config["database"],
            self._path("master_password_file"),
            self._path("passfile"),
        )

    @property
    def slave_user(self) -> str:
        """``slave_user``, else the replication role that enabling HA creates on the slave."""
        return self.config["slave_user"] or self.context.settings.get("slave_db.role")

    def slave_password_path(self) -> Path | None:
        """``slave_password_file``; else, unless a libpq passfile is set, the replication password file."""
        if self.config["slave_password_file"] is not None:
            return self._path("slave_password_file")
        if self.config["passfile"] is not None:
            return None
        return self.context.settings.path("replication_password")

    def slave_tls(self) -> tls.TlsSettings:
        return tls.TlsSettings(
            f"plugin_config.{self.name}", self.config["sslmode"], self._path("sslrootcert"), self._path("sslcrl")
        )

    def slave_endpoint(self, peer: str) -> Endpoint:
        """The slave's PostgreSQL as every connection to it (run, preflight, doctor) opens it, TLS included."""
        return Endpoint(
            "slave",
            peer,
            self.config["slave_port"],
            self.slave_user,
            self.config["database"],
            self.slave_password_path(),
            self._path("passfile"),
            self.slave_tls(),
        )

    def doctor_checks(self, node_type: str, peer: str | None, preflight: bool = False) -> list:
        """``wazo-ha doctor``: TCP, TLS of the link, same version, slave UTF-8, clock offset (see :mod:`.doctor`)."""
        from .doctor import pg_dump_checks  # only `wazo-ha doctor` needs it

        return pg_dump_checks(self, node_type, peer, preflight)

    def slave_changes(self, peer: str) -> dict[str, Any]:
        """``wazo-ha slave-changes``: the slave's edits since the last good copy (see :mod:`.slave_changes`)."""
        return slave_changes.list_changes(self, peer)

    # --- follow mode's hook (kept apart from the run: see .change_signal) --------------------

    def change_signal(self):
        if self._signal is None:
            from .change_signal import MasterChangeSignal

            connect_timeout = float(self.context.settings.get("timeouts.connect"))
            self._signal = MasterChangeSignal(self.master_endpoint(), self.excluded, connect_timeout)
        return self._signal.read()

    def close_change_signal(self) -> None:
        if self._signal is not None:
            self._signal.close()

    # --- the run ----------------------------------------------------------------------

    def replicate(
        self, peer: str, *, force: bool = False, progress=_no_progress, discard_slave_changes: bool = False
    ) -> OperationResult:
        started = time.monotonic()
        connect_timeout = float(self.context.settings.get("timeouts.connect"))
        timeout = float(self.config["timeout"])
        master = slave = None

        def connect_master():
            try:
                return connect(self.master_endpoint(), connect_timeout, timeout)
            except PeerUnreachable as exc:  # the master is this node: not a peer problem
                raise PluginError(str(exc)) from None

        run = None
        try:
            master = connect_master()
            slave = connect(
                self.slave_endpoint(peer), connect_timeout, timeout, require_password=self.config["require_password"]
            )
            master.set_session(isolation_level="REPEATABLE READ", readonly=True)
            run = _Run(self, peer, master, slave, progress, connect_master)
            run.compare_all = force  # an operator's --force: every table compared by checksum, no shortcut
            run.guard = slave_changes.Guard(self.context.state, peer, self.config["database"], discard_slave_changes)
            run.lock()
            # Before anything reads the master in the run's snapshot: what it commits must be in that snapshot
            # (and moves the master's marker, so a run that carried statuses back is never skipped).
            run.carry_back_user_statuses()
            if not force and run.unchanged_since_verified():  # a few catalogue reads, no scan
                return run.result("skipped", time.monotonic() - started)
            run.preflight()
            if not force and run.unchanged():
                return run.result("skipped", time.monotonic() - started)
            run.copy_verify_commit()
            return run.result("copied", time.monotonic() - started)
        except psycopg2.errors.QueryCanceled as exc:
            raise PluginTimeout(
                f"replication to {peer} exceeded plugin_config.{self.name}.timeout ({timeout:g} s): "
                f"{first_line(exc)}; the slave was left unchanged"
            ) from None
        except psycopg2.Error as exc:
            raise PluginError(
                f"replication to {peer} failed: {first_line(exc)}; the slave was left unchanged"
            ) from None
        finally:
            if run is not None:
                close_quietly(run.side)
            close_quietly(master)
            close_quietly(slave)

    # --- the skip cache (wazo_ha_core.skip_cache): a scheduled run skipped without the store ---------

    def skip_cache_entry(self, peer: str) -> dict[str, Any] | None:
        """What :meth:`skipped_by_cache` needs, read from the state after a skipped run: the markers
        recorded for ``peer`` with the last good copy, or ``None`` when there are none."""
        state = self.context.state
        recorded = since_verified.recorded_for(state, since_verified.scope(state.get(STATE_KEY), self.excluded))
        if recorded is None or recorded["scope"].get("peer") != peer:
            return None
        return {"markers": recorded}

    def skipped_by_cache(self, peer: str, entry: Any) -> OperationResult | None:
        """A ``skipped`` result when both servers' markers still equal ``entry``'s (read live, here and now),
        ``None`` when anything differs or ``entry`` is not one :meth:`skip_cache_entry` made for this peer,
        database and these excluded tables. Reads no state; raises what connecting raises."""
        started = time.monotonic()
        recorded = entry.get("markers") if isinstance(entry, dict) else None
        scope = recorded.get("scope") if isinstance(recorded, dict) else None
        if not isinstance(scope, dict) or (scope.get("peer"), scope.get("database"), scope.get("excluded")) != (
            peer,
            self.config["database"],
            sorted(self.excluded),
        ):
            return None
        with self.reading_both(peer) as (master, slave):
            run = _Run(self, peer, master, slave, _no_progress, None)
            if not run.markers_still(recorded):
                return None
            return run.result("skipped", time.monotonic() - started)

    @contextlib.contextmanager
    def reading_both(self, peer: str):
        """``(master, slave)`` connections, each in one read-only repeatable-read snapshot, closed on exit.
        Connecting is bounded by ``timeouts.connect``, each statement by the plugin's ``timeout``; raises what
        :func:`.connection.connect` raises."""
        connect_timeout = float(self.context.settings.get("timeouts.connect"))
        timeout = float(self.config["timeout"])
        master = slave = None
        try:
            master = connect(self.master_endpoint(), connect_timeout, timeout)
            slave = connect(
                self.slave_endpoint(peer), connect_timeout, timeout, require_password=self.config["require_password"]
            )
            for connection in (master, slave):
                connection.set_session(isolation_level="REPEATABLE READ", readonly=True)
            yield master, slave
        finally:
            close_quietly(master)
            close_quietly(slave)

    # --- copy-back of history rows (the master pulls; see copy_back.py) -----------------

    def copy_back_rows(self, peer: str, *, dry_run: bool = False, progress=_no_progress) -> OperationResult:
        """``cel`` and ``queue_log`` rows the slave wrote, appended here exactly once (:mod:`.copy_back`)."""
        from .copy_back import copy_back_rows

        started = time.monotonic()
        connect_timeout = float(self.context.settings.get("timeouts.connect"))
        timeout = float(self.config["timeout"])
        master = slave = None
        try:
            try:
                master = connect(self.master_endpoint(), connect_timeout, timeout)
            except PeerUnreachable as exc:  # the master is this node
                raise PluginError(str(exc)) from None
            slave = connect(
                self.slave_endpoint(peer), connect_timeout, timeout, require_password=self.config["require_password"]
            )
            slave.set_session(readonly=True)

            def after_chunk(table: str, copied: int) -> None:
                progress(f"copy-back {table}: {copied} rows", {"table": table, "rows": copied})

            report = copy_back_rows(master, slave, dry_run=dry_run, after_chunk=after_chunk)
        except psycopg2.errors.QueryCanceled as exc:
            raise PluginTimeout(
                f"copy-back of rows from {peer} exceeded plugin_config.{self.name}.timeout ({timeout:g} s): "
                f"{first_line(exc)}; rows already copied stay, the next run copies the rest"
            ) from None
        except psycopg2.Error as exc:
            raise PluginError(
                f"copy-back of rows from {peer} failed: {first_line(exc)}; rows already copied stay, "
                "the next run copies the rest"
            ) from None
        finally:
            close_quietly(master)
            close_quietly(slave)
        figures = {**report.figures(), "seconds": round(time.monotonic() - started, 3)}
        counts = ", ".join(f"{name} {table.copied}" for name, table in report.tables.items())
        verb = "would copy" if dry_run else "copied"
        return OperationResult("copied" if report.copied else "skipped", f"rows {verb}: {counts}", figures)


class _Background:
    """``work(cursor)`` in a thread; :meth:`result` re-raises its error. Keeps both servers busy at once."""

    def __init__(self, name: str, cursor, work):
        self.cursor, self.value, self.error = cursor, None, None
        self.thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self.thread.start()

    def _run(self, work) -> None:
        try:
            self.value = work(self.cursor)
        except BaseException as exc:  # re-raised by result()
            self.error = exc

    def result(self):
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.value

    def abandon(self) -> None:
        """Stop waiting for it: cancel its statement, let the thread end."""
        if self.thread.is_alive():
            try:
                self.cursor.connection.cancel()
            except psycopg2.Error:
                pass  # nothing running any more, or the connection is gone
            self.thread.join(timeout=10)


class _TableByTable:
    """The master's checksums, one table after the other, in a thread: each is ready before the slave needs it."""

    def __init__(self, cursor, tables: list[cat.Table]):
        self.tables = tables
        self.ready: dict[str, list] = {}
        self.changed = threading.Condition()
        self.background = _Background("checksums-master", cursor, self._scan_all)

    def _scan_all(self, cursor) -> dict[str, list]:
        try:
            for table in self.tables:
                figures = scan(cursor, [table], checksums=True)
                with self.changed:
                    self.ready.update(figures)
                    self.changed.notify_all()
        finally:
            with self.changed:
                self.changed.notify_all()  # a waiter learns of the error too
        return self.ready

    def get(self, name: str) -> list:
        """``[rows, xmin_sum, row_hash_sum]`` of one table, once computed."""
        with self.changed:
            self.changed.wait_for(lambda: name in self.ready or not self.background.thread.is_alive())
        if name not in self.ready:
            self.background.result()  # raises the thread's error
        return self.ready[name]

    def all(self) -> dict[str, list]:
        return self.background.result()

    def abandon(self) -> None:
        self.background.abandon()


class _Run:
    """One replication: the two connections and what was learnt along the way."""

    def __init__(self, plugin: PgDumpReplication, peer: str, master, slave, progress, connect_master):
        self.plugin, self.peer, self.progress = plugin, peer, progress
        self.connect_master, self.side = connect_master, None  # a second master session, same snapshot
        self.master, self.slave = master, slave
        self.binary = False  # COPY in binary: both databases UTF8 (set by preflight)
        self.truncate = plugin.config["write_mode"] == "truncate"  # rewrite every table, without comparing
        self.compare_all = False  # leave out no table the last copy's record says unchanged (.since_copy)
        self.source, self.target = master.cursor(), slave.cursor()
        self.catalog: cat.Catalog | None = None
        self.guard: slave_changes.Guard | None = None
        self.known: dict[str, Any] = {}  # the catalogue's figures, as recorded with the markers (when skipped by them)
        self.fingerprints: dict[str, str] = {}
        # Both servers' fingerprint scans (checks.scan without checksums), when unchanged() read them: the
        # copy that follows reuses them to leave out the tables unchanged since the last copy (.since_copy).
        self.scans: dict[str, dict[str, list]] | None = None
        self.since: since_copy.Findings | None = None  # set by copy_verify_commit
        # tables: replicated (all verified); written_tables: those that differed and were written;
        # rows: rows written; deleted: rows removed (not counted by TRUNCATE); tls: the link to the
        # slave, clear, encrypted (certificate not checked) or verified.
        self.figures: dict[str, Any] = {
            "tables": 0,
            "written_tables": 0,
            "rows": 0,
            "deleted": 0,
            "bytes": 0,
            "sequences": 0,
            "tls": plugin.slave_tls().link_kind(slave),
            # per written table, how (apply.Applied.method): load, keys, whole or reload; keys: the
            # differing keys the key comparisons found (their rows alone travelled); rewritten after
            # verification: compared by key, still differing (a row-hash collision), rewritten whole.
            "methods": {},
            "keys": 0,
            # per table compared per bucket of keys first (keyed.py): how many buckets differed, the only
            # ones whose keys were compared
            "buckets": {},
            "rewritten_after_verification": [],
            # where the copy's time went (seconds): compare (the slave's checksums), write (every table's
            # comparison by key and writes, and the sequences), verify, rewrite, wait_master, commit
            "phase_seconds": {},
        }

    def lock(self) -> None:
        self.target.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        if not self.target.fetchone()[0]:
            raise AlreadyRunning(
                f"replication already running: another run holds the lock on the slave {self.peer}'s database"
            )

    def carry_back_user_statuses(self) -> None:
        plan = user_statuses.carry_back(self.connect_master, self.target, self.plugin.context.state)
        if plan is not None:
            self.figures.update(plan.figures())

    def preflight(self) -> None:
        # The master's half (its encoding, version, catalog) is read while the slave answers its own.
        master_user = self.plugin.config["master_user"]

        def master_side(cursor) -> tuple:
            version = cat.schema_version(cursor, "master", master_user)
            return cat.database_encoding(cursor), version, cat.read_catalog(cursor, self.plugin.excluded)

        master = _Background("preflight-master", self.source, master_side)
        try:
            encoding = cat.database_encoding(self.target)
            if encoding != "UTF8":
                raise PreflightError(
                    f"the slave's database {self.plugin.config['database']!r} is encoded {encoding}, not UTF8; "
                    "recreate it with ENCODING 'UTF8'"
                )
            slave_version = cat.schema_version(self.target, "slave", self.plugin.slave_user)
            slave_tables = cat.read_slave_catalog(self.target)
        except BaseException:
            master.abandon()
            raise
        master_encoding, master_version, self.catalog = master.result()
        self.binary = master_encoding == "UTF8"  # and the slave's, checked above
        if master_version != slave_version:
            raise PreflightError(
                f"configuration schema versions differ: master {master_version}, slave {slave_version} "
                "(alembic_version); upgrade both nodes to the same Wazo version"
            )
        cat.check_slave_catalog(slave_tables, self.catalog)
        cat.check_slave_privileges(self.target, self.catalog, self.plugin.slave_user, staging=not self.truncate)
        try:
            self.target.execute("SET LOCAL session_replication_role = replica")
        except psycopg2.errors.InsufficientPrivilege:
            raise PreflightError(
                f"slave user {self.plugin.slave_user!r} may not set session_replication_role "
                "(needed to load the tenant/endpoint_sip foreign-key cycle): "
                f'GRANT SET ON PARAMETER session_replication_role TO "{self.plugin.slave_user}" '
                "(PostgreSQL 15; enabling HA on the slave does it) or make it a superuser"
            ) from None

    def _state(self) -> dict[str, Any]:
        return {"peer": self.peer, "database": self.plugin.config["database"], **self.fingerprints}

    def unchanged_since_verified(self) -> bool:
        """Nothing committed on either server since the last run that verified them unchanged
        (:mod:`.since_verified`). Must be the master transaction's first statement: its snapshot is read."""
        state = self.plugin.context.state
        recorded = since_verified.recorded_for(state, since_verified.scope(state.get(STATE_KEY), self.plugin.excluded))
        return recorded is not None and self.markers_still(recorded)

    def markers_still(self, recorded: dict[str, Any]) -> bool:
        """Both servers' markers equal ``recorded`` (:func:`.since_verified.record`'s value); the slave's first."""
        names = recorded["sequences"]
        if not since_verified.still(self.target, recorded["slave"], names, sequence_values):
            return False
        if not since_verified.still(self.source, recorded["master"], names, sequence_values):
            return False
        self.known = recorded["figures"]
        self.figures["unchanged_by"] = "markers"
        return True

    def unchanged(self) -> bool:
        tables, sequences = self.catalog.tables, self.catalog.sequences
        last_good = self.plugin.context.state.get(STATE_KEY)
        if not last_good or (last_good.get("peer"), last_good.get("database")) != (
            self.peer,
            self.plugin.config["database"],
        ):
            return False  # no good copy to this slave yet (a first copy): nothing to compare the scan with

        def fingerprint_parts(cursor) -> tuple:
            return scan(cursor, tables, checksums=False), sequence_values(cursor, sequences)

        slave_before = since_verified.transactions(self.target)
        master = _Background("fingerprint-master", self.source, fingerprint_parts)
        try:
            slave_scan, slave_sequences = fingerprint_parts(self.target)
        except BaseException:
            master.abandon()
            raise
        master_scan, master_sequences = master.result()  # both servers scanned at once
        self.scans = {"master": master_scan, "slave": slave_scan}
        self.fingerprints["slave"] = fingerprint_of(slave_scan, tables, slave_sequences)
        self.fingerprints["master"] = fingerprint_of(master_scan, tables, master_sequences)
        state = self.plugin.context.state
        if state.get(STATE_KEY) != self._state():
            return False
        self.figures["unchanged_by"] = "fingerprints"
        # Verified unchanged: remember both markers, if the slave's scan saw one committed state.
        if since_verified.transactions(self.target) == slave_before:
            since_verified.record(
                state,
                since_verified.scope(self._state(), self.plugin.excluded),
                sequences,
                {"tables": len(tables), "excluded": list(self.catalog.excluded)},
                {
                    **since_verified.transactions(self.source),
                    "sequences": since_verified.sequences_digest(master_sequences),
                },
                {**slave_before, "sequences": since_verified.sequences_digest(slave_sequences)},
            )
        return True

    def open_side(self):
        """A second master session reading the main one's snapshot (``pg_export_snapshot``)."""
        self.source.execute("SELECT pg_export_snapshot()")
        snapshot = self.source.fetchone()[0]
        self.side = self.connect_master()
        self.side.set_session(isolation_level="REPEATABLE READ", readonly=True)
        cursor = self.side.cursor()
        cursor.execute("SET TRANSACTION SNAPSHOT %s", (snapshot,))
        return cursor

    def _since_copy(self) -> since_copy.Findings:
        """What the last good copy's record tells (:mod:`.since_copy`): the tables unchanged since on both
        servers, and for those the slave kept as copied, the master's rows written since."""
        master_markers = since_verified.transactions(self.source)  # its snapshot: the copy's
        clusters = {
            "master": since_copy.incarnation(self.source, master_markers["cluster"]),
            "slave": since_copy.incarnation(self.target, since_verified.transactions(self.target)["cluster"]),
        }
        findings = since_copy.Findings(clusters, master_markers["snapshot"])
        tables = self.catalog.tables
        recorded = since_copy.recorded_for(
            self.plugin.context.state, since_copy.scope(self.peer, self.plugin.config["database"], self.plugin.excluded)
        )
        marked = self.guard.recorded()
        if self.truncate or self.compare_all or recorded is None:
            return findings
        scans = self.scans
        if scans is None:  # unchanged() did not read them (no last good copy in the state): read them now
            master = _Background(
                "fingerprint-master", self.source, lambda cursor: scan(cursor, tables, checksums=False)
            )
            try:
                slave_scan = scan(self.target, tables, checksums=False)
            except BaseException:
                master.abandon()
                raise
            scans = {"master": master.result(), "slave": slave_scan}
        findings.fingerprints = scans
        kept = since_copy.as_copied(recorded, clusters, scans, tables)
        # An unchanged table's slave-change mark is the recorded one: without a recorded mark, it is examined.
        findings.unchanged = kept["master"] & kept["slave"] & set(marked["tables"] if marked else ())
        findings.slave_as_copied = kept["slave"]
        if kept["slave"] - findings.unchanged:
            findings.new_versions = since_copy.NewVersions.since(self.source, recorded["master"].get("snapshot"))
        return findings

    def copy_verify_commit(self) -> None:
        tables, sequences = self.catalog.tables, self.catalog.sequences
        state = self.plugin.context.state
        since_verified.forget(state)  # the slave's commit moves its marker anyway
        phases = self.figures["phase_seconds"]
        clock = time.monotonic()

        def phase(name: str) -> None:
            nonlocal clock
            now = time.monotonic()
            phases[name] = round(phases.get(name, 0) + now - clock, 3)
            clock = now

        self.since = since = self._since_copy()
        unchanged, scans = since.unchanged, since.fingerprints
        self.figures["unchanged_tables"] = len(unchanged)
        examined = [table for table in tables if table.name not in unchanged]
        # The master's checksums come from a second session in the same snapshot, table by
        # table, while this one streams: the slave waits for none but the first.
        master = _TableByTable(self.open_side(), examined)
        try:
            # A table the slave holds as the last copy left it has no slave-side edit to look for, and the
            # master's new rows tell what differs: its checksum is read once, after the write.
            kept = [table for table in examined if since.new_versions_of(table.name) is not None]
            compared = [table for table in examined if table not in kept]
            slave_before = {} if self.truncate else scan(self.target, compared, checksums=True)
            self.guard.check(self.source, self.target, compared, slave_before)  # raises: slave-side edits
            slave_before.update({table.name: scans["slave"][table.name] for table in kept})  # [rows, xmin_sum]
            phase("compare")
            written = self._write_tables(examined, slave_before, master, {table.name for table in kept})
            copied_sequences = self._copy_sequences(sequences)
            phase("write")
            self.progress("verifying", dict(self.figures))
            rescanned = [table for table in examined if table in written or table in kept]
            slave_after = {**slave_before, **scan(self.target, rescanned, checksums=True)}
            phase("verify")
            rewritten = self._rewrite_whole(written, master, slave_after)
            if rewritten:
                slave_after.update(scan(self.target, rewritten, checksums=True))
                phase("rewrite")
            master_figures = master.all()
            phase("wait_master")
            self._verify(checksums_of(master_figures), checksums_of(slave_after), copied_sequences, sequences)
            marks = slave_changes.marks(self.target, examined, slave_after)
            if unchanged:  # their marks are the recorded ones (checked present by _since_copy)
                recorded_marks = self.guard.recorded()["tables"]
                marks.update({name: recorded_marks[name] for name in unchanged})
            # Every table's fingerprints as the copy leaves them: the unchanged tables' as just read.
            after = {
                "master": {**scans.get("master", {}), **master_figures},
                "slave": {**scans.get("slave", {}), **slave_after},
            }
            self.fingerprints["master"] = fingerprint_of(after["master"], tables, copied_sequences)
            self.fingerprints["slave"] = fingerprint_of(after["slave"], tables, sequence_values(self.target, sequences))
            statuses = user_statuses.read_baseline(self.target)
            self.slave.commit()
            phase("commit")
        except BaseException:
            master.abandon()
            try:
                self.slave.rollback()
            except psycopg2.Error:
                pass  # a dead connection rolls back on the server by itself
            raise
        state.set(STATE_KEY, self._state())
        self.guard.remember(marks)
        user_statuses.keep_baseline(state, statuses)
        scope = since_copy.scope(self.peer, self.plugin.config["database"], self.plugin.excluded)
        since_copy.record(state, scope, since.clusters, since.master_snapshot, after, tables)

    def _write_tables(
        self, tables: list[cat.Table], slave_before: dict, master: _TableByTable, kept: set[str]
    ) -> list[cat.Table]:
        """Bring each table that differs to the master's rows (all of them in ``truncate`` mode); returns those.

        ``kept``: tables the slave holds as the last copy left them (``slave_before`` has their fingerprint,
        not their checksum): compared by the master's new rows, without a checksum first."""
        figures, every = self.figures, self.plugin.config["progress_bytes"]
        total = len(tables)
        empty_on_slave = [table for table in tables if not self.truncate and int(slave_before[table.name][0]) == 0]
        to_load = nonempty(self.source, empty_on_slave)
        if self.truncate and tables:
            # One statement for all tables: foreign keys between them forbid truncating one at a time.
            everything = sql.SQL(", ").join(table.ident for table in tables)
            self.target.execute(sql.SQL("TRUNCATE ONLY {}").format(everything))
        written = []
        for index, table in enumerate(tables, 1):
            # An empty slave table (a first copy) is loaded without waiting for the master's checksum
            # of it, which is needed only by the verification: that scan overlaps the load.
            empty = not self.truncate and int(slave_before[table.name][0]) == 0
            if empty and table.name not in to_load:
                continue  # empty on both sides
            if not (self.truncate or empty or table.name in kept) and content_of(master.get(table.name)) == content_of(
                slave_before[table.name]
            ):
                continue  # same rows, same content: nothing to write
            reported = {"at": -1}  # report the first chunk of every table

            def on_bytes(count: int, table=table, index=index, reported=reported) -> None:
                figures["bytes"] += count
                if figures["bytes"] - reported["at"] >= every or reported["at"] == -1:
                    reported["at"] = figures["bytes"]
                    self.progress("copying", {**figures, "table": table.name, "table_index": index, "tables": total})

            try:
                if self.truncate:
                    applied = apply.reload(self.source, self.target, table, on_bytes, binary=self.binary)
                else:
                    if empty:
                        master_rows = 0
                    elif table.name in kept:  # its count from the fingerprints (same snapshot): no wait for
                        master_rows = int(self.since.fingerprints["master"][table.name][0])  # the checksum
                    else:
                        master_rows = int(master.get(table.name)[0])
                    slave_rows = int(slave_before[table.name][0])
                    applied = apply.update_changed_rows(
                        self.source,
                        self.target,
                        table,
                        master_rows,
                        slave_rows,
                        on_bytes,
                        binary=self.binary,
                        new_versions=self.since.new_versions_of(table.name),
                    )
            except SourceFailed as exc:
                raise PluginError(
                    f"the master's stream of table {exc.table} failed: {first_line(exc.cause)}; "
                    "the slave was left unchanged"
                ) from None
            written.append(table)
            self._count(table, applied)
            self.progress("table", {**figures, "table": table.name, "table_index": index, "tables": total})
        return written

    def _count(self, table: cat.Table, applied: apply.Applied) -> None:
        figures = self.figures
        figures["written_tables"] += 1
        figures["rows"] += applied.inserted
        figures["deleted"] += applied.deleted
        figures["keys"] += applied.keys
        figures["methods"][table.name] = applied.method
        if applied.buckets is not None:
            figures["buckets"][table.name] = applied.buckets

    def _rewrite_whole(self, tables: list[cat.Table], master: _TableByTable, slave_after: dict) -> list[cat.Table]:
        """Tables compared by key whose checksum still differs (a row-hash collision): rewritten whole.

        Their rows are then compared on exact values; returns them, for the verification to rescan.
        """
        suspects = [
            table
            for table in tables
            if self.figures["methods"].get(table.name) in ("keys", "since copy")
            and content_of(master.get(table.name)) != content_of(slave_after[table.name])
        ]
        for table in suspects:
            self.figures["written_tables"] -= 1  # counted again below
            applied = apply.update_changed_rows(
                self.source,
                self.target,
                table,
                int(master.get(table.name)[0]),
                int(slave_after[table.name][0]),
                self._count_bytes,
                binary=self.binary,
                whole=True,
            )
            self._count(table, applied)
            self.figures["rewritten_after_verification"].append(table.name)
        return suspects

    def _count_bytes(self, count: int) -> None:
        self.figures["bytes"] += count

    def _copy_sequences(self, sequences: list[str]) -> dict:
        """Give the slave's sequences the master's values; returns the values set."""
        values = sequence_values(self.source, sequences)
        current = sequence_values(self.target, sequences)
        statements = []
        for name, (last_value, is_called) in values.items():
            self.figures["sequences"] += 1
            if current.get(name) == [last_value, is_called]:
                continue  # already the master's: not rewritten (the verification still compares it)
            ident = sql.Identifier(cat.SCHEMA, name)
            # ALTER SEQUENCE is transactional (setval is not): a rollback restores the slave's value.
            statements.append(sql.SQL("ALTER SEQUENCE {} RESTART WITH {}").format(ident, sql.Literal(int(last_value))))
            if is_called:
                statements.append(sql.SQL("SELECT nextval({})").format(sql.Literal(f"{cat.SCHEMA}.{name}")))
        if statements:  # one round trip for all of them
            self.target.execute(sql.SQL("; ").join(statements))
        return values

    def _verify(self, master_sums: dict, slave_sums: dict, copied_sequences: dict, sequences: list[str]) -> None:
        bad_tables = differences(master_sums, slave_sums)
        bad_sequences = differences(copied_sequences, sequence_values(self.target, sequences))
        if bad_tables or bad_sequences:
            detail = ", ".join(bad_tables + [f"sequence {name}" for name in bad_sequences])
            raise PluginError(
                f"verification failed, the copy was rolled back and the slave left unchanged; "
                f"differing from the master: {detail}"
            )

    def result(self, outcome: str, duration: float) -> OperationResult:
        figures = {**self.figures, "duration": round(duration, 3), "outcome": outcome}
        figures["excluded"] = list(self.catalog.excluded) if self.catalog else self.known.get("excluded", [])
        figures["tables"] = len(self.catalog.tables) if self.catalog else self.known.get("tables", 0)
        if self.guard is not None and self.guard.discarded:
            figures["slave_changes_discarded"] = self.guard.discarded
        if outcome == "skipped":
            message = f"nothing changed since the last good copy to {self.peer}"
        else:
            message = (
                f"updated {figures['written_tables']} of {figures['tables']} tables ({figures['rows']} rows written, "
                f"{figures['deleted']} deleted, {figures['bytes']} bytes streamed) and {figures['sequences']} "
                f"sequences on {self.peer}, verified"
            )
        if figures.get("statuses_to_master"):
            message += f"; {figures['statuses_to_master']} users' statuses carried back from the slave first"
        return OperationResult(outcome=outcome, message=message, figures=figures)
