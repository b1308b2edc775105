"""wazo-ha doctor's clock offset by ICMP timestamps, between two network namespaces of the test subnet
(the peer's real kernel answers), a firewalled peer, and the judgement on synthetic offsets (namespaces
share one clock: a real skew cannot be made here)."""

from __future__ import annotations

import pytest

from tests.rig.netns import TestNetwork
from wazo_ha_core.doctor import FAIL, PASS, WARN
from wazo_ha_core.doctor_clock import _wrap, clock_offset_check, icmp_timestamp_offset, judge, offset_from_stamps

SUBNET = "10.203.9.0/29"


@pytest.fixture(scope="module")
def two_nodes():
    with TestNetwork(SUBNET, "dc") as network:
        yield network, network.add_host("master"), network.add_host("slave")


def test_the_peers_kernel_answers_and_one_clock_gives_no_offset(two_nodes):
    _, master, slave = two_nodes
    with master.entered():
        offset, round_trip = icmp_timestamp_offset(slave.address, timeout=2)
        result = clock_offset_check(slave.address, 2, warn_above=1, fail_above=30)
    assert abs(offset) < 0.01 and round_trip < 0.5
    assert result.status == PASS and "the peer's clock" in result.detail


def test_a_peer_dropping_icmp_timestamps_is_a_warning_not_a_verdict(two_nodes):
    _, master, slave = two_nodes
    rules = (
        "table inet clockdrop {\n  chain input {\n    type filter hook input priority 0;\n"
        "    icmp type timestamp-request drop\n  }\n}\n"
    )
    slave.run(["nft", "-f", "-"], input=rules)
    try:
        with master.entered():
            result = clock_offset_check(slave.address, 1, warn_above=1, fail_above=30)
    finally:
        slave.run(["nft", "delete", "table", "inet", "clockdrop"])
    assert result.status == WARN and "no ICMP timestamp reply" in result.detail
    assert "type 13" in result.fix and "pg_dump" in result.fix


def test_an_ipv6_peer_is_not_measured():
    result = clock_offset_check("fd00::2", 1, warn_above=1, fail_above=30)
    assert result.status == WARN and "IPv6" in result.detail


@pytest.mark.parametrize(
    ("offset", "status"),
    [(0.4, PASS), (-0.4, PASS), (2.5, WARN), (-2.5, WARN), (31.5, FAIL), (-45.0, FAIL)],
)
def test_bounds_beyond_the_uncertainty(offset, status):
    result = judge(offset, 0.01, warn_above=1.0, fail_above=30.0, who="the peer")
    assert result.status == status, result
    if status != PASS:
        assert "NTP" in result.fix


def test_an_offset_within_the_round_trips_uncertainty_is_not_judged_too_far():
    # 1.2 s measured over a 0.6 s round trip: only 0.9 s beyond doubt, below the 1 s bound.
    assert judge(1.2, 0.6, warn_above=1.0, fail_above=30.0, who="the peer").status == PASS
    assert judge(0.0, 1.5, warn_above=1.0, fail_above=30.0, who="the peer").status == WARN  # too slow to judge


def test_midnight_between_the_two_stamps():
    assert _wrap(10 - 86_399_990) == 20  # the peer stamped 00:00:00.010, we sent at 23:59:59.990
    assert _wrap(86_399_990 - 10) == -20


def test_the_offset_from_the_four_stamps():
    # Sent at 12:00:00.000 our time, 40 ms each way, the peer 5 s ahead: it stamps 12:00:05.040 twice.
    sent = 1_700_000_000.0 - (1_700_000_000 % 86_400) + 12 * 3600
    peer_ms = (12 * 3600 + 5) * 1000 + 40
    assert offset_from_stamps(sent, peer_ms, peer_ms, sent + 0.080) == pytest.approx(5.0)
    assert offset_from_stamps(sent, peer_ms - 10_000, peer_ms - 10_000, sent + 0.080) == pytest.approx(-5.0)
