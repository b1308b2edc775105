"""The leader lock's I/O loop: :class:`CoordinatedNode` → coordinator, service managers, journal.

:class:`LeaseKeeper` runs in its own thread beside the watch's rounds, so
that slow probes never delay a renewal or a self-fencing stop: it steps the
pure machine at every renewal, at the fencing point (``wake_at``) and at
least every ``interval`` seconds, and does what the step says:

* ``ACQUIRE`` / ``RENEW``: one coordinator call, bounded by its
  ``time_bound``; :class:`~wazo_ha_core.errors.CoordinatorUnavailable` counts
  as "not granted" / "not renewed" (never a guess).
* ``START``: in a thread of its own (a Wazo start takes longer than a
  lease; renewals and the fencing point go on meanwhile), the service
  managers take over with the fencing token
  (:meth:`~wazo_ha_core.extensions.ServiceManager.accept_token`), journaled
  as ``failover`` (a standby) or ``serve`` (the preferred node) with the token.
* ``STOP``: the managers give back, journaled as ``self-fence`` (the lease
  could not be renewed) or ``failback`` (the preferred node is back).
* ``RELEASE``: the lease is given up.

Stopping the keeper (``wazo-ha watch`` ends) stops this node's telephony and
releases the lock: a node that can no longer renew must not keep serving.

The clock counts suspended time (``CLOCK_BOOTTIME``): a node frozen past its
lease finds its deadline gone when it resumes and stops first.

With a fence guard (:mod:`.fence`, ``coordination.fence_guard``), the keeper
also pushes the guard's deadline after every acquisition and renewal, makes
sure the guard runs before it asks for the lock (no guard, no lock), checks
that deadline again right before a start (a start thread frozen with the
watch must not start telephony once resumed), and disarms the guard only
once its telephony is stopped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..errors import CoordinatorUnavailable, WazoHAError
from ..extensions import Coordinator, Lease, PluginState
from ..journal import Journal, utcnow
from ..services import ServiceControl
from ..watch import Action as WatchAction
from ..watch import RoundVerdict
from .fence import FenceControl
from .leader import Action, Decision, Grant
from .node import CoordinatedNode

log = logging.getLogger(__name__)


def boot_clock() -> float:
    """Seconds on a monotonic clock that keeps counting while the machine is suspended."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class LeaseKeeper:
    def __init__(
        self,
        *,
        node: CoordinatedNode,
        coordinator: Coordinator,
        services: ServiceControl,
        journal: Journal,
        state: PluginState,
        name: str,
        ttl: float,
        interval: float,
        clock: Callable[[], float] = boot_clock,
        fence: FenceControl | None = None,
    ):
        self.node = node
        self.coordinator = coordinator
        self.services = services
        self.journal = journal
        self.state = state
        self.name = name
        self.ttl = ttl
        self.interval = interval
        self.clock = clock
        self.fence = fence
        self.lease: Lease | None = None
        self.refused: dict[int, Lease] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._unavailable: str | None = None  # the last backend error, to log each outage once
        self._published: tuple | None = None
        self._starting: threading.Thread | None = None  # a start under way
        self._start_result: bool | None = None
        self._last_tick: float | None = None
        self._guard_missing = False
        self._seen_fenced: tuple | None = fence.fenced_by_guard() if fence is not None else None

    # --- from the watch thread ----------------------------------------------------------------

    @property
    def serving(self) -> bool:
        return self.node.guard.serving

    def watched(self, action: WatchAction, verdict: RoundVerdict | None) -> None:
        """The watch's decision this round; a take-over or give-back wish wakes the keeper at once."""
        with self._lock:
            self.node.watched(self.clock(), action, verdict)
        if action in (WatchAction.TAKE_OVER, WatchAction.GIVE_BACK):
            self._wake.set()

    # --- the loop ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Step until ``stop`` is set, then stop serving and release the lock.

        The fence guard is started first, so that a standby's failover does not wait for it to start.
        """
        with self._lock:
            self._publish()  # this node's view for `wazo-ha status`, before the guard's start-up
        self._guard_ready()
        while not stop.is_set():
            try:
                self.tick()
            except Exception:  # a store hiccup or a plugin bug must not end the guard; the next step retries
                log.exception("leader lock step failed")
            now = self.clock()
            wake = self.node.guard.wake_at()
            delay = self.interval if wake is None else min(self.interval, max(0.0, wake - now))
            self._wake.wait(delay)
            self._wake.clear()
        self.shutdown()

    def tick(self) -> Decision:
        """One step and the action it asks for. Steps again at once after a state change (up to a few times)."""
        decision = Decision(Action.NONE)
        with self._lock:
            self._resumed()
            self._collect_start()
            self._fenced_by_guard()
            if self.node.wants_holder():
                self._look_at_holder()
            for _ in range(4):
                decision = self.node.step(self.clock())
                if decision.action is Action.NONE or (decision.action is Action.START and self._starting):
                    break
                self._do(decision)
            self._publish()
        return decision

    def shutdown(self) -> None:
        """Stop serving, then release the lock (the watch is ending: nobody would renew)."""
        with self._lock:
            if self.node.guard.serving:
                self._stop("the watch is stopping: a node that cannot renew its lease must not serve", "stop")
            elif self.fence is not None:
                self.fence.disarm()
            if self.lease is not None:
                self.coordinator.release(self.lease)
                self.node.guard.released(self.lease.token)
                self.lease = None
            self._publish()

    # --- actions -----------------------------------------------------------------------------

    def _do(self, decision: Decision) -> None:
        if decision.action is Action.ACQUIRE:
            self._acquire()
        elif decision.action is Action.RENEW:
            sent = self.clock()
            try:
                ok = self.coordinator.renew(self.lease) if self.lease is not None else False
                self._available()
            except CoordinatorUnavailable as exc:
                self._backend_down(exc)
                ok = False
            if not ok:
                log.warning("lease %s not renewed", decision.token)
            self.node.guard.renewed(sent, ok)
            if self.node.guard.token is None:
                self.lease = None
            elif ok and self.fence is not None:
                self.fence.arm(self.node.guard.token, sent)
        elif decision.action is Action.START:
            self._start(decision)
        elif decision.action is Action.STOP:
            kind = "failback" if self.node.resigning else "self-fence"
            self._stop(decision.reason, kind)
            if self.node.guard.token is None:
                self.lease = None
        elif decision.action is Action.RELEASE:
            lease = self.refused.pop(decision.token, None)
            if lease is None and self.lease is not None and self.lease.token == decision.token:
                lease, self.lease = self.lease, None
            if lease is not None:
                self.coordinator.release(lease)
            self.node.guard.released(decision.token)
            log.info("leader lock %s released: %s", decision.token, decision.reason)

    def _look_at_holder(self) -> None:
        """A standby of rank 2 or more waits for the lock to stay free: who holds it now (unknown counts as held)."""
        try:
            holder = self.coordinator.holder()
            self._available()
        except CoordinatorUnavailable as exc:
            self._backend_down(exc)
            holder = True
        if holder:
            self.node.held_elsewhere(self.clock())

    def _acquire(self) -> None:
        if not self._guard_ready():
            self.node.guard.acquired(self.clock(), None)
            return
        sent = self.clock()
        try:
            lease = self.coordinator.acquire(self.name, self.ttl)
            self._available()
        except CoordinatorUnavailable as exc:
            self._backend_down(exc)
            lease = None
        self.node.guard.acquired(sent, Grant(lease.token) if lease else None)
        if lease is None:
            return
        if self.node.guard.token == lease.token:
            self.lease = lease
            if self.fence is not None:
                self.fence.arm(lease.token, sent)  # before anything starts
            log.warning("leader lock acquired by %s with fencing token %d", self.name, lease.token)
        else:
            self.refused[lease.token] = lease

    def _start(self, decision: Decision) -> None:
        """Start in a thread of its own, so renewals and the fencing point go on during a long start.

        The guard counts the services as (maybe) running from now on; the result is applied at the
        keeper's next step. A start already under way is not started twice.
        """
        if self._starting is not None:
            return
        self.node.guard.started(False)
        self._starting = threading.Thread(target=self._start_body, args=(decision,), name="start", daemon=True)
        self._starting.start()

    def _start_body(self, decision: Decision) -> None:
        kind = "serve" if self.node.preferred else "failover"
        ok = False
        try:
            with self.journal.record(kind) as event:
                event.message = f"{self.name} holds the leader lock: {decision.reason}"
                event.figures.update(node=self.name, token=decision.token)
                log.warning("%s: %s (token %s)", kind, event.message, decision.token)
                self._check_start_allowed(decision.token)
                event.figures.update(self.services.take_over(token=decision.token))
                ok = True
        except WazoHAError as exc:
            log.error("%s with token %s failed: %s (retried while the lock is held)", kind, decision.token, exc)
        except Exception:
            log.exception("%s with token %s failed", kind, decision.token)
        finally:
            self._start_result = ok
            self._wake.set()

    def _collect_start(self, wait: bool = False) -> None:
        """Apply the result of a finished start (waiting for it when ``wait``: a stop must follow it)."""
        if self._starting is None:
            return
        if wait:
            self._starting.join()
        if self._starting.is_alive():
            return
        self._starting = None
        ok, self._start_result = bool(self._start_result), None
        if self.node.guard.serving:  # not stopped meanwhile
            self.node.guard.started(ok)

    def _stop(self, reason: str, kind: str) -> None:
        self._collect_start(wait=True)  # a start under way finishes first: stopping half-started services races it
        ok = False
        token = self.lease.token if self.lease is not None else None
        try:
            with self.journal.record(kind) as event:
                event.message = f"{self.name}: {reason}"
                event.figures.update(node=self.name, token=token)
                log.warning("%s: %s", kind, event.message)
                event.figures.update(self.services.give_back())
                ok = True
        except WazoHAError as exc:
            log.error("%s failed: %s (asked again at once)", kind, exc)
        finally:
            self.node.guard.stopped(ok)
            if ok and self.fence is not None:
                self.fence.disarm()  # stopped: nothing left for the guard to stop

    def _guard_ready(self) -> bool:
        """No guard, no lock: a fence guard must run before this node may take the lock (when configured)."""
        if self.fence is None:
            return True
        try:
            ready = self.fence.ensure()
        except OSError as exc:
            log.error("cannot start the fence guard: %s", exc)
            ready = False
        if not ready and not self._guard_missing:
            log.error("the fence guard is not running: this node does not take the leader lock")
        self._guard_missing = not ready
        return ready

    def _fenced_by_guard(self) -> None:
        """The guard stopped telephony under our current token (this watch was late, not gone): start again.

        The lease is still ours (the keeper's own deadline has not passed, or the step that follows drops it), so
        the services are counted as stopped and the guard's rules start them again under the same token.
        """
        if self.fence is None:
            return
        fenced = self.fence.fenced_by_guard()
        if fenced is None or fenced == self._seen_fenced:
            return
        self._seen_fenced = fenced
        if self.node.guard.serving and fenced[0] == self.node.guard.token:
            log.warning("the fence guard stopped telephony under token %s (this watch was late)", fenced[0])
            self.node.guard.stopped(True)

    def _check_start_allowed(self, token: int) -> None:
        """Right before the managers start: the lease and the guard's deadline still hold (raises otherwise).

        A start thread frozen with the watch (SIGSTOP) and resumed past the deadline would otherwise start
        telephony under a token that is no longer ours.
        """
        now = self.clock()
        guard = self.node.guard
        if guard.token != token or not guard.holds(now):
            raise WazoHAError(f"the lease with token {token} is no longer held: not starting")
        if self.fence is not None and not self.fence.may_start(token, now):
            raise WazoHAError(f"the fence guard's deadline for token {token} has passed: not starting")

    def _resumed(self) -> None:
        """Log a gap between two steps (a freeze, or a slow call): the step that follows checks the lease first."""
        now = self.clock()
        if self._last_tick is not None and now - self._last_tick > 2 * self.interval + 1.0:
            log.warning(
                "no step for %.1f s (frozen, suspended or a slow call): checking the lease and token first",
                now - self._last_tick,
            )
        self._last_tick = now

    def _backend_down(self, exc: CoordinatorUnavailable) -> None:
        if self._unavailable != str(exc):
            log.error("coordinator unavailable: %s", exc)
            self._unavailable = str(exc)

    def _available(self) -> None:
        if self._unavailable is not None:
            log.warning("coordinator reachable again")
            self._unavailable = None

    # --- status ------------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        guard, now = self.node.guard, self.clock()
        return {
            "node": self.name,
            "rank": self.node.rank,
            "token": guard.token,
            "serving": guard.serving,
            "lease_left": round(guard.deadline - now, 1) if guard.deadline is not None else None,
            "backend_error": self._unavailable,
        }

    def _publish(self) -> None:
        snapshot = self.snapshot()
        summary = (snapshot["token"], snapshot["serving"], snapshot["backend_error"])
        if summary != self._published:  # one store write per change, not per renewal
            self._published = summary
            self.state.set("coordination", {**snapshot, "at": utcnow().isoformat()})
