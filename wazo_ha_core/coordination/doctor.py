"""``wazo-ha doctor`` in coordinated mode: etcd endpoints, TLS, clock offset, the lease against the watch.

Checks (run only when ``plugins.coordinators`` is not ``none``):

* ``etcd <endpoint>``, one per ``coordination.endpoints``: ``GET /health``
  answers ``"health":"true"`` within ``coordination.timeout`` (a member cut
  from the majority answers false); over https the certificate is verified
  with ``coordination.ca_file`` and the client certificate is presented;
  plain http is a warning (the lock travels in clear). The member's HTTP
  ``Date`` header is compared to this node's clock: an offset larger than
  ``stop_margin`` is a warning (only clock *rates* matter to the lease, but a
  large offset usually means no NTP, and then rates drift too).
* ``lease vs watch``: ``lease_ttl - stop_margin`` must be at least
  ``watch.fall x watch.interval``, else a network blip the watch would
  tolerate makes the active node stop its telephony (a warning); and the
  failover time to expect (the larger of the two, plus the start).
* ``fence guard``: the guard's timings against the lease (when it starts
  stopping telephony after the last renewal, the keeper's own fencing point,
  the lease's end; the settings checks already refuse a guard deadline past
  ``lease_ttl - stop_margin - guard_poll``), and whether a guard runs on this
  node (``<run_dir>/fence-guard.lock`` held). Off, or not running while the
  watch should be: a warning (a frozen watch would leave telephony answering
  after its lease, and this node does not take the lock without its guard).
"""

from __future__ import annotations

import json
import ssl
import time
import urllib.request
from email.utils import parsedate_to_datetime
from typing import Any

from ..doctor import Check, CheckResult, FunctionCheck
from ..journal import utcnow

ENDPOINT_FIX = (
    "check that the etcd member runs and this node reaches it (`etcdctl --endpoints URL endpoint health`), "
    "and that coordination.endpoints lists the members' client URLs"
)


def coordination_checks(settings) -> list[Check]:
    section = settings.get("coordination")
    checks: list[Check] = [
        FunctionCheck(f"etcd {endpoint}", lambda endpoint=endpoint: endpoint_health(settings, endpoint))
        for endpoint in section["endpoints"]
    ]
    checks.append(FunctionCheck("lease vs watch", lambda: lease_vs_watch(settings)))
    checks.append(FunctionCheck("fence guard", lambda: fence_guard(settings)))
    return checks


def _tls_context(settings) -> ssl.SSLContext:
    section = settings.get("coordination")
    cafile = str(settings.resolve(section["ca_file"], "coordination.ca_file")) if section["ca_file"] else None
    context = ssl.create_default_context(cafile=cafile)
    if section["cert_file"]:
        context.load_cert_chain(
            str(settings.resolve(section["cert_file"], "coordination.cert_file")),
            str(settings.resolve(section["key_file"], "coordination.key_file")),
        )
    return context


def endpoint_health(settings, endpoint: str) -> CheckResult:
    section = settings.get("coordination")
    timeout = float(section["timeout"])
    https = endpoint.startswith("https:")
    try:
        context = _tls_context(settings) if https else None
    except (OSError, ssl.SSLError) as exc:
        return CheckResult.fail(f"TLS files unusable: {exc}", "check coordination.ca_file, cert_file and key_file")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(f"{endpoint.rstrip('/')}/health", timeout=timeout, context=context) as answer:  # noqa: S310 - http(s) only (validated)
            body, date = answer.read(4096), answer.headers.get("Date")
    except ssl.SSLError as exc:
        return CheckResult.fail(f"TLS refused: {exc.reason or exc}", "the member's certificate must be signed by "
                                "coordination.ca_file and name the host in the endpoint; the member may require "
                                "a client certificate (cert_file, key_file)")  # fmt: skip
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc
        if isinstance(reason, ssl.SSLError):
            return CheckResult.fail(f"TLS refused: {reason}", "check coordination.ca_file, cert_file and key_file")
        return CheckResult.fail(f"no answer within {timeout:g} s: {reason}", ENDPOINT_FIX)
    elapsed = (time.monotonic() - started) * 1000
    try:
        healthy = json.loads(body).get("health") in ("true", True)
    except ValueError:
        healthy = False
    if not healthy:
        return CheckResult.fail(
            f"answers but is not healthy (no majority from it): {body[:80]!r}", "check the etcd cluster's members"
        )
    detail = f"healthy ({elapsed:.0f} ms)"
    offset = _offset(date)
    if offset is not None and abs(offset) > float(section["stop_margin"]):
        return CheckResult.warn(
            f"{detail}, but its clock is {offset:+.1f} s from ours",
            "run NTP on every node and etcd member (the lease relies on clocks running at the same rate)",
        )
    if not https:
        return CheckResult.warn(
            f"{detail}, over plain http: the lock and its tokens travel in clear",
            "use https:// endpoints with coordination.ca_file (and a client certificate)",
        )
    return CheckResult.passed(
        f"{detail}, TLS verified" + (", client certificate presented" if section["cert_file"] else "")
    )


def _offset(date: str | None) -> float | None:
    try:
        return (parsedate_to_datetime(date) - utcnow()).total_seconds() if date else None
    except (TypeError, ValueError):
        return None


def lease_vs_watch(settings) -> CheckResult:
    section: dict[str, Any] = settings.get("coordination")
    ttl, margin = float(section["lease_ttl"]), float(section["stop_margin"])
    detection = float(settings.get("watch.fall")) * float(settings.get("watch.interval"))
    failover = max(ttl, detection)
    detail = (
        f"lease {ttl:g} s, self-fencing {ttl - margin:g} s after the last renewal, the watch declares a node down "
        f"after {detection:g} s (fall x interval): expect a failover about {failover:g} s plus the start"
    )
    if ttl - margin < detection:
        return CheckResult.warn(
            detail + "; an etcd blip the watch would tolerate makes the active node stop",
            f"raise coordination.lease_ttl to at least {detection + margin:g} s",
        )
    return CheckResult.passed(detail)


def fence_guard(settings) -> CheckResult:
    from .config import guard_config, guard_deadline
    from .fence import guard_running

    section: dict[str, Any] = settings.get("coordination")
    if not section["fence_guard"]:
        return CheckResult.warn(
            "off: a frozen or killed watch leaves telephony answering after its lease, while a standby takes over",
            "set coordination.fence_guard: true (the default)",
        )
    config = guard_config(section)
    deadline, poll = guard_deadline(section), float(section["guard_poll"])
    detail = (
        f"stops telephony {deadline:g}-{deadline + poll:g} s after the last renewal sent (the keeper at "
        f"{config.ttl - config.margin:g} s, the lease ends at {config.ttl:g} s: {config.ttl - deadline - poll:g} s "
        f"left for the stop)"
    )
    pid = guard_running(settings.path("run_dir"))
    if pid is None:
        return CheckResult.warn(
            f"{detail}; not running on this node",
            "run `wazo-ha watch` (it starts `wazo-ha fence-guard`); see the log if it does not start",
        )
    return CheckResult.passed(f"{detail}; running (pid {pid})")
