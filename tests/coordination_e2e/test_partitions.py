"""Coordinated mode end to end: three etcd members and three Wazo nodes in network namespaces.

What a phone sees is sampled every 100 ms (OPTIONS to the three nodes at once); at no sample may two
nodes answer. The telephony on each node is the SIP stand-in under a real monit (Asterisk cannot run here).
"""

from __future__ import annotations

import time

from tests.rig.coordinated import TTL, WATCH, longest_gap
from wazo_ha_rig.waiting import wait_for


def test_master_slave_link_cut_while_both_reach_etcd_gives_no_takeover(coordinated):
    rig = coordinated
    shown = rig.wazo_ha("slave1", "status").stdout  # what an operator sees on a standby
    assert "coordinator     tooz" in shown and "lock holder     master  token " in shown
    assert "this node       slave1 (rank 1): not serving, no lock" in shown
    standbys = [rig.nodes["slave1"].address, rig.nodes["slave2"].address]
    started = time.monotonic()
    rig.cut("master", standbys)  # a switch port / VLAN mistake: the standbys lose the master, not etcd nor the phone
    time.sleep(4 * TTL)  # observation window ("nothing moves"), not synchronisation
    rig.heal("master")
    samples = rig.sampler.since(started)
    assert len(samples) >= 4 * TTL * 10 * 0.8, "the sampler kept its 100 ms pace"
    assert rig.doubles(started) == []
    assert all(serving <= {"master"} for _, serving in samples), "nobody but the master answered"
    assert longest_gap(samples, "master") <= 0.3, "the master served throughout (a late answer is no gap)"
    assert rig.events("slave1", "failover") == [] and rig.events("slave2", "failover") == []
    assert "master-down" in rig.watch_log("slave1"), "the standby did see the master down (the cut worked)"


def test_master_cut_from_etcd_stops_within_the_ttl_the_first_standby_takes_over_then_failback(coordinated):
    rig = coordinated
    started = time.monotonic()
    rig.cut("master", rig.etcd_addresses)  # cut from etcd, still reachable by the phones and the standbys
    stopped = rig.wait_serving(set(), TTL + 1, "the master self-fenced")
    failover = stopped + rig.wait_serving(
        {"slave1"}, TTL + 3 * WATCH["fall"] * WATCH["interval"] + 10, "slave1 serving"
    )
    print(f"\nmaster stopped after {stopped:.1f} s; slave1 answered {failover:.1f} s after the cut (ttl {TTL} s)")
    assert stopped <= TTL, "self-fencing happens before the lease can expire"
    [fence] = rig.events("master", "self-fence")
    [takeover] = wait_for(lambda: rig.events("slave1", "failover"), 10, "slave1's failover journaled")
    assert takeover.figures["token"] > fence.figures["token"]
    healed = time.monotonic()
    rig.heal("master")
    failback = rig.wait_serving({"master"}, 60, "failback to the master")
    print(f"failback {failback:.1f} s after healing (stability {WATCH['stability']} s)")
    assert failback >= WATCH["stability"], "failback waits the stability window"
    assert rig.doubles(started) == []
    assert rig.events("slave2", "failover") == [], "the second standby never served"
    assert healed  # the whole scenario: no sample with two nodes answering


def test_etcd_minority_lost_nothing_moves(coordinated):
    rig = coordinated
    started = time.monotonic()
    fences = len(rig.events("master", "self-fence"))
    etcd3 = rig.network.hosts["etcd3"]
    rig.network.link_down(etcd3)
    try:
        time.sleep(3 * TTL)  # observation window: renewals go through the two remaining members
    finally:
        rig.network.link_up(etcd3)
    samples = rig.sampler.since(started)
    assert all(serving <= {"master"} for _, serving in samples), "nobody but the master answered"
    assert longest_gap(samples, "master") <= 0.3, "the master served throughout (a late answer is no gap)"
    assert len(rig.events("master", "self-fence")) == fences


