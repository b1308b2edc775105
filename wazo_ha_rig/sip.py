"""A SIP peer for the rig: sipp as a UAS answering OPTIONS (the stand-in for Asterisk),
and the phone's side: send OPTIONS, tell whether a SIP response came back."""

from __future__ import annotations

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
