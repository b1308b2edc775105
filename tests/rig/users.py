"""The users' rig: the copy-back rig (:mod:`tests.rig.copyback`: two Wazo-like nodes with PostgreSQL and Wazo's
schema, the slave's sshd + rsync and watch, the master's ``copy-back --auto`` every second) plus the master's
``wazo-ha follow``, as a Wazo master runs it, so voicemail and users' statuses move by themselves both ways.

In 10.203.25.0/24, tag ``u``; used by ``tests/users_e2e``. The rsync mirror is slowed down
(``plugin_config.rsync.bandwidth_limit``) so that a cut can land while it moves a batch of messages.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from wazo_ha_core.settings import deep_merge
from wazo_ha_rig import demo_nodes as nodes
from wazo_ha_rig import partition
from wazo_ha_rig.waiting import wait_for

from .copyback import CopyBackRig

SUBNET, TAG = "10.203.25.0/24", "u"
BANDWIDTH_KIB = 4096  # rsync --bwlimit on the master's transfers: a 16 MB batch takes about 4 s

#: Every column of ``userfeatures`` in a stable text form, one line per user: what "nothing else changed" compares.
USERFEATURES = "SELECT row_to_json(u)::text FROM (SELECT * FROM userfeatures ORDER BY id) AS u"


class UsersRig(CopyBackRig):
    def __init__(self, schema_files, stability: float = 3.0):
        super().__init__(schema_files, stability=stability, subnet=SUBNET, tag=TAG)

    def start(self) -> None:
        super().start()
        tree = yaml.safe_load(self.master.config_file.read_text())
        tree = deep_merge(
            tree,
            {
                "follow": {"debounce": 0.2, "min_interval": 0.5, "max_backoff": 2},
                "plugin_config": {"rsync": {"bandwidth_limit": BANDWIDTH_KIB}},
            },
        )
        nodes.write_settings(self.master, tree)
        self.start_follow()

    def close(self) -> None:
        self.stop_follow()
        super().close()

    # --- the master's follow mode ------------------------------------------------------------

    def start_follow(self) -> None:
        log = open(self.work / "master-follow.log", "ab")
        self.follower = self.master.host.popen(
            self.master.wazo_ha_command("follow"), stdout=log, stderr=subprocess.STDOUT
        )
        log.close()
        wait_for(lambda: "follow: files synced" in self.follow_log(), 60, "wazo-ha follow's first round")

    def kill_follow(self) -> None:
        """SIGKILL ``wazo-ha follow`` and what it runs (rsync, ssh), as systemd kills a unit's cgroup."""
        import os
        import signal

        import psutil

        leader = psutil.Process(self.follower.pid)
        for process in [leader, *leader.children(recursive=True)]:
            try:
                os.kill(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.follower.wait(10)
        self.follower = None

    def stop_follow(self) -> None:
        if self.follower is not None:
            self.master.host.stop(self.follower)
            self.follower = None

    # --- users' statuses -----------------------------------------------------------------------

    def userfeatures(self, node) -> list[dict]:
        import json

        return [json.loads(line) for line in node.sql(USERFEATURES).splitlines() if line.strip()]

    def set_statuses(self, node, user_id: int, **columns) -> None:
        """What wazo-confd / wazo-calld write when a user presses a feature key: an UPDATE of ``userfeatures``."""
        assignments = ", ".join(f"{column} = {_literal(value)}" for column, value in columns.items())
        node.sql(f"UPDATE userfeatures SET {assignments} WHERE id = {int(user_id)}")

    # --- failures --------------------------------------------------------------------------------

    def cut_master(self) -> None:
        """The master loses the slave and the phone (nftables in its namespace): the slave takes over."""
        partition.cut(self.master.host, [self.slave.address, self.phone.address])

    def heal_master(self) -> None:
        partition.heal(self.master.host)

    def spool_path(self, node, relative: str) -> Path:
        return self.spool(node) / relative


def _literal(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"
