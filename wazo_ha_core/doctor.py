"""``wazo-ha doctor``: every prerequisite of HA checked, each PASS, WARN or FAIL with the fix.

A :class:`Check` has a name and a :meth:`Check.run` that returns a
:class:`CheckResult`. The core's own checks are in
:mod:`wazo_ha_core.doctor_checks`; a plugin adds its own through the optional
``doctor_checks(node_type, peer)`` method of the extension points (see
:class:`wazo_ha_core.extensions.Plugin`).

:func:`run_checks` runs them concurrently, each bounded by its own
``timeout`` (default ``doctor.check_timeout``): a check that overruns or
raises is a FAIL saying so, never a hang or a traceback. A check still bounds
its own network calls with ``timeouts.connect``; the doctor's bound is the
guard against a check that forgets.
"""

from __future__ import annotations

import abc
import logging
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

PASS, WARN, FAIL = "PASS", "WARN", "FAIL"
STATUSES = (PASS, WARN, FAIL)


@dataclass(frozen=True)
class CheckResult:
    """What a check found: ``status`` (PASS/WARN/FAIL), ``detail`` for humans, ``fix`` when not PASS."""

    status: str
    detail: str
    fix: str = ""

    @classmethod
    def passed(cls, detail: str) -> CheckResult:
        return cls(PASS, detail)

    @classmethod
    def warn(cls, detail: str, fix: str) -> CheckResult:
        return cls(WARN, detail, fix)

    @classmethod
    def fail(cls, detail: str, fix: str) -> CheckResult:
        return cls(FAIL, detail, fix)


class Check(abc.ABC):
    """One prerequisite.

    ``name`` is short and stable (it is the key in ``--json``).
    :meth:`run` has no side effects on either node, bounds every network call
    with ``timeouts.connect`` (or ``timeout`` below), and returns a result
    rather than raising: an exception is reported as a FAIL naming the check.
    ``timeout`` (seconds) overrides ``doctor.check_timeout`` for this check.
    """

    name: str = ""
    timeout: float | None = None

    @abc.abstractmethod
    def run(self) -> CheckResult: ...


class FunctionCheck(Check):
    """A check made of a name and a function (the common case)."""

    def __init__(self, name: str, function: Callable[[], CheckResult], timeout: float | None = None):
        self.name = name
        self.function = function
        self.timeout = timeout

    def run(self) -> CheckResult:
        return self.function()


class TcpCheck(Check):
    """``host:port`` accepts a TCP connection within ``timeout`` seconds.

    ``refused``, when given, is the ``(status, fix)`` reported when the host
    answers but refuses the port (the host is there, nothing listens yet:
    e.g. a WARN before the peer is enabled); a timeout or an unreachable
    host stays a FAIL with ``fix``.
    """

    def __init__(
        self, name: str, host: str, port: int, timeout: float, fix: str, refused: tuple[str, str] | None = None
    ):
        self.name, self.host, self.port, self.connect_timeout, self.fix = name, host, port, timeout, fix
        self.refused = refused

    def run(self) -> CheckResult:
        where = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        started = time.monotonic()
        try:
            with socket.create_connection((self.host, self.port), timeout=self.connect_timeout):
                pass
        except TimeoutError:
            return CheckResult.fail(f"{where}: no answer within {self.connect_timeout:g} s", self.fix)
        except ConnectionRefusedError as exc:
            if self.refused:
                status, fix = self.refused
                return CheckResult(status, f"{where}: {exc.strerror or exc}", fix)
            return CheckResult.fail(f"{where}: {exc.strerror or exc}", self.fix)
        except OSError as exc:
            return CheckResult.fail(f"{where}: {exc.strerror or exc}", self.fix)
        return CheckResult.passed(f"{where} accepts connections ({(time.monotonic() - started) * 1000:.0f} ms)")


@dataclass(frozen=True)
class CheckReport:
    """One line of the doctor's output."""

    name: str
    status: str
    detail: str
    fix: str
    duration: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "detail": self.detail,
            "fix": self.fix,
            "duration": round(self.duration, 3),
        }


def run_checks(checks: Sequence[Check], default_timeout: float) -> list[CheckReport]:
    """Run ``checks`` concurrently; reports in the order given, every one time-bounded."""
    if not checks:
        return []
    executor = ThreadPoolExecutor(max_workers=min(8, len(checks)), thread_name_prefix="wazo-ha-doctor")
    started = time.monotonic()
    futures = [(check, executor.submit(_timed, check)) for check in checks]
    reports = []
    try:
        for check, future in futures:
            limit = check.timeout if check.timeout is not None else default_timeout
            remaining = max(0.0, started + limit - time.monotonic())
            try:
                result, duration = future.result(timeout=remaining)
            except FutureTimeout:
                result = CheckResult.fail(
                    f"no answer within {limit:g} s", "find what blocks it (network, a hung service), then run again"
                )
                duration = time.monotonic() - started
            except Exception as exc:  # a broken check is reported, never hides the others
                log.exception("doctor check %s raised", check.name)
                result = CheckResult.fail(f"the check itself failed: {type(exc).__name__}: {exc}", "report this bug")
                duration = time.monotonic() - started
            if not isinstance(result, CheckResult) or result.status not in STATUSES:
                result = CheckResult.fail(f"the check returned {result!r}", "report this bug")
            reports.append(CheckReport(check.name, result.status, result.detail, result.fix, duration))
    finally:
        # A check that overran is abandoned (its thread ends with its own timeouts).
        executor.shutdown(wait=False, cancel_futures=True)
    return reports


def _timed(check: Check) -> tuple[CheckResult, float]:
    started = time.monotonic()
    result = check.run()
    return result, time.monotonic() - started


def worst(reports: Sequence[CheckReport]) -> str:
    """FAIL if any failed, else WARN if any warned, else PASS."""
    statuses = {report.status for report in reports}
    return FAIL if FAIL in statuses else WARN if WARN in statuses else PASS
