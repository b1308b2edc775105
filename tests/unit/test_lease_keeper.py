"""The lease keeper's I/O side with an in-memory coordinator (following the Coordinator contract), a service
manager whose start blocks until the test lets it go (a Wazo start takes longer than a lease), a fake clock,
and a real SQLite store and journal."""

from __future__ import annotations

import logging
import threading

import pytest

from wazo_ha_core import Coordinator, CoordinatorUnavailable, Lease, LockHolder, ServiceManager, ServiceState
from wazo_ha_core.coordination import GuardConfig, LeaderGuard
from wazo_ha_core.coordination.driver import LeaseKeeper
from wazo_ha_core.coordination.node import CoordinatedNode
from wazo_ha_core.extensions import PluginContext
from wazo_ha_core.journal import Journal
from wazo_ha_core.services import ServiceControl
from wazo_ha_core.settings import Settings
from wazo_ha_core.store import Store
from wazo_ha_rig.waiting import wait_for

CONFIG = GuardConfig(ttl=5.0, margin=2.0, renew_every=1.0)
LOG = logging.getLogger("test.keeper")


class MemoryCoordinator(Coordinator):
    def __init__(self):
        super().__init__(PluginContext("memory", "wazo_ha.coordinators", {}, None, None, LOG))
        self.reachable, self.renewals, self.token, self.held = True, 0, 0, None

    def acquire(self, node, ttl):
        if not self.reachable:
            raise CoordinatorUnavailable("memory: cut")
        if self.held:
            return None
        self.token += 1
        self.held = Lease(node, self.token, ttl)
        return self.held

    def renew(self, lease):
        if not self.reachable:
            raise CoordinatorUnavailable("memory: cut")
        self.renewals += 1
        return self.held == lease

    def release(self, lease):
        if self.held == lease:
            self.held = None

    def holder(self):
        return LockHolder(self.held.node, self.held.token, None) if self.held else None


class SlowStart(ServiceManager):
    def __init__(self):
        super().__init__(PluginContext("slow", "wazo_ha.service_managers", {}, None, None, LOG))
        self.gate, self.calls, self.active, self.tokens = threading.Event(), [], False, []

    def accept_token(self, token):
        self.tokens.append(token)

    def start(self):
        self.calls.append("start")
        self.gate.wait(30)
        self.active = True
        self.calls.append("started")

    def stop(self):
        self.calls.append("stop")
        self.active = False

    def status(self):
        return ServiceState(self.active)


@pytest.fixture
def keeper(tmp_path):
    settings = Settings.from_tree({"root": str(tmp_path)})
    store = Store.from_settings(settings)
    store.upgrade()
    clock = {"now": 100.0}
    manager, coordinator = SlowStart(), MemoryCoordinator()
    made = LeaseKeeper(
        node=CoordinatedNode(LeaderGuard(CONFIG), rank=0),
        coordinator=coordinator,
        services=ServiceControl([manager]),
        journal=Journal(store.append_event),
        state=store.plugin_state("core.watch"),
        name="pbx-a",
        ttl=CONFIG.ttl,
        interval=1.0,
        clock=lambda: clock["now"],
    )
    made.test_clock, made.test_manager, made.test_store = clock, manager, store
    yield made
    manager.gate.set()


def advance(keeper, seconds, step=0.5):
    for _ in range(int(seconds / step)):
        keeper.test_clock["now"] += step
        keeper.tick()


def test_renewals_go_on_while_a_long_start_runs_and_the_token_reaches_the_manager(keeper):
    keeper.tick()
    manager = keeper.test_manager
    wait_for(lambda: manager.calls == ["start"], 5, "start under way")
    assert keeper.serving, "counted as serving from the start: fencing would stop it"
    advance(keeper, 3 * CONFIG.ttl)  # three leases long: without renewals during the start it would have fenced
    assert manager.calls == ["start"] and keeper.coordinator.renewals >= 10
    manager.gate.set()
    wait_for(lambda: advance(keeper, 0.5) or keeper.node.guard.started_ok, 5, "the start's result applied")
    assert manager.calls == ["start", "started"] and manager.tokens == [1]
    [event] = keeper.test_store.events(kind="serve")
    assert event.figures["token"] == 1 and event.outcome == "ok"


def test_fencing_during_a_start_waits_for_it_then_stops(keeper):
    keeper.tick()
    manager = keeper.test_manager
    wait_for(lambda: manager.calls == ["start"], 5, "start under way")
    keeper.coordinator.reachable = False
    threading.Timer(0.3, manager.gate.set).start()
    advance(keeper, CONFIG.ttl)
    assert manager.calls == ["start", "started", "stop"] and not manager.active
    assert not keeper.serving and keeper.node.guard.token is None
    [event] = keeper.test_store.events(kind="self-fence")
    assert event.figures["token"] == 1


def test_stopping_the_keeper_stops_telephony_and_releases_the_lock(keeper):
    keeper.test_manager.gate.set()
    keeper.tick()
    wait_for(lambda: keeper.test_manager.active, 5, "serving")
    advance(keeper, 1)
    keeper.shutdown()
    assert not keeper.test_manager.active and keeper.coordinator.held is None
