"""``wazo-ha demo --nodes 3 --coordinator etcd``: the partition two nodes split on, and etcd's lock not splitting.

Three Wazo nodes (``master`` preferred, ``slave1``, ``slave2``), a three-member
etcd (Debian's ``etcd-server``, one member per namespace) and a phone, in the
private subnet :data:`SUBNET`. Each node's telephony is the SIP stand-in
(sipp answering OPTIONS, for Asterisk) under its own monit, switched by
``wazo_services``; each runs ``wazo-ha watch`` as an operator would. No
PostgreSQL here: replication and file sync are the two-node demo's part.

1. **Two-node mode** (``coordinator none``, today's default): the master↔slave1
   link is cut while both still reach the phone, which is slave1's witness.
   slave1 sees the master down with a witness answering, and takes over while
   the master keeps serving: the phone's samples show two nodes answering.
2. **Coordinated mode** (``coordinator tooz`` on the three members): the same
   cut, with slave2 cut off from the master too, for three lease TTLs. The
   standbys see the master down, but the master keeps renewing its lock on
   etcd, so neither takes over: every 100 ms sample shows at most one node
   answering. Then the cut heals.

Everything is removed at the end, as in the two-node demo (Ctrl-C included).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from . import waiting
from .demo import Demo, StepFailed, check_machine, wait_for
from .etcd import EtcdCluster
from .monit import SERVICE, Monit
from .netns import Host, TestNetwork
from .partition import SipSampler, cut, heal
from .standby import coordination_settings, standby_settings

SUBNET = "10.203.23.0/24"
TAG = "d3"
NODES = ("master", "slave1", "slave2")
TTL = 5  # seconds; the lease the active node keeps renewing
WATCH = {"interval": 0.5, "fall": 3, "rise": 3}
SPLIT_DEADLINE = 20.0  # seconds for the two-node split to show (fall rounds + the stand-in's start)
WINDOW = 3 * TTL  # seconds the cut lasts in coordinated mode: long past a two-node takeover


class CoordinatedDemo(Demo):
    def __init__(self, stability: float = 5.0, install: bool = True, out=print):
        super().__init__((), stability=stability, install=install, out=out)
        self.hosts: dict[str, Host] = {}
        self.monits: dict[str, Monit] = {}
        self.watches: dict[str, subprocess.Popen] = {}
        self.etcd: EtcdCluster | None = None
        self.sampler: SipSampler | None = None

    def scenario(self) -> None:
        self.out(
            f"wazo-ha demo --nodes 3 --coordinator etcd: three Wazo nodes and a three-member etcd as network "
            f"namespaces in {SUBNET}, on this machine"
        )
        self.out(f"  lease TTL {TTL} s; watch every {WATCH['interval']:g} s, master down after {WATCH['fall']} rounds")
        with self.step("check the machine (root, Debian packages, tooz)"):
            check_machine(self.install, self.say)
            check_tooz()
        with self.step("build three nodes, three etcd members and a phone"):
            self.build()
        with self.step("two-node mode: master-slave1 link cut, both reach the witness") as step:
            step.detail = self.two_node_split()
        with self.step("coordinated mode: three nodes under the etcd lock") as step:
            step.detail = self.coordinated_start()
        with self.step("coordinated mode: the same cut, no split") as step:
            step.detail = self.coordinated_cut()
        with self.step("heal: the master serves alone") as step:
            step.detail = self.healed()

    # --- building -----------------------------------------------------------------------------

    def build(self) -> None:
        import tempfile

        self.work = Path(tempfile.mkdtemp(prefix="wazo-ha-demo-"))
        self.work.chmod(0o711)
        self.say(f"workspace {self.work}")
        self.network = TestNetwork(SUBNET, TAG)
        self.network.start()
        self.say(f"unreachable route {SUBNET} added in the root namespace; switch namespace {self.network.switch}")
        etcd_hosts = [self.network.add_host(f"etcd{i}") for i in (1, 2, 3)]
        self.hosts = {name: self.network.add_host(name) for name in NODES}
        phone = self.network.add_host("phone")
        self.etcd = EtcdCluster.start(members=3, hosts=etcd_hosts)
        self.say(
            f"etcd: 3 members healthy on {', '.join(host.address for host in etcd_hosts)} "
            f"(data in {self.etcd.directory})"
        )
        for name, host in self.hosts.items():
            monit = self.monits[name] = Monit.start(self.work / name / "monit", host.address, 5060, host=host)
            wait_for(monit.standin_running, 15, f"{name}: monit started the stand-in")
            if name != "master":  # standbys start from nothing
                monit.cli("stop", SERVICE)
                wait_for(lambda monit=monit: not monit.standin_running(), 15, f"{name}: stand-in stopped")
        self.sampler = SipSampler(phone, {name: host.address for name, host in self.hosts.items()})
        self.phone_host = phone
        wait_for(lambda: self.serving() == {"master"}, 15, "the master answering SIP alone")
        self.say(
            "nodes: "
            + ", ".join(f"{name} {host.address}" for name, host in self.hosts.items())
            + f"; phone {phone.address} asks all three every 100 ms; the master answers"
        )

    def configure(self, coordinated: bool) -> None:
        """Every node's settings file and role; ``coordinated``: the tooz coordinator on the three members."""
        etcd_addresses = [member.address for member in self.etcd.members]
        for rank, (name, host) in enumerate(self.hosts.items()):
            config = self.config(name)
            config.parent.mkdir(parents=True, exist_ok=True)
            settings = {
                "root": str(self.work / name / "root"),
                "local_addresses": [host.address],
                **standby_settings(self.monits[name], self.stability, [self.phone_host.address]),
                "sip_expiry": {"enabled": False},
                "slave_db": {"enabled": False},
                "schedules": {"enabled": False},
                "notifications": {"mail_to": None},
            }
            settings["watch"].update(WATCH)
            if coordinated:
                settings["plugins"]["coordinators"] = ["tooz"]
                settings["coordination"] = coordination_settings(etcd_addresses, name, rank, TTL, "wazo-ha/demo")
            config.write_text(yaml.safe_dump(settings))
            config.chmod(0o600)
            self.wazo_ha(name, "db", "upgrade")
            master = self.hosts["master"].address
            if rank == 0:
                self.wazo_ha(
                    name, "config", "set", "node_type=master", f"remote_address={self.hosts['slave1'].address}"
                )
            else:
                self.wazo_ha(name, "config", "set", "node_type=slave", f"remote_address={master}")

    # --- 1. two-node mode ----------------------------------------------------------------------

    def two_node_split(self) -> str:
        self.configure(coordinated=False)
        self.start_watch_on("slave1")
        wait_for(lambda: self.watch_role("slave1") == "standby", 30, "slave1's watch standing by")
        self.say("two-node mode (coordinator none): slave1's `wazo-ha watch` stands by; the phone is its witness")
        started = time.monotonic()
        cut(self.hosts["master"], [self.hosts["slave1"].address])
        self.say("master <-> slave1 cut (nftables on the master); both still reach the phone")
        split = self.first_sample(lambda serving: len(serving) > 1, SPLIT_DEADLINE)
        if split is None:
            raise StepFailed(f"no split within {SPLIT_DEADLINE:g} s (slave1 did not take over)")
        # A little longer, so that the split is seen to last (an observation window, not synchronisation).
        end = split[0] + 2.0
        wait_for(lambda: time.monotonic() >= end, 5, "the observation window")
        samples = self.sampler.since(started)
        doubles = [sample for sample in samples if len(sample[1]) > 1]
        self.say(
            f"phone: {' and '.join(sorted(split[1]))} both answered SIP from {split[0] - started:.1f} s after the cut: "
            f"{len(doubles)} of {len(samples)} samples with two answering"
        )
        self.detail("a split brain: phones register with either node, calls between them fail, edits diverge")
        self.stop_watch_on("slave1")
        self.monits["slave1"].cli("stop", SERVICE)
        wait_for(lambda: not self.monits["slave1"].standin_running(), 15, "slave1's stand-in stopped")
        heal(self.hosts["master"])
        wait_for(lambda: self.serving() == {"master"}, 10, "the master answering alone again")
        self.say("reset: slave1's watch and telephony stopped, cut healed; the master answers alone")
        return (
            f"two nodes answered in {len(doubles)} of {len(samples)} samples (split after {split[0] - started:.1f} s)"
        )

    # --- 2. coordinated mode ------------------------------------------------------------------

    def coordinated_start(self) -> str:
        self.configure(coordinated=True)
        self.monits["master"].cli("stop", SERVICE)  # a node serves only under the lock: start from nothing
        wait_for(lambda: not self.monits["master"].standin_running(), 15, "the master's stand-in stopped")
        began = time.monotonic()
        self.start_watch_on("master")
        wait_for(lambda: self.serving() == {"master"}, 30, "the master serving under the lock")
        self.say(f"master: `wazo-ha watch` took the lock and started telephony ({time.monotonic() - began:.1f} s)")
        for name in ("slave1", "slave2"):
            self.start_watch_on(name)
        holder = self.lock_line("slave2")
        self.say(f"slave1, slave2: watches started; `wazo-ha status` on slave2: {holder}")
        return holder

    def coordinated_cut(self) -> str:
        before = {name: len(self.events(name, "failover")) for name in ("slave1", "slave2")}
        started = time.monotonic()
        standbys = [self.hosts["slave1"].address, self.hosts["slave2"].address]
        cut(self.hosts["master"], standbys)
        self.say(f"master <-> slave1 and slave2 cut for {WINDOW:g} s; all still reach etcd and the phone")
        end = started + WINDOW
        wait_for(lambda: time.monotonic() >= end, WINDOW + 5, "the observation window")  # not synchronisation
        heal(self.hosts["master"])
        samples = self.sampler.since(started)
        doubles = [sample for sample in samples if len(sample[1]) > 1]
        served = {name for _, serving in samples for name in serving}
        saw_down = "master-down" in self.watch_log_of("slave1")
        failovers = [name for name in before if len(self.events(name, "failover")) > before[name]]
        most = max((len(serving) for _, serving in samples), default=0)
        self.say(
            f"phone: {len(samples)} samples over {WINDOW:g} s, at most {most} answered "
            f"({', '.join(sorted(served)) or 'nobody'}); slave1 saw the master down: {saw_down}; "
            f"failovers: {', '.join(failovers) or 'none'}"
        )
        if doubles:
            raise StepFailed(f"{len(doubles)} samples with two nodes answering")
        if not saw_down:
            raise StepFailed("slave1 never saw the master down: the cut did not work")
        self.detail("the master kept renewing its lease on etcd: no standby could take the lock")
        return f"at most one answered in {len(samples)} samples (two-node mode: split)"

    def healed(self) -> str:
        healed = time.monotonic()
        wait_for(lambda: self.serving() == {"master"}, 15, "the master serving alone")
        window = healed + 2.0
        wait_for(lambda: time.monotonic() >= window, 5, "two more seconds of samples")
        samples = self.sampler.since(healed)
        if any(serving != {"master"} for _, serving in samples):
            raise StepFailed("after healing, another node answered or the master stopped")
        line = self.lock_line("slave1")
        self.say(f"cut healed; {len(samples)} samples, the master alone in each; slave1 status: {line}")
        return line

    # --- helpers ------------------------------------------------------------------------------

    def config(self, name: str) -> Path:
        return self.work / name / "config.yml"

    def wazo_ha(self, name: str, *args: str) -> str:
        from .demo_nodes import Node

        node = Node(name, self.hosts[name], self.work / name / "root", self.config(name))
        done = self.hosts[name].run(node.wazo_ha_command(*args), check=False, timeout=60)
        if done.returncode != 0:
            said = (done.stderr or done.stdout).strip().splitlines()
            raise StepFailed(f"{name}: wazo-ha {' '.join(args)}: {said[-1] if said else done.returncode}")
        return done.stdout

    def start_watch_on(self, name: str) -> None:
        from .demo_nodes import Node

        node = Node(name, self.hosts[name], self.work / name / "root", self.config(name))
        log = open(self.work / name / "watch.log", "ab")
        self.watches[name] = self.hosts[name].popen(node.wazo_ha_command("watch"), stdout=log, stderr=log)
        log.close()
        wait_for(lambda: "watch started" in self.watch_log_of(name), 20, f"{name}: wazo-ha watch started")

    def stop_watch_on(self, name: str) -> None:
        process = self.watches.pop(name, None)
        if process is not None:
            self.hosts[name].stop(process, timeout=15)

    def watch_log_of(self, name: str) -> str:
        text = ""
        for path in (self.work / name / "watch.log", self.work / name / "root/var/log/wazo-ha.log"):
            if path.exists():
                text += path.read_text(errors="replace")
        return text

    def store(self, name: str):
        from wazo_ha_core.store import Store

        return Store(f"sqlite:///{self.work / name / 'root'}/var/lib/wazo-ha/state.db")

    def watch_role(self, name: str) -> str | None:
        store = self.store(name)
        try:
            status = store.plugin_state("core.watch").get("status")
        finally:
            store.close()
        return status["role"] if status else None

    def events(self, name: str, kind: str) -> list:
        store = self.store(name)
        try:
            return store.events(kind=kind, limit=100)
        finally:
            store.close()

    def lock_line(self, name: str) -> str:
        shown = self.wazo_ha(name, "status")
        line = next((line for line in shown.splitlines() if line.startswith("lock holder")), "lock holder ?")
        return " ".join(line.split())

    def serving(self) -> frozenset[str]:
        samples = self.sampler.samples if self.sampler is not None else []
        return samples[-1][1] if samples else frozenset()

    def first_sample(self, condition, timeout: float):
        """The first sample from now on whose answering set meets ``condition``; ``None`` after ``timeout``."""
        since = time.monotonic()
        try:
            return wait_for(
                lambda: next((s for s in self.sampler.since(since) if condition(s[1])), None), timeout, "a sample"
            )
        except waiting.DeadlineExceeded:
            return None

    # --- observing after an error, clean-up -----------------------------------------------------

    def show_logs(self, lines: int = 8) -> None:
        if self.work is None:
            return
        for name in NODES:
            text = self.watch_log_of(name).splitlines()
            tail = [line for line in text if line.strip() and "(alembic." not in line][-lines:]  # not the migrations
            if tail:
                self.detail(f"--- {name} watch log (last lines) ---")
                for line in tail:
                    self.detail(line)

    def teardown(self) -> None:
        """Watches, monits, etcd (by PID), the phone's sampler, namespaces, route, workspace."""
        from .demo import _quietly

        removed = []
        for name in list(self.watches):
            with _quietly():
                self.stop_watch_on(name)
                removed.append(f"{name} watch")
        if self.sampler is not None:
            with _quietly():
                self.sampler.close()
        for name, monit in list(self.monits.items()):
            with _quietly():
                monit.stop()
                removed.append(f"{name} monit")
        self.monits.clear()
        if self.etcd is not None:
            with _quietly():
                self.etcd.stop()
                removed.append(f"etcd members and {self.etcd.directory}")
        if self.network is not None:
            with _quietly():
                self.network.close()
                removed.append("namespaces, route")
        if self.work is not None:
            import shutil

            shutil.rmtree(self.work, ignore_errors=True)
            removed.append(f"workspace {self.work}")
        self.say(f"removed: {', '.join(removed) if removed else 'nothing was created'}")


def check_tooz() -> None:
    """The coordinator plugin's libraries (the ``coordination`` extra of wazo-ha)."""
    try:
        import etcd3gw  # noqa: F401
        import tooz  # noqa: F401
    except ImportError as exc:
        raise StepFailed(
            f"the coordinated demo needs tooz and etcd3gw ({exc}): pip install 'wazo-ha[coordination]' "
            "(./run-demo installs them)"
        ) from None
