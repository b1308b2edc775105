"""The wired coordinated mode against real etcd: two `Watcher` loops (threads, real time), each with a
LeaseKeeper over the real tooz coordinator, its own SQLite store and journal.

Stand-ins, said here: the health probes answer from a shared switchboard (is the master's link up, does
the master serve), and the service managers record start/stop instead of running Wazo's services (their
own tests run the real ones). A sampler reads who serves every 50 ms; no sample may show two.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.rig.plugin_loading import MemoryState
from wazo_ha_core import HealthProbe, PluginError, ProbeAnswer, ServiceManager, ServiceState, Settings
from wazo_ha_core.coordination import LeaderGuard
from wazo_ha_core.coordination.config import guard_config
from wazo_ha_core.coordination.driver import LeaseKeeper
from wazo_ha_core.coordination.node import CoordinatedNode
from wazo_ha_core.extensions import PluginContext
from wazo_ha_core.journal import Journal
from wazo_ha_core.services import ServiceControl
from wazo_ha_core.store import Store
from wazo_ha_core.watcher import Watcher
from wazo_ha_rig.waiting import wait_for

TTL = 3
COORDINATION = {"lease_ttl": TTL, "timeout": 1, "stop_margin": 0.8}
WATCH = {"interval": 0.2, "fall": 3, "rise": 2, "stability": 1.0, "retry": 1.0}


def _log():
    import logging

    return logging.getLogger("test.coordinated")


class Switchboard:
    """What the standby's probes see: the master answers when the link is up and it serves."""

    def __init__(self):
        self.link_up = True
        self.serving: dict[str, bool] = {}
        self.tokens: dict[str, list[int]] = {}


class SwitchboardProbe(HealthProbe):
    def __init__(self, checks, answer):
        super().__init__(PluginContext(checks, "wazo_ha.health_probes", {"timeout": 0.2}, None, None, _log()))
        self.checks, self.answer = checks, answer

    def probe(self, target):
        up = self.answer()
        return ProbeAnswer(up, 0.001 if up else None, "" if up else "timeout")


class RecordingServices(ServiceManager):
    """Records start/stop in the switchboard; keeps the highest token like wazo_services does."""

    def __init__(self, board: Switchboard, node: str):
        super().__init__(PluginContext("services", "wazo_ha.service_managers", {}, None, MemoryState(), _log()))
        self.board, self.node = board, node
        board.serving[node] = False
        board.tokens[node] = []

    def accept_token(self, token):
        if self.board.tokens[self.node] and token < self.board.tokens[self.node][-1]:
            raise PluginError("token went backwards")
        self.board.tokens[self.node].append(token)

    def start(self):
        self.board.serving[self.node] = True

    def stop(self):
        self.board.serving[self.node] = False

    def status(self):
        return ServiceState(self.board.serving[self.node])


class Node:
    def __init__(self, tmp_path, board, coordinator, name, standby):
        self.settings = Settings.from_tree({"root": str(tmp_path / name), "watch": WATCH, "coordination": COORDINATION})
        (tmp_path / name).mkdir()
        self.store = Store.from_settings(self.settings)
        self.store.upgrade()
        self.journal = Journal(self.store.append_event)
        self.board, self.name = board, name
        services = ServiceControl([RecordingServices(board, name)])
        guard = LeaderGuard(guard_config(self.settings.get("coordination")))
        self.keeper = LeaseKeeper(
            node=CoordinatedNode(guard, rank=1 if standby else 0, standby_delay=1.0),
            coordinator=coordinator,
            services=services,
            journal=self.journal,
            state=self.store.plugin_state("core.watch"),
            name=name,
            ttl=TTL,
            interval=0.2,
        )
        master_serves = lambda: board.link_up and board.serving["master"]  # noqa: E731
        self.watcher = Watcher(
            settings=self.settings,
            journal=self.journal,
            state=self.store.plugin_state("core.watch"),
            probes=[SwitchboardProbe("host", lambda: board.link_up), SwitchboardProbe("service", master_serves)],
            services=services,
            target=lambda: "master" if standby else None,
            is_slave=lambda: standby,
            keeper=self.keeper,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.watcher.run, args=(self.stop,), daemon=True)

    def events(self, kind):
        return self.store.events(kind=kind, limit=50)


