"""HealthProbe ``tcp``: does something accept connections on ``target:port``?

A completed TCP handshake is *up*; a refusal or silence until ``timeout`` is
*down*. ``checks`` says what a failure means to the watch: ``service`` by
default (a port is a service), ``host`` when the port stands for the machine
(e.g. ssh on a network where ICMP is filtered).
"""

from __future__ import annotations

import socket
import time

from wazo_ha_core import HealthProbe, PluginError, ProbeAnswer

from .probe_settings import port_number, positive_seconds, target_address


class TcpProbe(HealthProbe):
    checks = "service"
    default_config = {"port": 5060, "timeout": 0.5, "checks": "service"}

    def __init__(self, context):
        super().__init__(context)
        self.port = port_number(self.name, self.config["port"])
        self.timeout = positive_seconds(self.name, "timeout", self.config["timeout"])
        if self.config["checks"] not in ("host", "service"):
            raise PluginError(
                f"plugin_config.{self.name}.checks must be 'host' or 'service', got {self.config['checks']!r}"
            )
        self.checks = self.config["checks"]

    def probe(self, target: str) -> ProbeAnswer:
        address = target_address("tcp", target)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        started = time.monotonic()
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(self.timeout)
            try:
                sock.connect((str(address), self.port))
            except TimeoutError:
                return ProbeAnswer(False, None, f"no answer on TCP port {self.port} within {self.timeout:g} s")
            except ConnectionRefusedError:
                return ProbeAnswer(False, None, f"connection refused on TCP port {self.port}")
            except OSError as exc:
                return ProbeAnswer(False, None, f"cannot connect to TCP port {self.port}: {exc.strerror}")
            return ProbeAnswer(True, time.monotonic() - started)
