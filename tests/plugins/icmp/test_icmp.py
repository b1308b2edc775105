"""The icmp probe against real ICMP between two network namespaces."""

from __future__ import annotations

import time

import pytest

from tests.rig.netns import ip
from tests.rig.plugin_loading import load_plugin
from wazo_ha_core import PluginError, PluginLoadError


def probe(config=None):
    return load_plugin("health_probes", "icmp", config)


def timed(plugin, host, target):
    with host.entered():
        started = time.monotonic()
        answer = plugin.probe(target)
        return answer, time.monotonic() - started


def test_live_host_is_up_with_its_latency(hosts):
    _, prober, target = hosts
    answer, elapsed = timed(probe(), prober, target.address)
    print(f"icmp up in {elapsed * 1000:.1f} ms")
    assert answer.up and 0 < answer.latency < 0.5
    assert probe().checks == "host"


def test_unplugged_host_is_down_within_the_timeout(hosts):
    network, prober, target = hosts
    network.link_down(target)
    try:
        answer, elapsed = timed(probe({"timeout": 0.4}), prober, target.address)
    finally:
        network.link_up(target)
    print(f"icmp down after {elapsed:.2f} s")
    assert not answer.up and answer.latency is None
    assert "no echo reply within 0.4 s" in answer.reason
    assert 0.35 < elapsed < 0.6


def test_a_lost_echo_is_retried_within_the_same_call(hosts):
    _, prober, target = hosts
    # Drop every other echo request on the target: a single-shot ping would fail half the calls.
    target.run(["nft", "add", "table", "inet", "lossy"])
    target.run(["nft", "add", "chain", "inet", "lossy", "input", "{ type filter hook input priority 0 ; }"])
    target.run(["nft", "add", "rule", "inet", "lossy", "input", "icmp type echo-request numgen inc mod 2 == 0 drop"])
    try:
        answers = [timed(probe({"timeout": 0.5, "retry": 0.1}), prober, target.address)[0] for _ in range(10)]
    finally:
        target.run(["nft", "delete", "table", "inet", "lossy"])
    assert all(answer.up for answer in answers), answers


def test_answers_from_the_loopback_of_the_namespace(hosts):
    _, prober, _ = hosts
    answer, _ = timed(probe(), prober, "127.0.0.1")
    assert answer.up


def test_hostname_target_is_a_broken_probe_not_a_down_master(hosts):
    _, prober, _ = hosts
    with prober.entered(), pytest.raises(PluginError, match=r"must be an IP address, got 'master\.example'"):
        probe().probe("master.example")


def test_bad_timeout_names_the_key_and_value():
    with pytest.raises(PluginLoadError, match=r"plugin_config.icmp.timeout must be a positive number.*'soon'"):
        probe({"timeout": "soon"})


def test_the_unreachable_route_keeps_test_addresses_off_the_real_network(hosts):
    _, _, target = hosts
    route = ip("route", "get", target.address, check=False)
    assert route.returncode != 0 or "unreachable" in route.stdout
