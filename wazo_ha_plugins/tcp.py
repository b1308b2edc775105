"""HealthProbe ``tcp``: does something accept connections on ``target:port``?

A completed TCP handshake is *up*; a refusal or silence until ``timeout`` is
*down*. ``checks`` says what a failure means to the watch: ``service`` by
default (a port is a service), ``host`` when the port stands for the machine
(e.g. ssh on a network where ICMP is filtered).
"""

from __future__ import annotations

import ipaddress
import socket
import time

from wazo_ha_core import HealthProbe, PluginError, ProbeAnswer


class TcpProbe(HealthProbe):
    checks = "service"
    default_config = {"port": 5060, "timeout": 0.5, "checks": "service"}

    def __init__(self, context):
        super().__init__(context)
        self.port = self.config["port"]
        if isinstance(self.port, bool) or not isinstance(self.port, int) or not 0 < self.port < 65536:
            raise PluginError(f"plugin_config.{self.name}.port must be a port number, got {self.port!r}")
        timeout = self.config["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise PluginError(
                f"plugin_config.{self.name}.timeout must be a positive number of seconds, got {timeout!r}"
            )
        self.timeout = float(timeout)
        if self.config["checks"] not in ("host", "service"):
            raise PluginError(
                f"plugin_config.{self.name}.checks must be 'host' or 'service', got {self.config['checks']!r}"
            )
        self.checks = self.config["checks"]

    def probe(self, target: str) -> ProbeAnswer:
        try:
            address = ipaddress.ip_address(target)
        except ValueError:
            raise PluginError(f"tcp probe: target must be an IP address, got {target!r}") from None
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
