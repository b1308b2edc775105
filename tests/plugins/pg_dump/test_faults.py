"""Faults mid-stream: whatever breaks, the slave holds exactly what it held before (full content compared).

Faults are injected from the plugin's progress callback, which runs while a
table's COPY is in flight: the slave's transaction already holds the earlier
tables, so a non-atomic apply would show.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import psycopg2
import pytest

from tests.rig.waiting import wait_for
from wazo_ha_core import PluginError
from wazo_ha_plugins.pg_dump.connection import APPLICATION_NAME

from .conftest import DATABASE, content

FAULT_TABLE = "userfeatures"  # late in the order: dozens of tables are already loaded on the slave


def backends(cluster, database: str = DATABASE) -> list[int]:
    """PIDs of the replication's server processes on ``cluster``."""
    output = cluster.psql(
        "postgres",
        f"SELECT pid FROM pg_stat_activity WHERE application_name = '{APPLICATION_NAME}' AND datname = '{database}'",
    )
    return [int(pid) for pid in output.split()]


def mid_stream(figures_seen: list, table: str = FAULT_TABLE):
    """A progress callback predicate: True once, at the first chunk of ``table``."""

    def reached(message, figures) -> bool:
        if message == "copying" and figures.get("table") == table and not figures_seen:
            figures_seen.append(dict(figures))
            return True
        return False

    return reached


def test_killing_the_replication_mid_stream_leaves_the_slave_unchanged(pair, tmp_path):
    before = content(pair.slave)
    marker = tmp_path / "killed-at.json"
    script = textwrap.dedent(
        f"""
        import json, os, signal, sys
        sys.path.insert(0, {os.getcwd()!r})
        from tests.plugins.pg_dump.conftest import Pair
        from pathlib import Path
        from tests.rig.postgres import PgCluster

        def cluster(directory, port):
            c = PgCluster.__new__(PgCluster)
            c.socket_dir, c.port, c.host = Path(directory), port, "127.0.0.1"
            return c

        pair = Pair(cluster({str(pair.master.socket_dir)!r}, {pair.master.port}),
                    cluster({str(pair.slave.socket_dir)!r}, {pair.slave.port}), Path({str(pair.root)!r}))

        def progress(message, figures):
            if message == "copying" and figures["table"] == {FAULT_TABLE!r}:
                Path({str(marker)!r}).write_text(json.dumps(figures))
                os.kill(os.getpid(), signal.SIGKILL)

        pair.plugin().replicate(pair.peer, progress=progress)
        """
    )
    process = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert process.returncode == -9, process.stderr
    killed_at = json.loads(marker.read_text())
    assert killed_at["written_tables"] > 0 and killed_at["rows"] > 0, "the kill must happen with tables already loaded"
    wait_for(lambda: not backends(pair.slave), 30, "the slave's replication backend gone")
    assert content(pair.slave) == before


def test_losing_the_master_connection_mid_stream_leaves_the_slave_unchanged(pair):
    before = content(pair.slave)
    seen: list = []
    reached = mid_stream(seen)

    def progress(message, figures):
        if reached(message, figures):
            # The streaming session and the one computing the master's checksums alongside.
            for pid in backends(pair.master):
                pair.master.psql("postgres", f"SELECT pg_terminate_backend({pid})")

    # The terminated backend may have sent its last rows already: the error surfaces at this table or the next.
    with pytest.raises(PluginError, match=r"master.s stream of table \w+ failed") as failure:
        pair.plugin().replicate(pair.peer, progress=progress)

    assert "left unchanged" in str(failure.value)
    assert seen and seen[0]["written_tables"] > 0
    wait_for(lambda: not backends(pair.slave), 30, "the slave's replication backend gone")
    assert content(pair.slave) == before


def test_losing_the_slave_connection_mid_stream_leaves_the_slave_unchanged(pair):
    before = content(pair.slave)
    seen: list = []
    reached = mid_stream(seen)

    def progress(message, figures):
        if reached(message, figures):
            [pid] = backends(pair.slave)
            pair.slave.psql("postgres", f"SELECT pg_terminate_backend({pid})")

    with pytest.raises(PluginError, match="left unchanged"):
        pair.plugin().replicate(pair.peer, progress=progress)

    wait_for(lambda: not backends(pair.slave), 30, "the slave's replication backend gone")
    assert content(pair.slave) == before