class Sampler:
    """Who serves, every 50 ms; fails the test on any sample with two."""

    def __init__(self, board):
        self.board, self.samples, self.stop = board, [], threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.wait(0.05):
            self.samples.append((time.monotonic(), sorted(n for n, up in self.board.serving.items() if up)))

    def finish(self):
        self.stop.set()
        self.thread.join()
        doubles = [sample for sample in self.samples if len(sample[1]) > 1]
        assert not doubles, f"two nodes served at {len(doubles)} samples, first {doubles[0]}"
        return self.samples


@pytest.fixture
def cluster(tmp_path, etcd3, make_coordinator):
    """Master on member 0 only, standby on members 1 and 2: killing member 0 cuts the master from etcd."""
    board = Switchboard()
    master = Node(tmp_path, board, make_coordinator([etcd3.tooz_url(0)], "master"), "master", standby=False)
    standby = Node(
        tmp_path, board, make_coordinator([etcd3.tooz_url(1), etcd3.tooz_url(2)], "standby"), "standby", standby=True
    )
    sampler = Sampler(board)
    nodes = (master, standby)
    for node in nodes:
        node.thread.start()
    yield board, master, standby, etcd3, sampler
    for node in nodes:
        node.stop.set()
    for node in nodes:
        node.thread.join(timeout=10)
    sampler.finish()


def test_the_master_serves_under_the_lock_with_its_token_journaled(cluster):
    board, master, _standby, _etcd, _sampler = cluster
    wait_for(lambda: board.serving["master"], 10, "master serving")
    [event] = wait_for(lambda: master.events("serve"), 5, "the serve event journaled (when the start returns)")
    assert event.figures["token"] == board.tokens["master"][0] > 0
    assert master.keeper.coordinator.holder().node == "master"


def test_link_cut_between_master_and_standby_both_reaching_etcd_gives_no_takeover(cluster):
    board, _master, standby, _etcd, sampler = cluster
    wait_for(lambda: board.serving["master"], 10, "master serving")
    board.link_up = False  # the standby's probes now fail: it asks for the lock every round, in vain
    wait_for(lambda: standby.watcher.watch.state.master_down, 5, "standby sees the master down")
    time.sleep(3 * TTL)  # observation window for "nothing moves", not synchronisation
    assert board.serving == {"master": True, "standby": False}
    assert standby.events("failover") == []
    sampler.finish()


def test_master_cut_from_etcd_stops_within_the_ttl_and_the_standby_takes_over_with_a_higher_token(cluster):
    board, master, standby, etcd, sampler = cluster
    wait_for(lambda: board.serving["master"], 10, "master serving")
    first_token = board.tokens["master"][0]
    cut = time.monotonic()
    etcd.kill(0)  # the master's only etcd member: it cannot renew (the standby still reaches the majority)
    wait_for(lambda: not board.serving["master"], TTL, "master self-fenced within the TTL")
    fenced = time.monotonic() - cut
    wait_for(lambda: board.serving["standby"], TTL + 5, "standby serving")
    failover = time.monotonic() - cut
    assert board.tokens["standby"][-1] > first_token
    [event] = master.events("self-fence")
    assert event.figures["token"] == first_token
    [event] = wait_for(lambda: standby.events("failover"), 5, "the failover journaled (when the start returns)")
    assert event.figures["token"] == board.tokens["standby"][-1]
    print(f"self-fenced after {fenced:.2f} s, standby serving after {failover:.2f} s (ttl {TTL} s)")
    samples = sampler.finish()
    assert any(serving == [] for _, serving in samples), "a gap between the two, never an overlap"
