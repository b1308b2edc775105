"""The HA settings a site edits (``GET/PUT /ha``): validation and normalisation.

The body has two fields, as in Wazo: ``node_type`` (``disabled``, ``master``
or ``slave``) and ``remote_address`` (the other node's IPv4 or IPv6 address,
required unless disabled). :func:`validate_ha_body` either returns the
normalised settings or raises :class:`ValidationError` listing every bad field;
it never has side effects.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from .errors import ValidationError
from .setting_checks import CONTROL, shown

NODE_TYPES = ("disabled", "master", "slave")
FIELDS = ("node_type", "remote_address")

# An IPv6 zone is an interface name or index; keep it to characters that are
# harmless anywhere the address ends up (a config file, a command argument).
_ZONE = re.compile(r"[A-Za-z0-9_.-]{1,15}")  # used with fullmatch: no trailing newline slips through
# At most this many unknown fields are named in one error (a body may hold millions).
_UNKNOWN_SHOWN = 5


@dataclass(frozen=True)
class HASettings:
    node_type: str = "disabled"
    remote_address: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)

    @property
    def enabled(self) -> bool:
        return self.node_type != "disabled"


DISABLED = HASettings()


def validate_ha_body(body: Any, local_addresses: Iterable[str] = ()) -> HASettings:
    """Check a ``PUT /ha`` body and return it normalised.

    ``local_addresses`` are this node's own addresses: pointing the HA peer at
    ourselves is refused. Raises :class:`ValidationError` with one message per
    bad field; a body with several problems reports all of them. Whatever
    Python value ``body`` is (huge integers, deep nesting, objects whose
    ``repr`` fails), the outcome is settings or a ``ValidationError`` whose
    every message shows values cut to a few dozen characters.
    """
    try:
        return _validate_ha_body(body, local_addresses)
    except ValidationError:
        raise
    except Exception as exc:  # a value that breaks comparison or hashing: refused, never a crash
        raise ValidationError({"body": f"cannot be read ({type(exc).__name__}), got {_describe(body)}"}) from None


def _validate_ha_body(body: Any, local_addresses: Iterable[str]) -> HASettings:
    if not isinstance(body, dict):
        raise ValidationError({"body": f"must be an object with {', '.join(FIELDS)}, got {_describe(body)}"})
    errors: dict[str, str] = {}
    unknown = [key for key in body if not (isinstance(key, str) and key in FIELDS)]
    for key in unknown[:_UNKNOWN_SHOWN]:
        name = key if isinstance(key, str) and len(key) <= 40 and not CONTROL.search(key) else shown(key, 40)
        errors[name] = f"unknown field {shown(key, 40)}; expected {', '.join(FIELDS)}"
    if len(unknown) > _UNKNOWN_SHOWN:
        errors["body"] = f"{len(unknown)} unknown fields in all; expected {', '.join(FIELDS)}"

    node_type = body.get("node_type")
    if "node_type" not in body:
        errors["node_type"] = "is required"
    elif not isinstance(node_type, str):
        errors["node_type"] = f"must be a string, got {_describe(node_type)}"
    elif node_type not in NODE_TYPES:
        errors["node_type"] = f"must be one of {', '.join(NODE_TYPES)}, got {shown(node_type)}"

    raw_address = body.get("remote_address")
    address = ""
    disabled = node_type == "disabled"
    if raw_address is None or (disabled and raw_address == ""):
        # GET returns remote_address "" for a disabled node: PUT of that body must work.
        if not disabled and "node_type" not in errors:
            errors["remote_address"] = f"is required when node_type is {node_type!r}"
    elif not isinstance(raw_address, str):
        errors["remote_address"] = f"must be a string, got {_describe(raw_address)}"
    else:
        try:
            address = normalise_address(raw_address, local_addresses)
        except ValueError as exc:
            errors["remote_address"] = str(exc)

    if errors:
        raise ValidationError(errors)
    return HASettings(node_type=node_type, remote_address=address)


def normalise_address(value: str, local_addresses: Iterable[str] = ()) -> str:
    """Return the canonical text of a usable peer address, or raise ``ValueError``.

    The message names the value, since it is shown to the operator as is.
    """
    shown_value = shown(value)
    if value == "":
        raise ValueError("must be an IP address, got an empty string ''")
    if value != value.strip():
        raise ValueError(f"must not have leading or trailing whitespace, got {shown_value}")
    host, _, zone = value.partition("%")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"must be an IPv4 or IPv6 address (hostnames are not accepted), got {shown_value}") from None
    if "%" in value and (ip.version == 4 or not _ZONE.fullmatch(zone)):
        raise ValueError(f"has an invalid zone, got {shown_value}")
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    problem = _unusable(ip, has_zone=bool(zone))
    if problem:
        raise ValueError(f"must be another host's unicast address, got {shown_value} ({problem})")
    canonical = str(ip) + (f"%{zone}" if zone else "")
    if _is_local(ip, local_addresses):
        raise ValueError(f"is an address of this node, got {shown_value}; remote_address must be the other node")
    return canonical


def _unusable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, has_zone: bool) -> str | None:
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_multicast:
        return "multicast address"
    if ip.version == 4 and ip == ipaddress.IPv4Address("255.255.255.255"):
        return "broadcast address"
    if ip.is_link_local:
        if ip.version == 4:
            return "IPv4 link-local address"
        if not has_zone:
            return "IPv6 link-local address without a zone such as %eth0"
    elif has_zone:
        return "a zone is only meaningful on a link-local address"
    return None


def _is_local(ip, local_addresses: Iterable[str]) -> bool:
    for local in local_addresses:
        try:
            other = ipaddress.ip_address(local.partition("%")[0])
        except ValueError:
            continue
        if other.version == 6 and other.ipv4_mapped is not None:
            other = other.ipv4_mapped
        if other == ip:
            return True
    return False


def detect_local_addresses() -> list[str]:
    """Every address configured on this host's interfaces (IPv4 and IPv6)."""
    import psutil

    found = []
    for entries in psutil.net_if_addrs().values():
        for entry in entries:
            if entry.family in (socket.AF_INET, socket.AF_INET6):
                found.append(entry.address)
    return found


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {shown(value, 60)}"
