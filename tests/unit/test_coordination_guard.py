"""The leader-lock rules (wazo_ha_core.coordination) on synthetic timelines; two nodes sharing one simulated lock."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wazo_ha_core.coordination import Action, Grant, GuardConfig, LeaderGuard

CONFIG = GuardConfig(ttl=5.0, margin=1.5, renew_every=1.0)


def serving_guard(token: int = 7, at: float = 0.0) -> LeaderGuard:
    guard = LeaderGuard(CONFIG)
    assert guard.step(at, others_serving=False).action is Action.ACQUIRE
    guard.acquired(at, Grant(token))
    decision = guard.step(at, others_serving=False)
    assert (decision.action, decision.token) == (Action.START, token)
    guard.started(True)
    return guard


def test_starts_only_once_the_lock_is_held_with_its_token():
    guard = LeaderGuard(CONFIG)
    assert guard.step(0.0, others_serving=False).action is Action.ACQUIRE
    guard.acquired(0.0, None)  # another node holds it
    assert not guard.may_serve(0.1)
    assert guard.step(0.5, others_serving=False).action is Action.ACQUIRE
    guard.acquired(0.5, Grant(3))
    decision = guard.step(0.6, others_serving=False)
    assert decision.action is Action.START and decision.token == 3
    assert guard.may_serve(0.6) and guard.token == 3


@pytest.mark.parametrize("others_serving", [True, None])
def test_standby_does_not_acquire_while_its_probes_see_the_active_or_cannot_tell(others_serving):
    guard = LeaderGuard(CONFIG)
    for second in range(30):
        assert guard.step(float(second), others_serving=others_serving).action is Action.NONE
    assert guard.token is None


def test_renews_every_renew_every_and_keeps_serving():
    guard = serving_guard()
    renewals = []
    for tick in range(1, 200):
        now = tick * 0.1
        decision = guard.step(now, others_serving=False)
        assert decision.action in (Action.NONE, Action.RENEW)
        if decision.action is Action.RENEW:
            renewals.append(now)
            guard.renewed(now, True)
        assert guard.may_serve(now)
    assert len(renewals) == pytest.approx(19, abs=1)


def test_self_fences_before_the_lease_can_expire_when_renewals_fail():
    guard = serving_guard(at=0.0)
    stopped_at = None
    for tick in range(1, 100):
        now = tick * 0.1
        decision = guard.step(now, others_serving=False)
        if decision.action is Action.RENEW:
            guard.renewed(now, False)  # etcd majority unreachable
        if decision.action is Action.STOP:
            stopped_at = now
            guard.stopped(True)
            break
    # deadline = 0 + ttl; the stop is asked at deadline - margin, before the lease could be granted to another node
    assert stopped_at == pytest.approx(CONFIG.ttl - CONFIG.margin, abs=0.1)
    assert stopped_at < CONFIG.ttl
    assert not guard.may_serve(stopped_at) and guard.token is None


def test_a_frozen_node_resuming_past_its_deadline_stops_first_and_never_serves_on_the_old_token():
    guard = serving_guard(token=4, at=0.0)
    decision = guard.step(60.0, others_serving=False)  # SIGSTOP for a minute, then resumed
    assert decision.action is Action.STOP
    guard.stopped(True)
    guard.renewed(60.0, True)  # even a renewal that the backend accepted does not bring the old lease back
    assert guard.token is None and not guard.may_serve(60.0)
    assert guard.step(60.1, others_serving=True).action is Action.NONE  # the other node took over


def test_a_renewal_sent_after_the_fencing_point_is_ignored():
    guard = serving_guard(at=0.0)
    guard.renewed(CONFIG.ttl - CONFIG.margin, True)
    assert guard.token is None


def test_a_grant_with_a_token_that_went_backwards_is_refused_and_released():
    guard = serving_guard(token=9, at=0.0)
    assert guard.step(10.0, others_serving=False).action is Action.STOP
    guard.stopped(True)
    assert guard.step(10.1, others_serving=False).action is Action.ACQUIRE
    guard.acquired(10.1, Grant(8))
    decision = guard.step(10.2, others_serving=False)
    assert (decision.action, decision.token) == (Action.RELEASE, 8)
    assert guard.token is None and guard.highest_token == 9


def test_time_going_backwards_counts_as_a_lost_lease():
    guard = serving_guard(at=100.0)
    assert guard.step(50.0, others_serving=False).action is Action.STOP


def test_a_failed_stop_is_asked_again_and_a_failed_start_is_retried():
    guard = serving_guard(at=0.0)
    assert guard.step(4.0, others_serving=False).action is Action.STOP
    guard.stopped(False)
    assert guard.step(4.1, others_serving=False).action is Action.STOP
    guard.stopped(True)
    assert guard.step(4.2, others_serving=False).action is Action.ACQUIRE
    guard.acquired(4.2, Grant(12))
    assert guard.step(4.3, others_serving=False).action is Action.START
    guard.started(False)
    assert guard.serving  # half up counts as serving for fencing
    assert guard.wake_at() == pytest.approx(4.2 + CONFIG.renew_every)  # the renewal comes first
    assert guard.step(4.4, others_serving=False).action is Action.NONE
    assert guard.step(5.2, others_serving=False).action is Action.RENEW
    guard.renewed(5.2, True)
    assert guard.step(5.3, others_serving=False).action is Action.START  # retried renew_every after the failure


@pytest.mark.parametrize(
    "ttl, margin, renew_every", [(5, 0, 1), (5, 5, 1), (5, 1.5, 0), (5, 1.5, 3.5), (5, 6, 1)], ids=str
)
def test_config_is_validated(ttl, margin, renew_every):
    with pytest.raises(ValueError):
        GuardConfig(ttl=ttl, margin=margin, renew_every=renew_every)


# --- two nodes, one simulated lock -------------------------------------------------------------------------------


@dataclass
class SimLock:
    """The backend: one lock, a lease with a TTL counted from when the request is processed, a revision counter."""

    ttl: float
    holder: int | None = None
    token: int = 0
    expiry: float = 0.0
    revision: int = 0

    def held(self, now: float) -> bool:
        return self.holder is not None and now < self.expiry

    def acquire(self, node: int, now: float) -> int | None:
        if self.held(now):
            return None
        self.revision += 1
        self.holder, self.token, self.expiry = node, self.revision, now + self.ttl
        return self.token

    def renew(self, node: int, token: int, now: float) -> bool:
        if self.held(now) and self.holder == node and self.token == token:
            self.expiry = now + self.ttl
            return True
        return False

    def release(self, node: int, token: int) -> None:
        if self.holder == node and self.token == token:
            self.holder = None


@dataclass
class SimNode:
    guard: LeaderGuard
    running: bool = False  # telephony processes up
    frozen_until: float = 0.0  # the whole node (process and telephony) is paused until then
    link: str = "ok"  # to the lock: ok, cut (requests lost), drop-reply (processed, answer lost), slow
    probes: str = "truth"  # what its probes say about the other node: truth, lies (not serving), unknown
    start_fails: bool = False
    next_tick: float = 0.0
    tokens: list[int] = field(default_factory=list)


CHANGES = ["ok", "cut", "drop-reply", "slow", "truth", "lies", "unknown", "start-fails", "start-works", "freeze"]
TIME_BOUND = 1.0  # each coordinator call returns within this; a slow one takes up to that
INTERVAL = 1.0  # the driver's own loop interval


class TwoNodes:
    """Two drivers sharing one SimLock on one clock; each steps every INTERVAL and at its guard's wake_at()."""

    def __init__(self):
        self.lock = SimLock(CONFIG.ttl)
        self.nodes = [SimNode(LeaderGuard(CONFIG)), SimNode(LeaderGuard(CONFIG))]
        self.now = 0.0
        self.started_tokens: list[int] = []

    def serving(self, index: int, now: float) -> bool:
        node = self.nodes[index]
        return node.running and now >= node.frozen_until

    def check(self) -> None:
        serving = [i for i in range(2) if self.serving(i, self.now)]
        assert len(serving) <= 1, f"two actives at t={self.now:.2f}"
        for index in serving:
            assert self.lock.held(self.now) and self.lock.holder == index, f"node {index} serves without the lock"
            assert self.nodes[index].guard.token == self.lock.token

    def due(self, index: int) -> float:
        node = self.nodes[index]
        wake = node.guard.wake_at()
        return max(node.frozen_until, min(node.next_tick, wake if wake is not None else node.next_tick))

    def advance(self, seconds: float) -> None:
        """Let time pass, running every step the drivers would run meanwhile (a thawed node steps at once)."""
        target = self.now + seconds
        for _ in range(5_000):
            index = min(range(2), key=self.due)
            when = self.due(index)
            if when > target:
                break
            self.now = max(self.now, when)
            self.step(index)
        else:
            raise AssertionError(f"the drivers keep stepping at t={self.now} (a wake_at() that never moves on)")
        self.now = target
        self.check()

    def step(self, index: int, delay: float = 0.5 * CONFIG.renew_every) -> None:
        node, other = self.nodes[index], 1 - index
        if self.now < node.frozen_until:
            return
        node.next_tick = self.now + INTERVAL
        others_serving = {"lies": False, "unknown": None}.get(node.probes, self.serving(other, self.now))
        decision = node.guard.step(self.now, others_serving)
        # Calls take no simulated time (the other node runs meanwhile in reality); a slow call is one whose
        # request was sent `delay` seconds before the backend processed it, so the node counts from then.
        sent = self.now - (delay if node.link == "slow" else 0.0)
        if decision.action in (Action.ACQUIRE, Action.RENEW):
            result = None
            if node.link != "cut":
                if decision.action is Action.ACQUIRE:
                    result = self.lock.acquire(index, self.now)
                else:
                    result = self.lock.renew(index, decision.token, self.now)
                if node.link == "drop-reply":
                    result = None
            if decision.action is Action.ACQUIRE:
                node.guard.acquired(sent, Grant(result) if result else None)
            else:
                node.guard.renewed(sent, bool(result))
        elif decision.action is Action.START:
            node.running = True
            node.guard.started(not node.start_fails)
            self.started_tokens.append(decision.token)
        elif decision.action is Action.STOP:
            node.running = False
            node.guard.stopped(True)
        elif decision.action is Action.RELEASE:
            self.lock.release(index, decision.token)
        if node.guard.token is not None:
            node.tokens.append(node.guard.token)
        self.check()

    def change(self, index: int, change: str, freeze: float) -> None:
        node = self.nodes[index]
        if change in ("ok", "cut", "drop-reply", "slow"):
            node.link = change
        elif change in ("truth", "lies", "unknown"):
            node.probes = change
        elif change in ("start-fails", "start-works"):
            node.start_fails = change == "start-fails"
        elif self.now >= node.frozen_until:
            node.frozen_until = self.now + freeze


