"""A master node and a slave node for ``wazo-ha follow``: the pg_dump pair's real clusters and the rsync pair's sshd.

The master's sandbox (settings ``root``) holds its synced directories, its
SQLite store and the replication password; its PostgreSQL is the pg_dump
tests' master cluster (over its socket), the slave's is their slave cluster
(over TCP as the replication role); the slave's files are written by a real
sshd + rsync on loopback under another sandbox. ``wazo-ha follow`` runs as a
real process, as its systemd unit runs it.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest
import yaml

from tests.plugins.pg_dump.conftest import (  # noqa: F401 (session fixtures, registered by the import)
    DATABASE,
    master_cluster,
    reset_database,
    slave_cluster,
    write_password_file,
)
from tests.plugins.rsync.conftest import PASSWORD_ENV, PEER, settings_tree
from tests.rig.plugin_loading import MemoryState
from tests.rig.postgres import PgCluster
from tests.rig.sshd import ROOT_PASSWORD, Sshd
from wazo_ha_core import HAEngine, HASettings, PluginContext, Settings
from wazo_ha_plugins.rsync import RsyncBackend

ENTRY_POINT = "import sys; from wazo_ha_core.cli.main import main; sys.exit(main())"
SOURCE_TREE = Path(__file__).resolve().parents[2]
#: The issue's target: an edit or a saved file on the slave within this many seconds.
FRESHNESS = 10.0


@dataclass
class Nodes:
    tmp: Path
    master_root: Path
    slave_root: Path
    master: PgCluster
    slave: PgCluster
    sshd: Sshd
    tree: dict

    def config(self, name: str = "config", **overrides) -> Path:
        """A settings file: the shared tree with ``overrides`` merged one level deep."""
        tree = {key: dict(value) if isinstance(value, dict) else value for key, value in self.tree.items()}
        for key, value in overrides.items():
            tree[key] = {**tree.get(key, {}), **value} if isinstance(value, dict) else value
        path = self.tmp / f"{name}.yml"
        path.write_text(yaml.safe_dump(tree))
        return path

    def engine(self, config: Path) -> HAEngine:
        engine = HAEngine(Settings.load(config))
        engine.store.upgrade()
        return engine

    def init_file_sync(self) -> None:
        """Pin the slave's host key and set up the sync key, as an operator does once."""
        settings = Settings.from_tree(self.tree)
        context = PluginContext(
            "rsync",
            "wazo_ha.file_sync",
            settings.plugin_config("rsync"),
            settings,
            MemoryState(),
            logging.getLogger("t"),
        )
        plugin = RsyncBackend(context)
        plugin.pin_host_keys(PEER, self.sshd.host_key.with_suffix(".pub").read_text())
        plugin.init(PEER)

    def follow(self, config: Path) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-c", ENTRY_POINT, "--config", str(config), "--quiet", "follow"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=SOURCE_TREE,
        )

    def master_sql(self, text: str) -> None:
        self.master.psql(DATABASE, text)

    def query(self, cluster: PgCluster, text: str, database: str = DATABASE) -> list[tuple]:
        connection = psycopg2.connect(host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname=database)
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute(text)
                return cursor.fetchall()
        finally:
            connection.close()

    def log_lines(self) -> list[str]:
        path = self.master_root / "var/log/wazo-ha.log"
        return path.read_text().splitlines() if path.exists() else []


def stop(process: subprocess.Popen) -> tuple[str, str]:
    """SIGTERM, as systemd stops the unit; returns (stdout, stderr)."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    return out.decode(), err.decode()


@pytest.fixture
def nodes(master_cluster, slave_cluster, tmp_path_factory, sshd_factory, monkeypatch) -> Nodes:  # noqa: F811
    reset_database(master_cluster)
    reset_database(slave_cluster)
    tmp = tmp_path_factory.mktemp("follow")
    master_root, slave_root = tmp / "master", tmp / "slave"
    master_root.mkdir()
    slave_root.mkdir()
    write_password_file(master_root)
    sshd = sshd_factory()
    tree = settings_tree(tmp, master_root, slave_root, sshd)
    tree["plugins"] = {**tree["plugins"], "replication": ["pg_dump"]}
    tree["plugin_config"]["pg_dump"] = {
        "master_host": str(master_cluster.socket_dir),
        "master_port": master_cluster.port,
        "slave_port": slave_cluster.port,
    }
    tree["timeouts"] = {"connect": 2}
    tree["follow"] = {"poll_interval": 0.2, "min_interval": 0.5, "debounce": 0.2}
    monkeypatch.setenv(PASSWORD_ENV, ROOT_PASSWORD)
    nodes = Nodes(tmp, master_root, slave_root, master_cluster, slave_cluster, sshd, tree)
    engine = nodes.engine(nodes.config())
    engine.store.write_ha_settings(HASettings("master", PEER))  # loopback: `config set` refuses it
    engine.store.close()
    yield nodes
    sshd.stop()
