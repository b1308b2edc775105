"""A SIP peer for the rig: sipp as a UAS answering OPTIONS (the stand-in for Asterisk),
and the phone's side: send OPTIONS, tell whether a SIP response came back."""

from __future__ import annotations

import itertools
import secrets
import socket
import time
from pathlib import Path

from .netns import Host

OPTIONS_RESPONDER = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="OPTIONS responder standing in for Asterisk">
  <recv request="OPTIONS"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:[local_ip]:[local_port];transport=[transport]>
      Allow: INVITE, ACK, CANCEL, OPTIONS, BYE
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def write_scenario(directory: Path) -> Path:
    path = directory / "options-responder.xml"
    path.write_text(OPTIONS_RESPONDER)
    return path


def sipp_command(scenario: Path, address: str, port: int = 5060) -> list[str]:
    return ["sipp", "-sf", str(scenario), "-i", address, "-p", str(port), "-nostdin"]


def start_responder(host: Host, directory: Path, port: int = 5060):
    """sipp answering OPTIONS on ``host``; stopped with the host (by PID)."""
    directory.mkdir(parents=True, exist_ok=True)
    scenario = write_scenario(directory)
    log = open(directory / f"sipp-{host.name}.log", "wb")
    return host.popen(sipp_command(scenario, host.address, port), cwd=directory, stdout=log, stderr=log)


class Phone:
    """Sends OPTIONS like a phone's keep-alive; each call says whether a response came back.

    The socket is opened inside the phone's namespace and stays there.
    """

    def __init__(self, host: Host):
        with host.entered():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            self.sock.bind((host.address, 0))
        self.address, self.port = self.sock.getsockname()

    def close(self):
        self.sock.close()

    def options(self, target: str, port: int = 5060, timeout: float = 0.1) -> bool:
        branch, call_id = "z9hG4bK" + secrets.token_hex(6), secrets.token_hex(10)
        request = (
            f"OPTIONS sip:{target}:{port} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {self.address}:{self.port};branch={branch}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:phone@{self.address}>;tag={secrets.token_hex(4)}\r\n"
            f"To: <sip:{target}>\r\nCall-ID: {call_id}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
        )
        self.sock.sendto(request.encode(), (target, port))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            self.sock.settimeout(remaining)
            try:
                data, source = self.sock.recvfrom(65535)
            except (TimeoutError, ConnectionRefusedError):
                return False
            if source[0] == target and data.startswith(b"SIP/2.0 ") and call_id.encode() in data:
                return True
        return False


class PhoneWatch:
    """What a phone sees while an action runs: it asks the master and the slave in turn, every ~50 ms.

    ``gap()``: from the master's last answer before the slave's first one, to that
    first answer — the time the phone had no server (0 when they overlapped).
    ``silence()``: the longest stretch between two answers from either (a phone with no server).
    """

    def __init__(self, phone: Phone, master: str, slave: str, timeout: float = 0.025):
        self.phone, self.master_address, self.slave_address, self.timeout = phone, master, slave, timeout
        self.master: list[float] = []
        self.slave: list[float] = []

    def poll(self) -> None:
        """One round: OPTIONS to the master, then to the slave; each answer's time is kept."""
        now = time.monotonic()
        if self.phone.options(self.master_address, timeout=self.timeout):
            self.master.append(now)
        now = time.monotonic()
        if self.phone.options(self.slave_address, timeout=self.timeout):
            self.slave.append(now)

    def poll_until(self, condition, deadline: float, tick=None) -> bool:
        """Poll until ``condition(self)`` holds (``True``) or ``deadline`` seconds passed (``False``).

        ``tick()`` is called every round (the demo checks its Ctrl-C flag there)."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if tick is not None:
                tick()
            self.poll()
            if condition(self):
                return True
        return False

    def gap(self) -> float | None:
        if not self.slave:
            return None
        first_slave = self.slave[0]
        before = [t for t in self.master if t <= first_slave]
        return max(0.0, first_slave - before[-1]) if before else None

    def silence(self) -> float:
        answers = sorted(self.master + self.slave)
        return max((later - earlier for earlier, later in itertools.pairwise(answers)), default=0.0)
