"""Partitions and what phones see of them: shared by the coordinated-mode rig and ``wazo-ha demo --nodes 3``.

* :class:`SipSampler` — every 100 ms, from the phone's namespace, one SIP OPTIONS to each node at once;
  who answered, kept as timed samples (the "at most one node answers" checker reads them);
* :func:`cut` / :func:`heal` — drop everything between a host and some addresses with nftables rules in
  that host's namespace (a table of its own), so the switch stays up and the host still reaches the rest.
"""

from __future__ import annotations

import secrets
import socket
import textwrap
import threading
import time

from .netns import Host

CUT_TABLE = "cut"


def cut(host: Host, addresses: list[str]) -> None:
    """Drop every packet between ``host`` and ``addresses`` (both ways), replacing an earlier cut of ``host``."""
    heal(host)
    peers = ", ".join(addresses)
    rules = textwrap.dedent(
        f"""\
        table inet {CUT_TABLE} {{
            chain input {{
                type filter hook input priority 0;
                ip saddr {{ {peers} }} drop
            }}
            chain output {{
                type filter hook output priority 0;
                ip daddr {{ {peers} }} drop
            }}
        }}
        """
    )
    host.run(["nft", "-f", "-"], input=rules)


def heal(host: Host) -> None:
    """Remove ``host``'s cut, if any."""
    host.run(["nft", "delete", "table", "inet", CUT_TABLE], check=False)


class SipSampler:
    """Every 100 ms, one OPTIONS to each node at once from the phone; who answered within 80 ms."""

    def __init__(self, phone: Host, targets: dict[str, str]):
        with phone.entered():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((phone.address, 0))
        self.address, self.port = self.sock.getsockname()
        self.targets = targets  # node name -> address
        self.samples: list[tuple[float, frozenset[str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        next_at = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic(), self.sample()))
            next_at += 0.1
            self._stop.wait(max(0.0, next_at - time.monotonic()))

    def sample(self, timeout: float = 0.08) -> frozenset[str]:
        calls = {}
        for name, address in self.targets.items():
            call_id = secrets.token_hex(10)
            calls[call_id] = name
            request = (
                f"OPTIONS sip:{address}:5060 SIP/2.0\r\n"
                f"Via: SIP/2.0/UDP {self.address}:{self.port};branch=z9hG4bK{secrets.token_hex(6)}\r\n"
                f"Max-Forwards: 70\r\nFrom: <sip:phone@{self.address}>;tag={secrets.token_hex(4)}\r\n"
                f"To: <sip:{address}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
            )
            self.sock.sendto(request.encode(), (address, 5060))
        answered: set[str] = set()
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0 and len(answered) < len(calls):
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65535).decode(errors="replace")
            except (TimeoutError, OSError):
                break
            for call_id, name in calls.items():
                if f"Call-ID: {call_id}" in data or f"i: {call_id}" in data:
                    answered.add(name)
        return frozenset(answered)

    def since(self, start: float) -> list[tuple[float, frozenset[str]]]:
        return [sample for sample in list(self.samples) if sample[0] >= start]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
