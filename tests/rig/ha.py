"""The HA rig: master, slave and phone as network namespaces, as in production.

* master — sipp answering SIP OPTIONS on 5060, standing in for Asterisk;
* slave  — a real monit supervising the same stand-in (stopped while standing
  by), and ``wazo-ha watch`` with the icmp and sip probes and ``wazo_services``
  whose commands are ``monit start|stop standin``;
* phone  — sends OPTIONS to both to measure what a phone sees; it is also the
  slave's witness (the role a gateway plays on a real site).

Used by ``tests/e2e`` and ``bench/failover.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import yaml

from wazo_ha_core.store import Store
from wazo_ha_rig.lifecycle import StartStop
from wazo_ha_rig.monit import Monit
from wazo_ha_rig.netns import TestNetwork
from wazo_ha_rig.sip import Phone, start_responder
from wazo_ha_rig.standby import standby_settings
from wazo_ha_rig.waiting import wait_for

WAZO_HA = str(Path(sys.executable).parent / "wazo-ha")
LEGACY_CHECK = str(Path(sys.executable).parent / "xivo-check-master-status")

BROKEN_PROBE = '''
from wazo_ha_core import HealthProbe, PluginError


class BrokenProbe(HealthProbe):
    """Stands for a probe plugin with a bug: it raises on every call."""

    checks = "host"

    def probe(self, target):
        raise PluginError("broken on purpose (e2e scenario f)")
'''


class HARig(StartStop):
    def __init__(self, directory: Path, subnet: str = "10.203.5.0/25", tag: str = "e5", stability: float = 5.0):
        self.directory = directory
        self.network = TestNetwork(subnet, tag)
        self.stability = stability
        self.watch_process: subprocess.Popen | None = None
        self.sipp: subprocess.Popen | None = None
        self.monit: Monit | None = None

    # --- set-up / teardown -----------------------------------------------------------------

    def start(self) -> None:
        self.network.start()
        self.master = self.network.add_host("master")
        self.slave = self.network.add_host("slave")
        self.phone_host = self.network.add_host("phone")
        self.phone = Phone(self.phone_host)
        self.start_master_sip()
        self.monit = Monit.start(self.directory / "monit", self.slave.address, 5060, host=self.slave)
        self.root = self.directory / "slave-root"
        self.config = self.directory / "slave-config" / "config.yml"
        self._write_settings()
        self._install_broken_probe()
        self.wazo_ha("db", "upgrade")
        self.wazo_ha("config", "set", "node_type=slave", f"remote_address={self.master.address}")
        self.store = Store(f"sqlite:///{self.root}/var/lib/wazo-ha/state.db")

    def close(self) -> None:
        if self.watch_process is not None:
            self.slave.stop(self.watch_process)
        if self.monit is not None:
            self.monit.stop()
        if getattr(self, "phone", None):
            self.phone.close()
        self.network.close()

    def _write_settings(self) -> None:
        self.config.parent.mkdir(parents=True, exist_ok=True)
        settings = {
            "root": str(self.root),
            "local_addresses": [self.slave.address],
            **standby_settings(self.monit, self.stability, [self.phone_host.address]),
            # This slave has no Wazo configuration database nor systemd of its own:
            # those edit steps are tested against real PostgreSQL in tests/edit.
            "sip_expiry": {"enabled": False},
            "slave_db": {"enabled": False},
            "schedules": {"enabled": False},
        }
        self.config.write_text(yaml.safe_dump(settings))

    def _install_broken_probe(self) -> None:
        """A one-module distribution on PYTHONPATH registering probe ``broken`` (entry point, like any plugin)."""
        site = self.directory / "site"
        info = site / "wazo_ha_e2e_broken-0.dist-info"
        info.mkdir(parents=True)
        (site / "wazo_ha_e2e_broken.py").write_text(BROKEN_PROBE)
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wazo-ha-e2e-broken\nVersion: 0\n")
        (info / "entry_points.txt").write_text("[wazo_ha.health_probes]\nbroken = wazo_ha_e2e_broken:BrokenProbe\n")
        self.site = site

    # --- commands on the slave --------------------------------------------------------------

    def env(self) -> dict[str, str]:
        import os

        return {**os.environ, "PYTHONPATH": str(self.site)}

    def wazo_ha(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.slave.run([WAZO_HA, "--config", str(self.config), *args], check=check, env=self.env())

    def legacy_check(self, *args: str) -> subprocess.CompletedProcess:
        return self.slave.run([LEGACY_CHECK, "--config", str(self.config), *args], check=False, env=self.env())

    def start_watch(self, probes: list[str] | None = None) -> None:
        """(Re)start ``wazo-ha watch`` on the slave, optionally with other probes (a conf.d override)."""
        self.stop_watch()
        override = self.config.parent / "conf.d" / "probes.yml"
        override.parent.mkdir(exist_ok=True)
        if probes:
            override.write_text(yaml.safe_dump({"plugins": {"health_probes": probes}}))
        else:
            override.unlink(missing_ok=True)
        log = open(self.directory / "watch.log", "ab")
        self.watch_process = self.slave.popen(
            [WAZO_HA, "--config", str(self.config), "watch"], stdout=log, stderr=log, env=self.env()
        )
        wait_for(lambda: "watch started" in self.watch_log(), 15, "wazo-ha watch started")

    def stop_watch(self) -> None:
        if self.watch_process is not None:
            self.slave.stop(self.watch_process)
            self.watch_process = None

    def watch_log(self) -> str:
        path = self.directory / "watch.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- the master -------------------------------------------------------------------------

    def start_master_sip(self) -> None:
        if self.sipp is None or self.sipp.poll() is not None:
            self.sipp = start_responder(self.master, self.directory / "master-sipp")
        wait_for(lambda: self.phone.options(self.master.address), 10, "the master answering OPTIONS")

    def kill_master_sip(self) -> None:
        self.master.stop(self.sipp)

    def set_loss(self, percent: int) -> None:
        """Random loss of ICMP echo requests and SIP on the master (nftables; tc netem is unavailable)."""
        self.master.run(["nft", "delete", "table", "inet", "flap"], check=False)
        if percent:
            rules = textwrap.dedent(
                f"""\
                table inet flap {{
                    chain input {{
                        type filter hook input priority 0;
                        icmp type echo-request numgen random mod 100 < {percent} drop
                        udp dport 5060 numgen random mod 100 < {percent} drop
                    }}
                }}
                """
            )
            self.master.run(["nft", "-f", "-"], input=rules)

    # --- what the phone and the journal see ---------------------------------------------------

    def slave_answers(self, timeout: float = 0.05) -> bool:
        """The slave answers a phone's OPTIONS within ``timeout`` (short: failover times are measured with it)."""
        return self.phone.options(self.slave.address, timeout=timeout)

    def first_slave_answer(self, since: float, deadline: float) -> float | None:
        """Seconds from ``since`` to the phone's first SIP answer from the slave; ``None`` past ``deadline`` s."""
        while time.monotonic() - since < deadline:
            if self.slave_answers():
                return time.monotonic() - since
        return None

    def events(self, kind: str) -> list:
        return self.store.events(kind=kind, limit=1000)

    def standin_running(self) -> bool:
        return self.monit.standin_running()

    def baseline(self, timeout: float = 40) -> None:
        """Links up, no loss, master serving, watch running and resumed, slave standing by."""
        self.network.link_up(self.master)
        self.network.link_up(self.slave)
        self.set_loss(0)
        self.start_master_sip()
        self.wazo_ha("resume")
        if self.watch_process is None or self.watch_process.poll() is not None or self._probes_overridden():
            self.start_watch()
        wait_for(lambda: not self.standin_running(), timeout, "the slave standing by (failback done)")
        # and the watch knows it (its failback, if any, is journaled by then)
        wait_for(lambda: self.watch_role() == "standby", timeout, "the watch in role standby")

    def watch_role(self) -> str | None:
        status = self.store.plugin_state("core.watch").get("status")
        return status["role"] if status else None

    def _probes_overridden(self) -> bool:
        return (self.config.parent / "conf.d" / "probes.yml").exists()

    def watch_status(self) -> dict:
        return json.loads(self.wazo_ha("watch-status", "--json").stdout)
