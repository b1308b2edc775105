"""``wazo-ha status`` from the store's snapshot: without SQLAlchemy, and never an outdated state shown as current.

Every status here runs in a fresh interpreter, as an operator runs it; the
writers that bypass the snapshot are second processes (the sqlite3 module, a
Store without a snapshot writer), as another tool on the node would be.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from wazo_ha_core.config import HASettings
from wazo_ha_core.journal import Event
from wazo_ha_core.settings import Settings
from wazo_ha_core.status_snapshot import SnapshotMiss, SnapshotWriter, load, snapshot_path
from wazo_ha_core.store import Store

from .conftest import NO_PLUGINS

RUN_STATUS = """
import atexit, json, sys
atexit.register(lambda: sys.__stderr__.write("MODULES" + json.dumps(sorted(sys.modules)) + "\\n"))
from wazo_ha_core.cli.main import main
sys.exit(main(["status", "--json", "--config", sys.argv[1]]))
"""


class Node:
    """A sandboxed node: settings file, migrated SQLite store with a snapshot writer."""

    def __init__(self, tmp_path: Path):
        self.root = tmp_path / "root"
        self.config = tmp_path / "config.yml"
        plugins = json.dumps(NO_PLUGINS["plugins"])
        self.config.write_text(f"root: {self.root}\nlocal_addresses: [10.0.0.1]\nplugins: {plugins}\n")
        self.settings = Settings.load(self.config)
        self.database = self.settings.path("state_db")
        self.store = Store.from_settings(self.settings)
        self.store.upgrade()

    def status(self) -> tuple[dict, set[str]]:
        """``wazo-ha status --json`` in a fresh interpreter: its output and the modules it loaded."""
        result = subprocess.run(
            [sys.executable, "-c", RUN_STATUS, str(self.config)],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 0, result.stderr
        line = [line for line in result.stderr.splitlines() if line.startswith("MODULES")][-1]
        return json.loads(result.stdout), set(json.loads(line.removeprefix("MODULES")))

    def in_second_process(self, code: str) -> None:
        """Run ``code`` (with ``database`` bound to the store's path) in another process, to completion."""
        script = f"database = {str(self.database)!r}\n" + textwrap.dedent(code)
        subprocess.run([sys.executable, "-c", script], check=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture
def node(tmp_path) -> Node:
    node = Node(tmp_path)
    yield node
    node.store.close()


def journal(node: Node, kind: str, outcome: str, message: str) -> None:
    # 150 minutes ago: shown as "2 h ago" by both status runs of a test, however slow the machine
    then = datetime.now(UTC) - timedelta(minutes=150)
    node.store.append_event(Event(kind=kind, started_at=then, ended_at=then, outcome=outcome, message=message))


def test_status_reads_the_snapshot_without_sqlalchemy_and_says_what_the_store_says(node):
    node.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    journal(node, "replication", "ok", "copied")
    journal(node, "replication", "failed", "slave down")
    journal(node, "sync", "skipped", "nothing to do")
    node.store.plugin_state("core.watch").set("paused", {"since": "2026-12-03T10:00:00+00:00", "reason": "works"})

    shown, modules = node.status()

    assert not {name for name in modules if name.split(".")[0] in ("sqlalchemy", "alembic", "stevedore")}
    assert "wazo_ha_core.engine" not in modules and "wazo_ha_core.store.store" not in modules
    os.unlink(snapshot_path(node.database))  # the same command, through the store
    from_store, modules = node.status()
    assert "sqlalchemy" in modules
    assert shown == from_store
    assert shown["role"] == "master" and shown["peer"] == "10.0.0.2"
    assert shown["last"]["replication"]["outcome"] == "failed" and shown["last"]["replication"]["last_ok_age"]
    assert [event["message"] for event in shown["events"]] == ["nothing to do", "slave down", "copied"]
    assert shown["paused"]["reason"] == "works"


def test_the_snapshot_is_private_and_holds_no_more_than_status_shows(node):
    node.store.write_ha_settings(HASettings("slave", "10.0.0.3"))
    path = snapshot_path(node.database)
    assert path.stat().st_mode & 0o777 == 0o600
    assert set(json.loads(path.read_text())) == {
        "format", "revision", "database", "ha", "events_limit", "events", "last", "switch", "states"
    }  # fmt: skip


def test_a_write_by_another_process_that_skips_the_snapshot_is_never_hidden(node):
    node.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    assert node.status()[0]["role"] == "master"
    node.in_second_process(
        """
        import sqlite3
        connection = sqlite3.connect(database)
        with connection:
            connection.execute("UPDATE ha_settings SET node_type = 'slave', remote_address = '10.0.0.9'")
        connection.close()
        """
    )
    shown, modules = node.status()
    assert (shown["role"], shown["peer"]) == ("slave", "10.0.0.9")
    assert "sqlalchemy" in modules  # the stale snapshot sent it to the store


def test_a_store_writer_without_snapshot_in_a_second_process_is_never_hidden(node):
    journal(node, "sync", "ok", "first")
    node.in_second_process(
        """
        from datetime import UTC, datetime, timedelta
        from wazo_ha_core.journal import Event
        from wazo_ha_core.store.store import Store
        now = datetime.now(UTC)
        Store(f"sqlite:///{database}").append_event(Event("sync", now, now, "failed", "second, unseen by the snapshot"))
        """
    )
    shown, _ = node.status()
    assert shown["last"]["sync"]["message"] == "second, unseen by the snapshot"


def test_an_older_snapshot_put_back_by_a_racing_writer_is_not_used(node):
    node.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    older = snapshot_path(node.database).read_bytes()
    node.store.write_ha_settings(HASettings("master", "10.0.0.4"))
    snapshot_path(node.database).write_bytes(older)  # as if a slower writer renamed its file last
    with pytest.raises(SnapshotMiss, match="changed since"):
        load(node.database, 20)
    assert node.status()[0]["peer"] == "10.0.0.4"


def test_a_snapshot_of_another_schema_revision_is_not_used(node):
    path = snapshot_path(node.database)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "revision": "0000"}))
    with pytest.raises(SnapshotMiss, match="revision"):
        load(node.database, 20)


