"""HealthProbe ``icmp``: is the master's host alive? (ICMP echo through icmplib.)

One call sends an echo request, and another every ``retry`` seconds until a
reply comes or ``timeout`` runs out, so a single lost packet does not fail a
round while a dead host is known within ``timeout``. Raw sockets need root
(``privileged: true``, the default); ``privileged: false`` uses the
unprivileged ICMP datagram sockets where ``net.ipv4.ping_group_range`` allows.
"""

from __future__ import annotations

import time

from icmplib import ICMPRequest, ICMPv4Socket, ICMPv6Socket
from icmplib.exceptions import ICMPError, ICMPLibError, TimeoutExceeded

from wazo_ha_core import HealthProbe, PluginError, ProbeAnswer

from .probe_settings import positive_seconds, target_address

_next_id = int(time.monotonic() * 1000) & 0xFFFF


def _identifier() -> int:
    global _next_id
    _next_id = (_next_id + 1) & 0xFFFF
    return _next_id


class IcmpProbe(HealthProbe):
    checks = "host"
    default_config = {"timeout": 0.5, "retry": 0.15, "privileged": True}

    def __init__(self, context):
        super().__init__(context)
        self.timeout = positive_seconds(self.name, "timeout", self.config["timeout"])
        self.retry = positive_seconds(self.name, "retry", self.config["retry"])
        self.privileged = bool(self.config["privileged"])

    def probe(self, target: str) -> ProbeAnswer:
        address = target_address("icmp", target)
        socket_class = ICMPv6Socket if address.version == 6 else ICMPv4Socket
        try:
            sock = socket_class(privileged=self.privileged)
        except ICMPLibError as exc:
            raise PluginError(f"icmp probe cannot open an ICMP socket ({exc}): run as root") from None
        identifier, started = _identifier(), time.monotonic()
        deadline = started + self.timeout
        sent: dict[int, float] = {}
        last_problem = "timeout"
        try:
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return ProbeAnswer(False, None, f"no echo reply within {self.timeout:g} s ({last_problem})")
                sequence = len(sent) + 1
                try:
                    sock.send(ICMPRequest(str(address), identifier, sequence, payload_size=16))
                    sent[sequence] = time.monotonic()
                except ICMPLibError as exc:
                    last_problem = str(exc) or type(exc).__name__  # e.g. network unreachable
                wait_until = min(deadline, now + self.retry)
                while (remaining := wait_until - time.monotonic()) > 0:
                    try:
                        reply = sock.receive(None, remaining)
                    except TimeoutExceeded:
                        break
                    except ICMPLibError as exc:
                        last_problem = str(exc) or type(exc).__name__
                        break
                    if reply.id != identifier or reply.sequence not in sent or reply.source != str(address):
                        continue  # someone else's echo, or an error about another packet
                    try:
                        reply.raise_for_status()
                    except ICMPError as exc:
                        last_problem = str(exc)  # destination unreachable...
                        continue
                    return ProbeAnswer(True, time.monotonic() - sent[reply.sequence])
        finally:
            sock.close()
