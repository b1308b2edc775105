"""HealthProbe ``sip``: does the master's Asterisk answer SIP? (OPTIONS over UDP.)

One call sends a SIP ``OPTIONS`` request to ``target:port`` and retransmits
it (RFC 3261 §17.1.2 style, the interval doubling from ``retry``) until a
response matching it arrives or ``timeout`` runs out. *Any* SIP response
(200, 404, 401, 503...) means a SIP stack is serving; only silence or an ICMP
port-unreachable means it is not.

A response matches when its top ``Via`` carries our branch, its ``Call-ID``
is ours and its ``CSeq`` is our number with method ``OPTIONS``; anything else
arriving on the socket (a stray or late response) is ignored.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
import time

from wazo_ha_core import HealthProbe, ProbeAnswer

from .probe_settings import port_number, positive_seconds, target_address

# RFC 3261 §7.3.3 compact forms.
_COMPACT = {"v": "via", "i": "call-id", "f": "from", "t": "to"}
_STATUS_LINE = re.compile(r"^SIP/2\.0 (\d{3})(?: (.*))?$")


class SipProbe(HealthProbe):
    checks = "service"
    default_config = {"port": 5060, "timeout": 0.5, "retry": 0.15, "from_user": "wazo-ha"}

    def __init__(self, context):
        super().__init__(context)
        self.port = port_number(self.name, self.config["port"])
        self.timeout = positive_seconds(self.name, "timeout", self.config["timeout"])
        self.retry = positive_seconds(self.name, "retry", self.config["retry"])
        self.cseq = 0

    def probe(self, target: str) -> ProbeAnswer:
        address = target_address("sip", target)
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect((str(address), self.port))
            except OSError as exc:
                return ProbeAnswer(False, None, f"cannot send to {target}:{self.port}: {exc.strerror}")
            request = self._request(address, sock.getsockname())
            return self._exchange(sock, request)

    def _request(self, address, local) -> OptionsRequest:
        self.cseq += 1
        local_host = _uri_host(ipaddress.ip_address(local[0].split("%")[0]))
        target_host = _uri_host(address)
        branch = "z9hG4bK" + secrets.token_hex(8)
        call_id = f"{secrets.token_hex(12)}@{local_host}"
        user = self.config["from_user"]
        text = (
            f"OPTIONS sip:{target_host}:{self.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {local_host}:{local[1]};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:{user}@{local_host}>;tag={secrets.token_hex(6)}\r\n"
            f"To: <sip:{target_host}:{self.port}>\r\n"
            f"Call-ID: {call_id}\r\n"
            f"CSeq: {self.cseq} OPTIONS\r\n"
            f"Contact: <sip:{user}@{local_host}:{local[1]}>\r\n"
            f"Accept: application/sdp\r\n"
            f"User-Agent: wazo-ha health probe\r\n"
            f"Content-Length: 0\r\n\r\n"
        )
        return OptionsRequest(text.encode(), branch, call_id, self.cseq)

    def _exchange(self, sock: socket.socket, request: OptionsRequest) -> ProbeAnswer:
        started = time.monotonic()
        deadline, interval, next_send = started + self.timeout, self.retry, started
        while True:
            now = time.monotonic()
            if now >= deadline:
                return ProbeAnswer(False, None, f"no SIP response within {self.timeout:g} s")
            if now >= next_send:
                try:
                    sock.send(request.data)
                except ConnectionRefusedError:
                    return ProbeAnswer(False, None, "port unreachable (nothing listens on the SIP port)")
                except OSError as exc:
                    return ProbeAnswer(False, None, f"cannot send: {exc.strerror}")
                next_send, interval = now + interval, interval * 2
            sock.settimeout(max(0.001, min(deadline, next_send) - time.monotonic()))
            try:
                data = sock.recv(65535)
            except TimeoutError:
                continue
            except ConnectionRefusedError:
                return ProbeAnswer(False, None, "port unreachable (nothing listens on the SIP port)")
            except OSError as exc:
                return ProbeAnswer(False, None, f"cannot receive: {exc.strerror}")
            status = request.match(data)
            if status is not None:
                return ProbeAnswer(True, time.monotonic() - started, f"SIP {status}")


class OptionsRequest:
    def __init__(self, data: bytes, branch: str, call_id: str, cseq: int):
        self.data, self.branch, self.call_id, self.cseq = data, branch, call_id, cseq

    def match(self, data: bytes) -> str | None:
        """The status (``"200 OK"``) when ``data`` is a response to this request, else ``None``."""
        try:
            head = data.decode("utf-8", "replace").split("\r\n\r\n", 1)[0]
        except Exception:
            return None
        lines = head.replace("\r\n", "\n").split("\n")
        status = _STATUS_LINE.match(lines[0].strip())
        if not status:
            return None
        headers = parse_headers(lines[1:])
        vias = headers.get("via", [])
        top_via = vias[0].split(",")[0] if vias else ""
        branch = re.search(r";\s*branch=([^;\s,]+)", top_via, re.IGNORECASE)
        cseq = (headers.get("cseq") or [""])[0].split()
        if not branch or branch.group(1) != self.branch:
            return None
        if (headers.get("call-id") or [""])[0].strip() != self.call_id:
            return None
        if len(cseq) != 2 or cseq[0] != str(self.cseq) or cseq[1].upper() != "OPTIONS":
            return None
        return f"{status.group(1)} {status.group(2) or ''}".strip()


def parse_headers(lines: list[str]) -> dict[str, list[str]]:
    """Header name (lower case, compact forms expanded) → values in order; folded lines joined."""
    headers: dict[str, list[str]] = {}
    last = None
    for line in lines:
        if line[:1] in (" ", "\t") and last is not None:
            headers[last][-1] += " " + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            continue
        last = _COMPACT.get(name.strip().lower(), name.strip().lower())
        headers.setdefault(last, []).append(value.strip())
    return headers


def _uri_host(address) -> str:
    return f"[{address}]" if address.version == 6 else str(address)
