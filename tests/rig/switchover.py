"""The HA rig with a wazo-ha master too: its telephony (the sipp stand-in) is switched through its own monit.

* master — a real monit supervising the stand-in, and a wazo-ha node (role
  master, peer the slave) whose ``wazo_services`` runs ``monit start|stop``
  and whose ``sip`` probe looks at the slave; no replication or file sync
  backend (PostgreSQL and rsync are tested in their own suites);
* slave, phone — as in :class:`tests.rig.ha.HARig` (the slave's watch with
  the icmp and sip probes, the phone as witness).

Used by ``tests/switchover`` and ``bench/switchover.py``; subnet 10.203.15.0/24, tag ``s``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from wazo_ha_core.store import Store
from wazo_ha_rig import sip
from wazo_ha_rig.monit import SERVICE, Monit
from wazo_ha_rig.standby import standby_settings
from wazo_ha_rig.waiting import wait_for

from .ha import WAZO_HA, HARig

SUBNET, TAG = "10.203.15.0/24", "s"


class SwitchoverRig(HARig):
    def __init__(self, directory: Path, stability: float = 3.0):
        super().__init__(directory, subnet=SUBNET, tag=TAG, stability=stability)
        self.master_monit: Monit | None = None

    def start(self) -> None:
        super().start()
        self.master_root = self.directory / "master-root"
        self.master_config = self.directory / "master-config" / "config.yml"
        self.master_config.parent.mkdir(parents=True, exist_ok=True)
        settings = {
            "root": str(self.master_root),
            "local_addresses": [self.master.address],
            **standby_settings(self.master_monit, self.stability, []),
            "sip_expiry": {"enabled": False},
            "slave_db": {"enabled": False},
            "schedules": {"enabled": False},
            "switchover": {"timeout": 20, "switchback_timeout": 60},
        }
        settings["plugins"]["health_probes"] = ["sip"]
        self.master_config.write_text(yaml.safe_dump(settings))
        self.master_wazo_ha("db", "upgrade")
        self.master_wazo_ha("config", "set", "node_type=master", f"remote_address={self.slave.address}")
        self.master_store = Store(f"sqlite:///{self.master_root}/var/lib/wazo-ha/state.db")

    def close(self) -> None:
        super().close()
        if self.master_monit is not None:
            self.master_monit.stop()

    def master_wazo_ha(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.master.run(
            [WAZO_HA, "--config", str(self.master_config), *args], check=check, env=self.env(), timeout=180
        )

    def master_json(self, *args: str) -> tuple[int, dict]:
        done = self.master_wazo_ha(*args, "--json", check=False)
        return done.returncode, (json.loads(done.stdout) if done.returncode == 0 else {"stderr": done.stderr})

    # --- the master's telephony: the stand-in under its monit -------------------------------------

    def start_master_sip(self) -> None:
        if self.master_monit is None:
            self.master_monit = Monit.start(self.directory / "master-monit", self.master.address, host=self.master)
        if not self.master_monit.standin_running():
            self.master_monit.cli("start", SERVICE)
        wait_for(lambda: self.phone.options(self.master.address), 15, "the master answering OPTIONS")

    def kill_master_sip(self) -> None:
        """Asterisk crashes on the master and stays down (unmonitored first: monit would restart it)."""
        self.master_monit.cli("unmonitor", SERVICE)
        pid = self.master_monit.standin_pid()
        self.killed_at = time.monotonic()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        wait_for(lambda: not self.master_monit.standin_running(), 10, "the master's stand-in gone")

    def master_standin_running(self) -> bool:
        return self.master_monit.standin_running()

    def master_answers(self, timeout: float = 0.05) -> bool:
        return self.phone.options(self.master.address, timeout=timeout)

    def master_events(self, kind: str) -> list:
        return self.master_store.events(kind=kind, limit=1000)

    def baseline(self, timeout: float = 40) -> None:
        self.master_store.plugin_state("core.switchover").delete("switched")
        super().baseline(timeout)


class PhoneWatch(sip.PhoneWatch):
    """:class:`wazo_ha_rig.sip.PhoneWatch` on the rig's phone, master and slave; a missed change fails the test."""

    def __init__(self, rig: HARig):
        super().__init__(rig.phone, rig.master.address, rig.slave.address)

    def poll_until(self, condition, deadline: float, tick=None) -> bool:
        if not super().poll_until(condition, deadline, tick):
            raise AssertionError(f"the phone did not see the expected change within {deadline} s")
        return True