events = st.lists(
    st.tuples(
        st.floats(0.0, 8.0),  # time passing before the change
        st.integers(0, 1),  # which node it happens to
        st.sampled_from(CHANGES),
        st.floats(0.5, 30.0),  # how long a freeze lasts
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(events)
def test_two_nodes_on_one_lock_never_serve_at_once_and_tokens_only_grow(timeline):
    cluster = TwoNodes()
    for pause, index, change, freeze in timeline:
        cluster.advance(pause)
        cluster.change(index, change, freeze)
    cluster.advance(20.0)
    for node in cluster.nodes:
        assert node.tokens == sorted(node.tokens)
    assert cluster.started_tokens == sorted(cluster.started_tokens)


def test_the_simulation_takes_over_when_the_active_is_cut_off():
    cluster = TwoNodes()
    cluster.nodes[1].probes = "unknown"
    cluster.advance(3.0)
    assert cluster.serving(0, cluster.now)
    cluster.nodes[0].link = "cut"  # active cut from the lock
    cluster.nodes[1].probes = "lies"  # and from the standby
    cluster.advance(CONFIG.ttl + 2 * INTERVAL)
    assert not cluster.serving(0, cluster.now) and cluster.serving(1, cluster.now)
    assert cluster.nodes[1].guard.token > cluster.nodes[0].tokens[-1]


def test_the_simulation_catches_a_guard_that_ignores_its_deadline(monkeypatch):
    """The property test has teeth: with self-fencing disabled, a partitioned active and a new one overlap."""
    cluster = TwoNodes()
    cluster.nodes[1].probes = "unknown"
    cluster.advance(3.0)
    assert cluster.serving(0, cluster.now)
    monkeypatch.setattr(LeaderGuard, "holds", lambda self, now: self.token is not None)
    monkeypatch.setattr(LeaderGuard, "wake_at", lambda self: None)
    cluster.nodes[0].link = "cut"
    cluster.nodes[1].probes = "lies"
    with pytest.raises(AssertionError, match=r"two actives|without the lock"):
        cluster.advance(30.0)
