"""``wazo-ha doctor``'s clock offset towards the peer, from an ICMP timestamp exchange (RFC 792, types 13/14).

Why ICMP timestamps: they need nothing enabled on the peer (the kernel
answers; Linux does by default) and work in both directions before HA is
enabled, when no replication connection exists yet (the pg_dump plugin
measures the offset again through that connection on the master). The peer
stamps, in milliseconds since midnight UTC, when it received our request
and when it sent the reply; the offset is
``((received - sent) + (transmitted - arrived)) / 2``, known to within half
the round trip plus the millisecond of resolution. IPv4 only (ICMPv6 has no
timestamp message); a raw socket, so root.

Bounds: WARN above ``doctor.clock_offset_warn`` (1 s), FAIL above
``doctor.clock_offset_fail`` (30 s, ``watch.stability``'s default), both
beyond the uncertainty.
"""

from __future__ import annotations

import ipaddress
import os
import select
import socket
import struct
import time

from .doctor import CheckResult

DAY_MS = 86_400_000
TIMESTAMP_REQUEST, TIMESTAMP_REPLY = 13, 14
#: Above this round trip the offset cannot be told precisely enough to judge.
MAX_ROUND_TRIP = 1.0
NTP_FIX = "run NTP (systemd-timesyncd or chrony) on both nodes against the same servers"


class NoTimestamp(Exception):
    """The peer gave no usable timestamp reply (the message says why)."""


def clock_offset_check(peer: str, timeout: float, warn_above: float, fail_above: float) -> CheckResult:
    try:
        offset, round_trip = icmp_timestamp_offset(peer, timeout)
    except NoTimestamp as exc:
        return CheckResult.warn(
            f"not measured: {exc}",
            "let ICMP timestamp requests (type 13, replies type 14) through between the nodes, or rely on the "
            "pg_dump plugin's clock offset check on the master once replication connects; " + NTP_FIX,
        )
    return judge(offset, round_trip, warn_above, fail_above, "the peer")


def judge(offset: float, round_trip: float, warn_above: float, fail_above: float, who: str) -> CheckResult:
    """PASS/WARN/FAIL for ``offset`` seconds measured with ``round_trip`` (its uncertainty is half of it)."""
    uncertainty = round_trip / 2 + 0.001
    shown = f"{who}'s clock {offset:+.3f} s from this node's (± {uncertainty:.3f} s)"
    if round_trip > MAX_ROUND_TRIP:
        return CheckResult.warn(f"{shown}: the round trip was too slow to judge", "check the link, then run again")
    beyond_doubt = abs(offset) - uncertainty
    if beyond_doubt > fail_above:
        return CheckResult.fail(
            f"{shown}, more than {fail_above:g} s (doctor.clock_offset_fail): the two nodes' journals, mails and "
            "certificate and token lifetimes disagree by more than the watch's stability window",
            NTP_FIX,
        )
    if beyond_doubt > warn_above:
        return CheckResult.warn(f"{shown}, more than {warn_above:g} s (doctor.clock_offset_warn)", NTP_FIX)
    return CheckResult.passed(shown)


def icmp_timestamp_offset(peer: str, timeout: float) -> tuple[float, float]:
    """``(peer clock - our clock, round trip)`` in seconds; :class:`NoTimestamp` when not measurable."""
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        raise NoTimestamp(f"{peer!r} is not an IP address") from None
    if address.version != 4:
        raise NoTimestamp("ICMPv6 has no timestamp message (IPv6 peer)")
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    except PermissionError:
        raise NoTimestamp("a raw ICMP socket needs root: run the doctor as root") from None
    identifier = (os.getpid() ^ int(time.monotonic() * 1000)) & 0xFFFF
    try:
        sent = time.time()
        sock.sendto(_request(identifier, 1, _ms_of_day(sent)), (str(address), 0))
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            if not select.select([sock], [], [], remaining)[0]:
                break
            data, source = sock.recvfrom(2048)
            arrived = time.time()
            reply = _parse_reply(data, identifier)
            if reply is None or source[0] != str(address):
                continue  # someone else's ICMP
            received, transmitted = reply
            if (received | transmitted) & 0x80000000:
                raise NoTimestamp("the peer answers in a non-standard time (high bit set), not UTC milliseconds")
            return offset_from_stamps(sent, received, transmitted, arrived), arrived - sent
    except OSError as exc:
        raise NoTimestamp(f"cannot send to {peer}: {exc.strerror or exc}") from None
    finally:
        sock.close()
    raise NoTimestamp(f"no ICMP timestamp reply from {peer} within {timeout:g} s")


def offset_from_stamps(sent: float, received_ms: int, transmitted_ms: int, arrived: float) -> float:
    """The peer's clock minus ours, in seconds: ``sent``/``arrived`` are our epoch times, the others the
    peer's milliseconds of the UTC day (RFC 792); the network delay, if symmetric, cancels out."""
    there = _wrap(received_ms - _ms_of_day(sent, exact=True))
    back = _wrap(transmitted_ms - _ms_of_day(arrived, exact=True))
    return (there + back) / 2 / 1000


def _ms_of_day(epoch: float, exact: bool = False) -> float:
    value = (epoch % 86_400) * 1000
    return value if exact else int(value)


def _wrap(difference_ms: float) -> float:
    """A difference of two times of day, brought within ±12 h (midnight may fall in between)."""
    return (difference_ms + DAY_MS / 2) % DAY_MS - DAY_MS / 2


def _request(identifier: int, sequence: int, originate_ms: int) -> bytes:
    header = struct.pack("!BBHHHIII", TIMESTAMP_REQUEST, 0, 0, identifier, sequence, originate_ms, 0, 0)
    return header[:2] + struct.pack("!H", _checksum(header)) + header[4:]


def _parse_reply(data: bytes, identifier: int) -> tuple[int, int] | None:
    """``(receive, transmit)`` timestamps of our reply in a raw IPv4 packet, or None for anything else."""
    if len(data) < 20:
        return None
    header_length = (data[0] & 0x0F) * 4
    icmp = data[header_length : header_length + 20]
    if len(icmp) < 20:
        return None
    kind, _, _, ident, _, _, received, transmitted = struct.unpack("!BBHHHIII", icmp)
    if kind != TIMESTAMP_REPLY or ident != identifier:
        return None
    return received, transmitted


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF
