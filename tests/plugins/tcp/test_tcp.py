"""The tcp probe against real listening and closed sockets between two namespaces."""

from __future__ import annotations

import socket
import time

import pytest

from tests.rig.plugin_loading import load_plugin
from wazo_ha_core import PluginLoadError


def probe(config=None):
    return load_plugin("health_probes", "tcp", config)


def timed(plugin, host, target):
    with host.entered():
        started = time.monotonic()
        answer = plugin.probe(target)
        return answer, time.monotonic() - started


@pytest.fixture
def listener(hosts):
    with hosts[2].entered():
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((hosts[2].address, 5061))
    sock.listen(8)
    yield sock
    sock.close()


def test_listening_port_is_up(hosts, listener):
    _, prober, target = hosts
    answer, _ = timed(probe({"port": 5061}), prober, target.address)
    assert answer.up and answer.latency < 0.5


def test_closed_port_is_refused_at_once(hosts):
    _, prober, target = hosts
    answer, elapsed = timed(probe({"port": 5062, "timeout": 2}), prober, target.address)
    assert not answer.up and answer.reason == "connection refused on TCP port 5062"
    assert elapsed < 0.5


def test_unplugged_host_times_out(hosts, listener):
    network, prober, target = hosts
    network.link_down(target)
    try:
        answer, elapsed = timed(probe({"port": 5061, "timeout": 0.3}), prober, target.address)
    finally:
        network.link_up(target)
    assert not answer.up and "within 0.3 s" in answer.reason
    assert 0.25 < elapsed < 0.6


def test_checks_is_configurable_and_validated():
    assert probe().checks == "service"
    assert probe({"checks": "host"}).checks == "host"
    with pytest.raises(PluginLoadError, match=r"plugin_config.tcp.checks must be 'host' or 'service', got 'disk'"):
        probe({"checks": "disk"})
