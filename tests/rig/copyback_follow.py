"""The copy-back rig driven by ``wazo-ha follow`` on the master: 10.203.27.0/24, tag ``f``.

As :class:`~tests.rig.copyback.CopyBackRig` (two Wazo-like nodes with real PostgreSQL and Wazo's schema, the
slave's real sshd + rsync, ``wazo-ha watch`` on the slave, a phone as witness), but no schedule runs on the
master (the demo's settings disable cron and timers, and no :class:`~tests.rig.copyback.CheckDriver` is
started): the master's only driver of the automatic copy-back is its follower, started by
:meth:`FollowCopyBackRig.start_follow`. rsync is limited to ``BANDWIDTH`` KiB/s so that a large file makes a
sync or a copy-back last seconds (what the interleaving tests need to land inside one).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.rig.copyback import CopyBackRig
from wazo_ha_core.settings import deep_merge
from wazo_ha_rig import demo_nodes as nodes
from wazo_ha_rig.waiting import wait_for

SUBNET, TAG = "10.203.27.0/24", "f"
BANDWIDTH = 2000  # KiB/s: an 8 MB file takes about 4 s to move


class FollowCopyBackRig(CopyBackRig):
    def __init__(self, schema_files):
        super().__init__(schema_files, subnet=SUBNET, tag=TAG)

    def start_checks(self) -> None:
        """No schedule: :meth:`start_follow` starts the only driver."""

    def _master_settings(self) -> None:
        super()._master_settings()
        tree = yaml.safe_load(self.master.config_file.read_text())
        tree = deep_merge(tree, {"plugin_config": {"rsync": {"bandwidth_limit": BANDWIDTH}}})
        nodes.write_settings(self.master, tree)

    def start_follow(self) -> None:
        """``wazo-ha follow`` on the master, as its systemd unit runs it; returns once its first round is done."""
        assert self.follower is None
        with open(self.follow_log_path, "ab") as log:
            self.follower = self.master.host.popen(
                self.master.wazo_ha_command("follow"), stdout=log, stderr=subprocess.STDOUT
            )
        wait_for(lambda: "follow: files synced" in self.follow_text(), 60, "wazo-ha follow's first round")

    def stop_follow(self) -> None:
        if self.follower is not None:
            self.master.host.stop(self.follower, timeout=30)
            self.follower = None

    @property
    def follow_log_path(self) -> Path:
        return self.work / "master-follow.log"

    def follow_text(self) -> str:
        path = self.follow_log_path
        return path.read_text(errors="replace") if path.exists() else ""

    def lock_holder(self, name: str) -> str:
        """What the master's lock file ``name`` says (``"PID operation"``); empty when absent or unwritten."""
        path = self.master.root / "run/wazo-ha" / name
        return path.read_text().strip() if path.exists() else ""
