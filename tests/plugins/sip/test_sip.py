"""The sip probe against sipp (a real SIP stack) and against a scripted peer for the matching rules.

The scripted peer is a UDP socket in the target's namespace that answers the
way RFC 3261 lets a server answer (or misbehave); it exists to check that only
responses to *our* request count.
"""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest

from tests.rig.plugin_loading import load_plugin
from tests.rig.sip import start_responder
from tests.rig.waiting import wait_for
from wazo_ha_core import PluginError

PORT = 5060


def probe(config=None):
    return load_plugin("health_probes", "sip", config)


def timed(plugin, host, target, port=None):
    with host.entered():
        started = time.monotonic()
        answer = plugin.probe(target)
        return answer, time.monotonic() - started


@pytest.fixture
def sipp(hosts, tmp_path):
    _, prober, target = hosts
    process = start_responder(target, tmp_path, PORT)
    plugin = probe()
    wait_for(lambda: timed(plugin, prober, target.address)[0].up, 10, "sipp answering OPTIONS")
    yield process
    target.stop(process)


class ScriptedPeer:
    """Receives requests in the target's namespace; ``reply(request_text)`` returns the datagrams to send back."""

    def __init__(self, host, port, reply):
        with host.entered():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host.address, port))
        self.sock.settimeout(0.1)
        self.reply, self.requests, self.running = reply, [], True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while self.running:
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            text = data.decode()
            self.requests.append(text)
            for datagram in self.reply(text):
                self.sock.sendto(datagram.encode(), source)

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def header(text, name):
    return re.search(rf"^{name}: (.*)$", text, re.MULTILINE | re.IGNORECASE).group(1).strip()


def response(request, status="200 OK", branch=None, call_id=None, cseq=None):
    via = header(request, "Via")
    if branch is not None:
        via = re.sub(r"branch=[^;]+", f"branch={branch}", via)
    return (
        f"SIP/2.0 {status}\r\nVia: {via}\r\nFrom: {header(request, 'From')}\r\nTo: {header(request, 'To')};tag=x\r\n"
        f"Call-ID: {call_id or header(request, 'Call-ID')}\r\nCSeq: {cseq or header(request, 'CSeq')}\r\n"
        f"Content-Length: 0\r\n\r\n"
    )


@pytest.fixture
def scripted(hosts):
    peers = []

    def start(reply, port=5070):
        peer = ScriptedPeer(hosts[2], port, reply)
        peers.append(peer)
        return peer

    yield start
    for peer in peers:
        peer.close()


def test_sipp_answers_so_the_master_serves(hosts, sipp):
    _, prober, target = hosts
    answer, elapsed = timed(probe(), prober, target.address)
    print(f"sip up in {elapsed * 1000:.1f} ms")
    assert answer.up and answer.reason == "SIP 200 OK" and answer.latency < 0.5
    assert probe().checks == "service"


def test_killed_responder_is_down_at_once_port_unreachable(hosts, sipp):
    _, prober, target = hosts
    target.stop(sipp)
    answer, elapsed = timed(probe({"timeout": 2}), prober, target.address)
    print(f"sip down after {elapsed * 1000:.1f} ms")
    assert not answer.up and "port unreachable" in answer.reason
    assert elapsed < 0.5  # the ICMP error ends the wait long before the timeout


def test_unplugged_master_is_down_within_the_timeout(hosts, sipp):
    network, prober, target = hosts
    network.link_down(target)
    try:
        answer, elapsed = timed(probe({"timeout": 0.4}), prober, target.address)
    finally:
        network.link_up(target)
    assert not answer.up and answer.reason == "no SIP response within 0.4 s"
    assert 0.35 < elapsed < 0.6


def test_request_is_well_formed_and_retransmitted_with_the_same_transaction(hosts, scripted):
    _, prober, target = hosts
    peer = scripted(lambda request: [])  # never answers
    answer, _ = timed(probe({"port": 5070, "timeout": 0.5, "retry": 0.1}), prober, target.address)
    assert not answer.up
    assert len(peer.requests) == 3  # at 0, 0.1, 0.3 s (the interval doubles)
    first = peer.requests[0]
    assert first.startswith(f"OPTIONS sip:{target.address}:5070 SIP/2.0\r\n")
    assert re.search(rf"^Via: SIP/2\.0/UDP {prober.address}:\d+;branch=z9hG4bK[0-9a-f]+;rport\r$", first, re.M)
    for name in ("Max-Forwards", "From", "To", "Call-ID", "CSeq", "Contact"):
        assert header(first, name)
    assert header(first, "CSeq").endswith(" OPTIONS") and ";tag=" in header(first, "From")
    assert first.endswith("Content-Length: 0\r\n\r\n")
    assert len(set(peer.requests)) == 1  # a retransmission is the same request


def test_any_sip_response_means_serving(hosts, scripted):
    _, prober, target = hosts
    scripted(lambda request: [response(request, "503 Service Unavailable")])
    answer, _ = timed(probe({"port": 5070}), prober, target.address)
    assert answer.up and answer.reason == "SIP 503 Service Unavailable"


@pytest.mark.parametrize(
    "wrong",
    [{"branch": "z9hG4bKother"}, {"call_id": "someone-else@x"}, {"cseq": "999 OPTIONS"}, {"cseq": "1 INVITE"}],
    ids=["branch", "call-id", "cseq-number", "cseq-method"],
)
def test_responses_to_other_requests_are_ignored(hosts, scripted, wrong):
    _, prober, target = hosts
    scripted(lambda request: [response(request, **wrong)])
    answer, _ = timed(probe({"port": 5070, "timeout": 0.3}), prober, target.address)
    assert not answer.up


def test_a_stray_response_before_ours_does_not_hide_ours(hosts, scripted):
    _, prober, target = hosts
    scripted(lambda request: ["not sip at all", response(request, branch="z9hG4bKstale"), response(request)])
    answer, _ = timed(probe({"port": 5070}), prober, target.address)
    assert answer.up and answer.reason == "SIP 200 OK"


def test_compact_headers_are_understood(hosts, scripted):
    _, prober, target = hosts

    def compact(request):
        text = response(request, "200 OK").replace("\r\nVia:", "\r\nv:").replace("\r\nCall-ID:", "\r\ni:")
        return [text]

    scripted(compact)
    answer, _ = timed(probe({"port": 5070}), prober, target.address)
    assert answer.up


def test_bad_settings_and_targets_are_clear_errors(hosts):
    from wazo_ha_core import PluginLoadError

    with pytest.raises(PluginLoadError, match=r"plugin_config.sip.port must be a port number, got 70000"):
        probe({"port": 70000})
    with hosts[1].entered(), pytest.raises(PluginError, match=r"got 'pbx\.example'"):
        probe().probe("pbx.example")
