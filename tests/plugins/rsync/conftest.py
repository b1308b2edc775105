"""A master sandbox and a slave sandbox on one machine, joined by a real sshd on loopback.

The master's files live under ``<tmp>/master`` (settings ``root``); the slave's
sshd writes under ``<tmp>/slave`` (``plugin_config.rsync.remote_root``), so the
same rsync, ssh and forced command as on two real nodes run here end to end.
"""

from __future__ import annotations

import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.rig.plugin_loading import MemoryState
from tests.rig.sshd import ROOT_PASSWORD, Sshd
from wazo_ha_core import HAEngine, HASettings, PluginContext, Settings
from wazo_ha_plugins.rsync import RsyncBackend

PASSWORD_ENV = "WAZO_HA_TEST_SLAVE_PASSWORD"
PEER = "127.0.0.1"


@dataclass
class Pair:
    """A master sandbox, a slave sandbox and the slave's sshd."""

    tmp: Path
    master: Path
    slave: Path
    sshd: Sshd
    config_file: Path
    tree: dict

    @property
    def settings(self) -> Settings:
        return Settings.from_tree(self.tree)

    def plugin(self, **overrides) -> RsyncBackend:
        settings = Settings.from_tree(self.tree)
        config = {**settings.plugin_config("rsync"), **overrides}
        context = PluginContext("rsync", "wazo_ha.file_sync", config, settings, MemoryState(), logging.getLogger("t"))
        return RsyncBackend(context)

    def engine(self, node_type: str = "master") -> HAEngine:
        engine = HAEngine(self.settings)
        engine.store.upgrade()
        engine.store.write_ha_settings(HASettings(node_type, PEER if node_type != "disabled" else ""))
        return engine

    def pin(self) -> None:
        """Pin the slave's host key as an operator does before ``init``: its sshd's public key, via ``host-key pin``."""
        self.plugin().pin_host_keys(PEER, self.sshd.host_key.with_suffix(".pub").read_text())

    def slave_node_config(self) -> Path:
        """Settings of the slave node itself: its own root, whose /etc/ssh holds a copy of the sshd's public key.

        ``host-key show`` there finds it with the default ``host_key_files``.
        """
        root = self.tmp / "slave-node"
        write(root / "etc/ssh/ssh_host_ed25519_key.pub", self.sshd.host_key.with_suffix(".pub").read_text())
        tree = {
            "root": str(root),
            "paths": {"state_db": "/var/lib/wazo-ha/state.db", "run_dir": "/run/wazo-ha"},
            "plugins": {"file_sync": ["rsync"]},
        }
        config_file = self.tmp / "slave-node.yml"
        config_file.write_text(yaml.safe_dump(tree))
        return config_file

    @property
    def key_file(self) -> Path:
        return self.master / "root/.ssh/wazo-ha-sync_ed25519"

    @property
    def known_hosts(self) -> Path:
        return self.master / "var/lib/wazo-ha/ssh/known_hosts"

    def ssh(
        self, *command: str, bind: str | None = None, key: Path | None = None, options: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess:
        """ssh to the slave with the installed sync key, like an attacker holding it would."""
        argv = ["ssh", "-F", "/dev/null", "-i", str(key or self.key_file), "-p", str(self.sshd.port)]
        argv += ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=yes"]
        argv += ["-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "ConnectTimeout=5"]
        if bind:
            argv += ["-b", bind]
        argv += options
        return subprocess.run([*argv, f"root@{PEER}", *command], capture_output=True, text=True, timeout=60)

    def rsync(self, *args: str, bind: str | None = None) -> subprocess.CompletedProcess:
        """rsync over ssh with the installed sync key and any arguments (attacks included)."""
        ssh = ["ssh", "-F", "/dev/null", "-i", str(self.key_file), "-p", str(self.sshd.port), "-o", "BatchMode=yes"]
        ssh += ["-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={self.known_hosts}"]
        if bind:
            ssh += ["-b", bind]
        return subprocess.run(["rsync", "-e", " ".join(ssh), *args], capture_output=True, text=True, timeout=120)


def settings_tree(tmp: Path, master: Path, slave: Path, sshd: Sshd) -> dict:
    return {
        "root": str(master),
        "paths": {"state_db": "/var/lib/wazo-ha/state.db", "run_dir": "/run/wazo-ha"},
        "plugins": {"file_sync": ["rsync"]},
        "timeouts": {"connect": 5},
        "plugin_config": {
            "rsync": {
                "port": sshd.port,
                "authorized_keys_file": str(sshd.authorized_keys),
                "receiver_path": f"{tmp}/slave-bin/rsync-receiver",
                "remote_root": str(slave),
                "password_env": PASSWORD_ENV,
            }
        },
    }


@pytest.fixture
def pair(tmp_path_factory, sshd_factory, monkeypatch) -> Pair:
    """A fresh master/slave pair with its own sshd (function scope: tests change host keys and kill it)."""
    tmp = tmp_path_factory.mktemp("rsync-pair")
    master, slave = tmp / "master", tmp / "slave"
    master.mkdir()
    slave.mkdir()
    sshd = sshd_factory()
    tree = settings_tree(tmp, master, slave, sshd)
    config_file = tmp / "config.yml"
    config_file.write_text(yaml.safe_dump(tree))
    monkeypatch.setenv(PASSWORD_ENV, ROOT_PASSWORD)
    yield Pair(tmp, master, slave, sshd, config_file, tree)
    sshd.stop()


def write(path: Path, content: bytes | str, mode: int = 0o644) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    os.chmod(path, mode)
    return path
