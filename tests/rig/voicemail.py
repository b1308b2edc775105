"""The switchover rig plus what voicemail needs: the slave's sshd and the master's file sync (rsync) in namespaces.

* master — as in :class:`tests.rig.switchover.SwitchoverRig` (wazo-ha master, its stand-in under
  monit), plus ``plugins.file_sync: [rsync]`` towards the slave's sshd, its spool under its root;
* slave — as in :class:`tests.rig.ha.HARig` (the watch, monit's stand-in), plus a real sshd on
  port 22 of its namespace; the master's rsync writes into the slave's root (``remote_root``);
* phone — the witness.

Asterisk's app_voicemail is not here (it cannot run in the rig): the tests write the spool as
app_voicemail does (sound files first, then ``msgNNNN.txt``; a folder renumbered from msg0000
after a deletion). Subnet 10.203.19.0/24, tag ``v``; used by ``tests/voicemail``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

from wazo_ha_rig.sshd import ROOT_PASSWORD, Sshd

from .ha import WAZO_HA, HARig
from .switchover import SwitchoverRig

SUBNET, TAG = "10.203.19.0/24", "v"
SPOOL = "var/spool/asterisk/voicemail"


class VoicemailRig(SwitchoverRig):
    def __init__(self, directory: Path, stability: float = 3.0):
        HARig.__init__(self, directory, subnet=SUBNET, tag=TAG, stability=stability)
        self.master_monit = None
        self.sshd: Sshd | None = None
        self.follow_process: subprocess.Popen | None = None

    def start(self) -> None:
        super().start()
        self.sshd = Sshd.start(host=self.slave.address, netns=self.slave.netns, directory=self.directory / "slave-ssh")
        password_file = self.directory / "secrets" / "slave-root-password"
        password_file.parent.mkdir(mode=0o700)
        descriptor = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(ROOT_PASSWORD + "\n")
        tree = yaml.safe_load(self.master_config.read_text())
        tree["plugins"]["file_sync"] = ["rsync"]
        tree["plugins"]["replication"] = []  # rows and user statuses: tests/plugins/pg_dump
        tree["file_sync"] = {"directories": [], "tenant_sounds_dir": None}
        tree["follow"] = {"debounce": 0.2, "min_interval": 0.5}
        tree["plugin_config"]["rsync"] = {
            "port": self.sshd.port,
            "authorized_keys_file": str(self.sshd.authorized_keys),
            "receiver_path": str(self.directory / "slave-bin" / "rsync-receiver"),
            "remote_root": str(self.root),
            "password_file": str(password_file),
        }
        self.master_config.write_text(yaml.safe_dump(tree))
        pin = self.master.run(
            [WAZO_HA, "--config", str(self.master_config), "sync", "host-key", "pin"],
            input=self.sshd.host_key.with_suffix(".pub").read_text(),
            text=True,
            env=self.env(),
            check=True,
        )
        assert pin.returncode == 0
        self.master_wazo_ha("sync", "init")

    def close(self) -> None:
        self.stop_follow()
        if self.sshd is not None:
            self.sshd.stop()
        super().close()

    # --- the master's follow mode --------------------------------------------------------------

    def start_follow(self) -> None:
        self.stop_follow()
        log = open(self.directory / "follow.log", "ab")
        self.follow_process = self.master.popen(
            [WAZO_HA, "--config", str(self.master_config), "follow"], stdout=log, stderr=log, env=self.env()
        )

    def stop_follow(self) -> None:
        if self.follow_process is not None:
            self.master.stop(self.follow_process)
            self.follow_process = None

    def follow_log(self) -> str:
        path = self.directory / "follow.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- spools ------------------------------------------------------------------------------------

    @property
    def master_spool(self) -> Path:
        return self.master_root / SPOOL

    @property
    def slave_spool(self) -> Path:
        return self.root / SPOOL