def test_a_slave_that_alters_rows_fails_verification_and_rolls_back_tables_and_sequences(pair):
    # A stray trigger on the slave that fires even in replica mode changes what is loaded.
    pair.slave_sql(
        """
        CREATE FUNCTION tamper() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN NEW.typeval := 'tampered'; RETURN NEW; END $$;
        CREATE TRIGGER tamper BEFORE INSERT ON extensions FOR EACH ROW EXECUTE FUNCTION tamper();
        ALTER TABLE extensions ENABLE ALWAYS TRIGGER tamper;
        """
    )
    before = content(pair.slave)
    assert before["userfeatures_id_seq"] != content(pair.master)["userfeatures_id_seq"]

    with pytest.raises(PluginError, match="verification failed") as failure:
        pair.plugin().replicate(pair.peer)

    assert str(failure.value).endswith("differing from the master: extensions")
    assert content(pair.slave) == before  # sequences included: ALTER SEQUENCE rolled back


def test_an_unreachable_slave_fails_before_anything_changes(pair):
    before = content(pair.slave)
    with socket_nobody_listens() as port:
        with pytest.raises(PluginError, match="cannot connect to the slave PostgreSQL"):
            pair.plugin(slave_port=port).replicate(pair.peer)
    assert content(pair.slave) == before
    assert pair.plugin().context.state.get("last_good") is None


class socket_nobody_listens:
    """A loopback port with nothing listening on it."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        return self.sock.getsockname()[1]

    def __exit__(self, *exc) -> None:
        self.sock.close()


#: WAL the server writes by itself, whoever is connected: snapshots of running transactions for
#: standbys (bgwriter, every 15 s after activity) and checkpoints. Anything else is a write.
BACKGROUND_WAL = {"Standby", "XLOG"}


def catalog_page_pruned(record: str) -> bool:
    """A system catalog's page pruned of dead rows by a reader (here the planner reading ``pg_statistic`` for a
    query by key): housekeeping any read triggers, even in a read-only transaction, not a write of data."""
    match = re.fullmatch(r"rmgr: Heap2 .* desc: PRUNE .*, blkref #0: rel \d+/\d+/(\d+) blk \d+", record)
    return match is not None and int(match.group(1)) < 16384  # FirstNormalObjectId: below are the catalogs'


def wal_records(cluster, start: str, end: str) -> list[str]:
    """The WAL records between two LSNs, one ``pg_waldump`` line each."""
    result = subprocess.run(
        [str(cluster.bindir / "pg_waldump"), "-p", str(cluster.data / "pg_wal"), "-s", start, "-e", end],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [line for line in result.stdout.splitlines() if line.startswith("rmgr:")]


def test_the_master_is_never_written(pair):
    connection = psycopg2.connect(
        host=str(pair.master.socket_dir), port=pair.master.port, user="postgres", dbname=DATABASE
    )
    connection.autocommit = True
    with connection.cursor() as cursor:
        # Autovacuum's ANALYZE after the fixtures' loads writes pg_statistic: off for the measure.
        cursor.execute("ALTER SYSTEM SET autovacuum = off")
        cursor.execute("SELECT pg_reload_conf()")
        try:

            def no_autovacuum_worker() -> bool:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'")
                return cursor.fetchone()[0] == 0

            wait_for(no_autovacuum_worker, 30, "autovacuum workers gone")
            cursor.execute("SELECT pg_current_wal_insert_lsn()")
            (start,) = cursor.fetchone()
            pair.plugin().replicate(pair.peer)
            cursor.execute("SELECT pg_current_wal_insert_lsn()")
            (end,) = cursor.fetchone()
            cursor.execute("CHECKPOINT")  # flushes the WAL to read, after `end`
        finally:
            cursor.execute("ALTER SYSTEM RESET autovacuum")
            cursor.execute("SELECT pg_reload_conf()")
    connection.close()
    records = wal_records(pair.master, start, end) if start != end else []
    written = [
        record
        for record in records
        if record.split()[1].rstrip(",") not in BACKGROUND_WAL and not catalog_page_pruned(record)
    ]
    assert written == [], "the master's WAL has records written during a replication:\n" + "\n".join(written[:10])
