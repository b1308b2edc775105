"""The ``coordination.*`` settings: their checks, and the guard's timings derived from them.

Pure and light (imported while settings are validated). The timing rule the
checks enforce: a renewal may take the whole ``timeout``, and the active node
must be able to miss one renewal and still stop ``stop_margin`` seconds before
its lease can expire, so ``lease_ttl > stop_margin + 2 x timeout``.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

from ..setting_checks import shown
from .leader import GuardConfig

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")
ENDPOINT_SCHEMES = ("http", "https")


def coordinated(tree: dict[str, Any]) -> bool:
    """Whether a coordinator other than ``none`` is configured."""
    return tree["plugins"]["coordinators"] not in ([], ["none"])


def problem(tree: dict[str, Any]) -> tuple[str, str] | None:
    """The first ``(key, reason)`` wrong in ``coordination.*`` (and its ties to other settings), or ``None``."""
    section = tree["coordination"]
    for index, endpoint in enumerate(section["endpoints"]):
        reason = _endpoint_problem(endpoint)
        if reason:
            return f"coordination.endpoints[{index}]", reason
    if not _PREFIX.fullmatch(section["key_prefix"]):
        return "coordination.key_prefix", (
            f"must be 1-128 letters, digits, '.', '_', '-', '/', got {shown(section['key_prefix'])}"
        )
    node = section["node"]
    if node is not None and not _NAME.fullmatch(node):
        return "coordination.node", f"must be 1-63 letters, digits, '.', '_', '-', got {shown(node)}"
    priority = section["priority"]
    if priority is not None and (not float(priority).is_integer() or not 1 <= priority <= 100):
        return "coordination.priority", f"must be a whole number from 1 (first standby) to 100, got {shown(priority)}"
    for key, low, high in (("lease_ttl", 2, 300), ("timeout", 1, 60)):
        value = section[key]
        if not float(value).is_integer() or not low <= value <= high:
            return f"coordination.{key}", f"must be a whole number of seconds from {low} to {high}, got {shown(value)}"
    needed = section["stop_margin"] + 2 * section["timeout"]
    if section["lease_ttl"] <= needed:
        return "coordination.lease_ttl", (
            f"must be longer than stop_margin + 2 x timeout ({needed:g} s) so that the active node can miss a "
            f"renewal and still stop before its lease expires, got {shown(section['lease_ttl'])}"
        )
    reason = _guard_problem(section)
    if reason:
        return reason
    if not coordinated(tree):
        return None
    if not section["endpoints"]:
        return "coordination.endpoints", "must list the etcd members (http(s)://host:2379) with a coordinator, got []"
    if tree["schedules"]["slave_mode"] != "watch":
        return "schedules.slave_mode", (
            f"must be 'watch' with a coordinator (a lease needs the long-running watch), "
            f"got {shown(tree['schedules']['slave_mode'])}"
        )
    tls = [section[key] for key in ("cert_file", "key_file")]
    if any(tls) and not all(tls):
        return "coordination.cert_file", "and coordination.key_file go together (client certificate and its key)"
    return None


def _guard_problem(section: dict[str, Any]) -> tuple[str, str] | None:
    """The fence guard's bounds (``docs/coordination.rst``, "The fence guard")."""
    poll = section["guard_poll"]
    if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not 0.05 <= poll <= 1:
        return "coordination.guard_poll", f"must be a number of seconds from 0.05 to 1, got {shown(poll)}"
    deadline = section["guard_deadline"]
    if deadline is None:
        return None
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)):
        return "coordination.guard_deadline", f"must be a number of seconds or empty, got {shown(deadline)}"
    config = guard_config(section)
    earliest = config.renew_every + section["timeout"]
    latest = section["lease_ttl"] - section["stop_margin"] - poll
    if not earliest < deadline <= latest:
        return "coordination.guard_deadline", (
            f"must be longer than the renewal period + timeout ({earliest:g} s: a renewal in time must push it) "
            f"and at most lease_ttl - stop_margin - guard_poll ({latest:g} s: the guard must stop telephony "
            f"stop_margin before the lease can expire), got {shown(deadline)}"
        )
    return None


def guard_deadline(section: dict[str, Any]) -> float:
    """Seconds after a renewal was sent at which the fence guard stops telephony."""
    if section["guard_deadline"] is not None:
        return float(section["guard_deadline"])
    return float(section["lease_ttl"]) - float(section["stop_margin"]) - float(section["guard_poll"])


def _masked(endpoint: str) -> str:
    """The endpoint as shown in an error: a password in it (refused anyway) is never printed."""
    head, at, tail = endpoint.rpartition("@")
    if not at:
        return endpoint
    scheme, sep, user = head.partition("://")
    return f"{scheme}{sep}{user.split(':', 1)[0]}:***@{tail}" if sep else f"***@{tail}"


def _endpoint_problem(endpoint: str) -> str | None:
    shown_endpoint = shown(_masked(endpoint))
    try:
        parts = urllib.parse.urlsplit(endpoint)
        port = parts.port
    except ValueError:
        return f"is not a valid URL, got {shown_endpoint}"
    if (
        parts.scheme not in ENDPOINT_SCHEMES
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
        or any(c.isspace() for c in endpoint)
    ):
        return f"must be http://host:port or https://host:port (no path, no user), got {shown_endpoint}"
    if port is None:
        return f"must name the client port (usually 2379), got {shown_endpoint}"
    return None


def guard_config(section: dict[str, Any]) -> GuardConfig:
    """The guard's timings: stop ``stop_margin`` before the lease ends; renew often enough to miss one."""
    ttl, margin, timeout = float(section["lease_ttl"]), float(section["stop_margin"]), float(section["timeout"])
    return GuardConfig(ttl=ttl, margin=margin, renew_every=(ttl - margin - timeout) / 2)


def tooz_urls(section: dict[str, Any], resolve=str) -> list[str]:
    """One tooz URL per endpoint (``etcd3+http(s)://host:port``, TLS files, through ``resolve``, as parameters)."""
    query = {
        "ca_cert": section["ca_file"] and resolve(section["ca_file"]),
        "cert_cert": section["cert_file"] and resolve(section["cert_file"]),
        "cert_key": section["key_file"] and resolve(section["key_file"]),
    }
    encoded = urllib.parse.urlencode({key: value for key, value in query.items() if value})
    urls = []
    for endpoint in section["endpoints"]:
        parts = urllib.parse.urlsplit(endpoint)
        netloc = parts.netloc
        url = f"etcd3+{parts.scheme}://{netloc}"
        urls.append(f"{url}?{encoded}" if encoded and parts.scheme == "https" else url)
    return urls
