"""The coordinated-mode rig: a three-member etcd cluster and three Wazo nodes, each in its own namespace.

Subnet 10.203.11.0/24 (tag ``c``), one switch:

* ``etcd1``..``etcd3`` — Debian's etcd, one member per namespace, on the standard ports;
* ``master`` (preferred, rank 0), ``slave1`` (rank 1), ``slave2`` (rank 2) — each a real monit
  supervising the SIP stand-in (sipp answering OPTIONS, standing in for Asterisk: it cannot run here),
  and a real ``wazo-ha watch`` process with the icmp and sip probes, ``wazo_services`` driving monit, and
  the tooz coordinator on the three members;
* ``phone`` — a :class:`SipSampler` asking all three nodes every 100 ms who answers SIP.

Partial cuts are nftables rules inside a host's namespace (``cut(host, peers)``, a Wazo node or an etcd
member): the switch stays up, so the host still reaches everyone else. ``freeze(node)`` / ``thaw(node)``
SIGSTOP / SIGCONT a node's ``wazo-ha watch`` only: its fence guard (``wazo-ha fence-guard``, started by the
watch in a session of its own) keeps running, as on a real node.

``WAZO_HA_RIG_FENCE_GUARD=0`` turns the fence guard off (``coordination.fence_guard: false``): only to show
that the SIGSTOP scenario fails without it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from wazo_ha_core.coordination.fence import guard_running
from wazo_ha_core.store import Store
from wazo_ha_rig.etcd import EtcdCluster
from wazo_ha_rig.lifecycle import StartStop
from wazo_ha_rig.monit import Monit
from wazo_ha_rig.netns import Host, TestNetwork
from wazo_ha_rig.partition import SipSampler, cut, heal
from wazo_ha_rig.standby import coordination_settings, standby_settings
from wazo_ha_rig.waiting import wait_for

WAZO_HA = str(Path(sys.executable).parent / "wazo-ha")
SUBNET, TAG = "10.203.11.0/24", "c"
NODES = ("master", "slave1", "slave2")
TTL = 5
WATCH = {"interval": 0.5, "fall": 3, "rise": 3, "stability": 5.0}
FENCE_GUARD = os.environ.get("WAZO_HA_RIG_FENCE_GUARD", "1") != "0"


def longest_gap(samples: list[tuple[float, frozenset[str]]], node: str) -> float:
    """The longest run of samples without an answer from ``node``, in seconds (0.1 s a sample).

    A single sample without its answer is the 80 ms timeout meeting a loaded machine (the answer came late);
    a stop, a start or a fence shows as a run of several.
    """
    longest = run = 0
    for _, serving in samples:
        run = 0 if node in serving else run + 1
        longest = max(longest, run)
    return round(longest * 0.1, 1)


class CoordinatedRig(StartStop):
    def __init__(self, directory: Path):
        self.directory = directory
        self.network = TestNetwork(SUBNET, TAG)
        self.etcd: EtcdCluster | None = None
        self.monits: dict[str, Monit] = {}
        self.watches: dict[str, subprocess.Popen] = {}
        self.sampler: SipSampler | None = None

    # --- set-up / teardown ---------------------------------------------------------------------

    def start(self) -> None:
        self.network.start()
        etcd_hosts = [self.network.add_host(f"etcd{i}") for i in (1, 2, 3)]
        self.nodes = {name: self.network.add_host(name) for name in NODES}
        self.phone = self.network.add_host("phone")
        self.etcd = EtcdCluster.start(members=3, hosts=etcd_hosts)
        self.etcd_addresses = [host.address for host in etcd_hosts]
        for name, host in self.nodes.items():
            monit = self.monits[name] = Monit.start(self.directory / name / "monit", host.address, 5060, host=host)
            # monit starts its service with the daemon; a node serves only under the lock: start from nothing
            wait_for(monit.standin_running, 15, f"{name}: monit started the stand-in")
            monit.cli("stop", "standin")
            wait_for(lambda monit=monit: not monit.standin_running(), 15, f"{name}: stand-in stopped")
            self._configure(name, host)
        self.sampler = SipSampler(self.phone, {name: host.address for name, host in self.nodes.items()})

    def close(self) -> None:
        for name in list(self.watches):
            self.stop_watch(name)
        for name in getattr(self, "nodes", {}):
            self.stop_guard(name)
        if self.sampler is not None:
            self.sampler.close()
        for monit in self.monits.values():
            monit.stop()
        if self.etcd is not None:
            self.etcd.stop()
        self.network.close()

    def _configure(self, name: str, host: Host) -> None:
        rank = NODES.index(name)
        config = self.config(name)
        config.parent.mkdir(parents=True, exist_ok=True)
        settings = {
            "root": str(self.directory / name / "root"),
            "local_addresses": [host.address],
            **standby_settings(self.monits[name], WATCH["stability"], [self.phone.address]),
            "sip_expiry": {"enabled": False},
            "slave_db": {"enabled": False},
            "schedules": {"enabled": False},
            "coordination": {
                **coordination_settings(self.etcd_addresses, name, rank, TTL, "wazo-ha/e2e"),
                "fence_guard": FENCE_GUARD,
            },
        }
        settings["plugins"]["coordinators"] = ["tooz"]
        settings["watch"].update(WATCH)
        config.write_text(yaml.safe_dump(settings))
        self.wazo_ha(name, "db", "upgrade")
        if rank == 0:
            self.wazo_ha(name, "config", "set", "node_type=master", f"remote_address={self.nodes['slave1'].address}")
        else:
            self.wazo_ha(name, "config", "set", "node_type=slave", f"remote_address={self.nodes['master'].address}")

    def config(self, name: str) -> Path:
        return self.directory / name / "config" / "config.yml"

    def wazo_ha(self, name: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.nodes[name].run([WAZO_HA, "--config", str(self.config(name)), *args], check=check)

    def start_watch(self, name: str) -> None:
        self.stop_watch(name)
        log = open(self.directory / name / "watch.log", "ab")
        self.watches[name] = self.nodes[name].popen(
            [WAZO_HA, "--config", str(self.config(name)), "watch"], stdout=log, stderr=log
        )
        log.close()
        wait_for(lambda: "watch started" in self.watch_log(name), 20, f"{name}: wazo-ha watch started")

    def stop_watch(self, name: str) -> None:
        process = self.watches.pop(name, None)
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a frozen watch must be able to stop its telephony
            self.nodes[name].stop(process, timeout=15)

    def run_dir(self, name: str) -> Path:
        return self.directory / name / "root" / "run" / "wazo-ha"

    def guard_pid(self, name: str) -> int | None:
        """The PID of the node's fence guard (started by its watch), ``None`` when none runs."""
        return guard_running(self.run_dir(name)) or None

    def stop_guard(self, name: str) -> None:
        """End the fence guard the node's watch started (a process of this rig, by its PID)."""
        pid = self.guard_pid(name)
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        try:
            wait_for(lambda: self.guard_pid(name) is None, 10, f"{name}: fence guard stopped")
        except Exception:
            os.kill(pid, signal.SIGKILL)

    def freeze(self, name: str) -> None:
        """SIGSTOP the node's ``wazo-ha watch`` process (only it: not its fence guard, not the telephony)."""
        os.kill(self.watches[name].pid, signal.SIGSTOP)

    def thaw(self, name: str) -> None:
        os.kill(self.watches[name].pid, signal.SIGCONT)

    def watch_log(self, name: str) -> str:
        path = self.directory / name / "watch.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def events(self, name: str, kind: str) -> list:
        store = Store(f"sqlite:///{self.directory / name / 'root'}/var/lib/wazo-ha/state.db")
        try:
            return store.events(kind=kind, limit=1000)
        finally:
            store.close()

    # --- faults ------------------------------------------------------------------------------

    def cut(self, name: str, addresses: list[str]) -> None:
        """Drop everything between host ``name`` (a node or an etcd member) and ``addresses`` (nftables there)."""
        cut(self.network.hosts[name], addresses)

    def heal(self, name: str) -> None:
        heal(self.network.hosts[name])

    # --- what the phone sees -----------------------------------------------------------------

    def serving(self) -> frozenset[str]:
        """Who answered in the last sample."""
        return self.sampler.samples[-1][1] if self.sampler.samples else frozenset()

    def wait_serving(self, expected: set[str], timeout: float, what: str) -> float:
        started = time.monotonic()
        wait_for(lambda: self.serving() == expected, timeout, what)
        return time.monotonic() - started

    def wait_serving_any(self, timeout: float, what: str) -> float:
        """Seconds until exactly one node answers."""
        started = time.monotonic()
        wait_for(lambda: len(self.serving()) == 1, timeout, what)
        return time.monotonic() - started

    def doubles(self, since: float = 0.0) -> list[tuple[float, frozenset[str]]]:
        return [sample for sample in self.sampler.since(since) if len(sample[1]) > 1]
