"""Coordinated mode's node rules (wazo_ha_core.coordination.node) on synthetic timelines.

A preferred node and one or two standbys share the simulated lock of test_coordination_guard (a lease
counted from when the backend processes the request, a revision counter). What each standby's watch says
is scripted per scenario; the check at every step: at most one node serves, and it holds the lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tests.unit.test_coordination_guard import SimLock
from wazo_ha_core.coordination import Action, Grant, GuardConfig, LeaderGuard
from wazo_ha_core.coordination.config import guard_config
from wazo_ha_core.coordination.node import CoordinatedNode, failback_observations
from wazo_ha_core.watch import Action as WatchAction
from wazo_ha_core.watch import Health, Observation, RoundVerdict

CONFIG = GuardConfig(ttl=5.0, margin=2.0, renew_every=1.0)
TICK = 0.1


@dataclass
class Sim:
    node: CoordinatedNode
    reaches_lock: bool = True
    wish: WatchAction = WatchAction.NONE  # what its watch says each round (standbys)
    running: bool = False
    tokens: list[int] = field(default_factory=list)
    stops: list[tuple[float, str]] = field(default_factory=list)


class Cluster:
    def __init__(self, ranks=(0, 1), standby_delay=3.0):
        self.lock = SimLock(CONFIG.ttl)
        self.nodes = [Sim(CoordinatedNode(LeaderGuard(CONFIG), rank=r, standby_delay=standby_delay)) for r in ranks]
        self.now = 0.0
        self.max_serving = 0

    def serving(self) -> list[int]:
        return [i for i, sim in enumerate(self.nodes) if sim.running]

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now = round(self.now + TICK, 6)
            for index, sim in enumerate(self.nodes):
                if sim.node.rank:
                    sim.node.watched(self.now, sim.wish, RoundVerdict.FAILED)
                if sim.node.wants_holder() and (not sim.reaches_lock or self.lock.held(self.now)):
                    sim.node.held_elsewhere(self.now)  # what the driver reads from the backend
                for _ in range(4):
                    decision = sim.node.step(self.now)
                    if decision.action is Action.NONE:
                        break
                    self._act(index, sim, decision)
            serving = self.serving()
            self.max_serving = max(self.max_serving, len(serving))
            assert len(serving) <= 1, f"two actives at {self.now}"
            for index in serving:
                assert self.lock.held(self.now) and self.lock.holder == index, f"{index} serves without the lock"

    def _act(self, index, sim, decision):
        guard = sim.node.guard
        if decision.action is Action.ACQUIRE:
            token = self.lock.acquire(index, self.now) if sim.reaches_lock else None
            guard.acquired(self.now, Grant(token) if token else None)
        elif decision.action is Action.RENEW:
            ok = sim.reaches_lock and self.lock.renew(index, guard.token, self.now)
            guard.renewed(self.now, ok)
        elif decision.action is Action.START:
            sim.running = True
            sim.tokens.append(decision.token)
            guard.started(True)
        elif decision.action is Action.STOP:
            sim.running = False
            sim.stops.append((self.now, decision.reason))
            guard.stopped(True)
        elif decision.action is Action.RELEASE:
            if sim.reaches_lock:
                self.lock.release(index, decision.token)
            guard.released(decision.token)


def test_the_preferred_node_takes_the_free_lock_and_serves_with_its_token():
    cluster = Cluster()
    cluster.run(3)
    assert cluster.serving() == [0] and cluster.nodes[0].tokens == [1]


def test_link_cut_between_the_nodes_while_both_reach_the_lock_gives_no_takeover():
    cluster = Cluster()
    cluster.run(2)
    cluster.nodes[1].wish = WatchAction.TAKE_OVER  # the standby's probes see the master down: the link is cut
    cluster.run(60)
    assert cluster.serving() == [0] and cluster.nodes[1].tokens == []


def test_active_cut_from_the_lock_stops_before_its_lease_ends_and_the_standby_takes_over():
    cluster = Cluster()
    cluster.run(2)
    master, standby = cluster.nodes
    master.reaches_lock = False
    cut_at = cluster.now
    cluster.run(3.5)
    assert not master.running, "self-fencing happens before the lease could expire"
    [(stopped_at, reason)] = master.stops
    assert stopped_at < cut_at + CONFIG.ttl - 0.9 and "fencing point" in reason
    standby.wish = WatchAction.TAKE_OVER  # its probes now see the master silent
    cluster.run(4)
    assert cluster.serving() == [1] and standby.tokens == [2]


def test_failback_stops_releases_then_the_preferred_node_serves_with_a_higher_token():
    cluster = Cluster()
    master, standby = cluster.nodes
    master.reaches_lock = False
    standby.wish = WatchAction.TAKE_OVER
    cluster.run(10)
    assert cluster.serving() == [1]
    master.reaches_lock = True
    cluster.run(10)
    assert cluster.serving() == [1], "the preferred node waits while the standby holds the lock"
    standby.wish = WatchAction.GIVE_BACK  # after rise rounds and the stability window
    cluster.run(0.2)
    standby.wish = WatchAction.NONE
    cluster.run(2)
    assert cluster.serving() == [0] and master.tokens[-1] > standby.tokens[-1]
    assert standby.stops[-1][1].startswith("failback")


def test_the_first_standby_wins_and_the_second_waits_its_delay():
    cluster = Cluster(ranks=(0, 2, 1), standby_delay=3.0)  # the second standby steps first at every tick
    master, second, first = cluster.nodes
    master.reaches_lock = False
    cluster.run(4)
    first.wish = second.wish = WatchAction.TAKE_OVER
    cluster.run(5)
    assert cluster.serving() == [2]
    first.reaches_lock = False  # the first standby is cut off as well
    cluster.run(6)
    assert cluster.serving() == [], "the first standby fenced; its lease then has to stay free for the delay"
    cluster.run(4)
    assert cluster.serving() == [1]


def test_a_standby_never_asks_for_the_lock_without_the_watch_saying_the_active_is_gone():
    cluster = Cluster()
    cluster.nodes[0].reaches_lock = False
    cluster.run(30)
    assert cluster.serving() == [] and cluster.nodes[1].tokens == []


def test_preferred_node_serving_at_start_keeps_serving_when_the_lock_is_free_and_stops_when_held():
    guard = LeaderGuard(CONFIG)
    guard.serving = True
    node = CoordinatedNode(guard, rank=0)
    assert node.step(0.0).action is Action.ACQUIRE  # no stop first
    guard.acquired(0.0, Grant(3))
    assert node.step(0.1).action is Action.START
    guard = LeaderGuard(CONFIG)
    guard.serving = True
    node = CoordinatedNode(guard, rank=0)
    assert node.step(0.0).action is Action.ACQUIRE
    guard.acquired(0.0, None)  # a standby holds it
    assert node.step(0.1).action is Action.STOP


def test_failback_observations_keep_the_host_probes():
    host = Observation("host", Health.UP, "icmp")
    service = Observation("service", Health.DOWN, "sip")
    assert failback_observations([host, service]) == [host]
    assert failback_observations([service]) == [service]


@pytest.mark.parametrize("ttl, margin, timeout", [(5, 2, 1), (30, 5, 2)])
def test_guard_timings_miss_one_renewal_and_still_stop_in_time(ttl, margin, timeout):
    config = guard_config({"lease_ttl": ttl, "stop_margin": margin, "timeout": timeout})
    # one renewal lost, the next sent renew_every later takes the full timeout: still before the fencing point
    assert 2 * config.renew_every + timeout <= ttl - margin


def test_a_lock_given_back_at_failback_goes_to_the_preferred_node_not_to_the_next_standby():
    cluster = Cluster(ranks=(2, 0, 1), standby_delay=3.0)  # the second standby steps first at every tick
    second, master, first = cluster.nodes
    master.reaches_lock = False
    first.wish = second.wish = WatchAction.TAKE_OVER  # nobody sees the master serve from now on
    cluster.run(10)
    assert cluster.serving() == [2]
    master.reaches_lock = True
    cluster.run(3)
    first.wish = WatchAction.GIVE_BACK  # the preferred node's host has been good for the window
    cluster.run(0.2)
    first.wish = WatchAction.NONE
    cluster.run(10)
    assert cluster.serving() == [1], "the preferred node took the lock"
    assert second.tokens == []