def test_no_snapshot_while_another_process_holds_the_write_lock(node):
    node.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    load(node.database, 20)  # current
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys\n"
            f"c = sqlite3.connect({str(node.database)!r}, isolation_level=None)\n"
            "c.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "sys.stdin.readline()\n"
            "c.execute('ROLLBACK')\n",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(SnapshotMiss, match="a writer holds"):
            load(node.database, 20)
    finally:
        holder.communicate("\n", timeout=30)
    load(node.database, 20)  # released: current again


def test_a_hot_journal_or_wal_mode_is_never_trusted(node):
    journal_file = node.database.with_name(node.database.name + "-journal")
    journal_file.write_bytes(b"\0" * 512)
    with pytest.raises(SnapshotMiss, match="-journal present"):
        load(node.database, 20)
    journal_file.unlink()
    connection = sqlite3.connect(node.database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    with pytest.raises(SnapshotMiss):  # the -wal file, or the header once it is checkpointed
        load(node.database, 20)


def test_more_events_asked_than_the_snapshot_holds(node):
    for index in range(5):
        journal(node, "edit", "ok", f"edit {index}")
    node.store.snapshot.events_limit = 3
    journal(node, "edit", "ok", "edit 5")
    view = load(node.database, 3)
    assert [event.message for event in view.events(limit=3)] == ["edit 5", "edit 4", "edit 3"]
    with pytest.raises(SnapshotMiss):
        load(node.database, 4).events(limit=4)


def test_only_the_embedded_sqlite_store_gets_a_snapshot(tmp_path):
    settings = Settings.from_tree({"root": str(tmp_path), "store": {"url": f"sqlite:///{tmp_path}/other.db"}})
    store = Store.from_settings(settings)
    store.upgrade()
    assert store.snapshot is None and not snapshot_path(tmp_path / "other.db").exists()
    store.close()


def test_a_failed_refresh_leaves_no_snapshot(node):
    node.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    writer = SnapshotWriter(node.database, 20)
    assert writer.refresh(node.store)

    class Broken:
        def __getattr__(self, name):
            raise RuntimeError("store gone")

    assert not writer.refresh(Broken())
    assert not snapshot_path(node.database).exists()


def test_pending_skipped_replications_are_shown_as_the_journal_will_hold_them(node):
    """Skipped runs the fast path left pending (wazo_ha_core.skip_cache) are the newest replication in the
    snapshot's answers, and the same once folded into the journal by the store's side of status."""
    from wazo_ha_core.skip_cache import cache

    node.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    journal(node, "replication", "failed", "slave down")
    then = datetime.now(UTC) - timedelta(minutes=100)
    for message in ("skipped 1", "skipped 2"):
        cache.append_pending(
            node.database,
            Event(kind="replication", started_at=then, ended_at=then, outcome="skipped", message=message),
        )

    shown, modules = node.status()

    assert "sqlalchemy" not in modules
    assert shown["last"]["replication"]["outcome"] == "skipped"
    assert [event["message"] for event in shown["events"]] == ["skipped 2", "skipped 1", "slave down"]
    os.unlink(snapshot_path(node.database))  # the same command, through the store: it folds them first
    from_store, modules = node.status()
    assert "sqlalchemy" in modules and cache.pending_count(node.database) == 0

    def without_ids(status: dict) -> dict:  # a pending run has its journal id only once journaled
        return {**status, "events": [{**event, "id": None} for event in status["events"]]}

    assert without_ids(shown) == without_ids(from_store)
    assert [event.message for event in node.store.events(kind="replication")] == [
        "skipped 2", "skipped 1", "slave down"
    ]  # fmt: skip


def test_batched_writes_rewrite_the_snapshot_once_and_are_never_hidden_meanwhile(node, monkeypatch):
    node.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    refreshes = []
    real_refresh = node.store.snapshot.refresh
    monkeypatch.setattr(node.store.snapshot, "refresh", lambda store: refreshes.append(1) or real_refresh(store))
    state = node.store.plugin_state("replication.pg_dump")

    with node.store.writes_batched():
        state.set("last_good", {"peer": "10.0.0.2"})
        with node.store.writes_batched():  # nested: the outer one rewrites
            state.set("slave_marks", {})
        journal(node, "replication", "ok", "batched")
        assert refreshes == []
        with pytest.raises(SnapshotMiss, match="changed since"):  # stale meanwhile: status reads the store
            load(node.database, 20)
        assert node.status()[0]["last"]["replication"]["message"] == "batched"

    assert refreshes == [1]
    assert load(node.database, 20).events(kind="replication", limit=1)[0].message == "batched"  # current again