def test_etcd_majority_lost_nobody_serves_then_the_master_again(coordinated):
    rig = coordinated
    started = time.monotonic()
    fences = len(rig.events("master", "self-fence"))
    down = [rig.network.hosts["etcd2"], rig.network.hosts["etcd3"]]
    for host in down:
        rig.network.link_down(host)
    try:
        stopped = rig.wait_serving(set(), TTL + 1, "the master self-fenced (no etcd majority)")
        assert stopped <= TTL
        time.sleep(2 * TTL)  # observation window: the documented policy is that nobody serves
        assert rig.serving() == frozenset()
    finally:
        for host in down:
            rig.network.link_up(host)
    back = rig.wait_serving({"master"}, 30, "the master serving once the majority is back")
    print(f"\nmajority lost: master stopped after {stopped:.1f} s; serving {back:.1f} s after etcd came back")
    assert rig.doubles(started) == []
    assert len(rig.events("master", "self-fence")) == fences + 1


def test_first_standby_cut_from_etcd_as_well_the_second_takes_over(coordinated):
    rig = coordinated
    started = time.monotonic()
    rig.cut("master", rig.etcd_addresses)
    rig.cut("slave1", rig.etcd_addresses)
    try:
        took = rig.wait_serving({"slave2"}, 3 * TTL + 15, "slave2 serving")
        print(f"\nslave2 answered {took:.1f} s after both cuts")
    finally:
        rig.heal("slave1")
        rig.heal("master")
    rig.wait_serving({"master"}, 60, "failback to the master")
    assert rig.doubles(started) == []


def test_active_watch_frozen_past_the_ttl_is_fenced_by_its_guard_and_resumes_without_serving(coordinated):
    """SIGSTOP on the master's ``wazo-ha watch`` only: its telephony keeps answering unless the fence guard (a
    process apart) stops it before the lease can expire. Resumed (SIGCONT) after slave1 took over, the master
    must not answer again under its old token: it serves again only at failback, with a newer token."""
    rig = coordinated
    [old] = rig.events("master", "serve")[:1] or [None]  # events are newest first
    fences, failovers = len(rig.events("master", "guard-fence")), len(rig.events("slave1", "failover"))
    gaps = rig.watch_log("master").count("no step for")
    started = time.monotonic()
    rig.freeze("master")
    try:
        stopped = rig.wait_serving(set(), TTL + 1, "the frozen master's telephony stopped by its fence guard")
        took = stopped + rig.wait_serving(
            {"slave1"}, TTL + WATCH["fall"] * WATCH["interval"] + 10, "slave1 serving while the master is frozen"
        )
        time.sleep(max(0.0, started + TTL + 1 - time.monotonic()))  # frozen past the TTL (a window, not a sync)
    finally:
        resumed = time.monotonic()
        rig.thaw("master")
    print(f"\nfrozen master stopped after {stopped:.1f} s, slave1 answered {took:.1f} s after the freeze")
    assert stopped < TTL - 1, "the guard stops telephony before the lease can expire, with time to spare"
    assert resumed - started > TTL, "frozen past the lease TTL"

    def new(name, kind, before):  # the events journaled since the freeze (newest first)
        events = rig.events(name, kind)
        return events[: len(events) - before] or None

    [fence] = wait_for(lambda: new("master", "guard-fence", fences), 10, "the guard's stop journaled")
    [takeover] = wait_for(lambda: new("slave1", "failover", failovers), 10, "slave1's failover journaled")
    assert takeover.figures["token"] > fence.figures["token"]
    if old is not None:
        assert fence.figures["token"] == old.figures["token"], "the guard fenced the token the master served under"
    wait_for(lambda: rig.watch_log("master").count("no step for") > gaps, 10, "the resumed watch noticed its freeze")
    failback = rig.wait_serving({"master"}, 60, "failback to the master after it resumed")
    back = time.monotonic()
    [serve] = rig.events("master", "serve")[:1]
    assert serve.figures["token"] > takeover.figures["token"], "the master serves again only under a newer token"
    after = [serving for at, serving in rig.sampler.since(resumed) if at < back - 1]
    assert all("master" not in serving for serving in after), "the resumed master answered before its failback"
    assert rig.doubles(started) == []
    print(f"resumed master served again {failback:.1f} s after SIGCONT, token {serve.figures['token']}")
