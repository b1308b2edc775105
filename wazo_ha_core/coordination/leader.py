"""The leader-lock rules: when a node may serve, renew, take over, and when it must stop.

A pure state machine, like :mod:`wazo_ha_core.watch`: no I/O, no clock. The
driver calls :meth:`LeaderGuard.step` with the current time (a monotonic
clock that also counts time the machine was suspended, e.g.
``time.clock_gettime(time.CLOCK_BOOTTIME)``) and its probes' verdict, acts on
the :class:`Decision`, then reports what came of it::

    guard = LeaderGuard(GuardConfig(ttl=5.0, margin=1.5, renew_every=1.0))
    decision = guard.step(now, others_serving=False)
    if decision.action is Action.ACQUIRE:
        sent = now
        lease = coordinator.acquire(node, ttl)          # None, a Lease, or it raised
        guard.acquired(sent, Grant(lease.token) if lease else None)
    elif decision.action is Action.RENEW:
        guard.renewed(now, coordinator.renew(lease))     # False too when it raised
    elif decision.action is Action.START:
        guard.started(ok, token=decision.token)
    elif decision.action is Action.STOP:
        guard.stopped(ok)

The rules:

* **Deadline.** A lease acquired or renewed by a call *sent* at ``t`` is
  surely ours until ``t + ttl`` (the backend starts counting later). The
  node may serve only while it holds a lease with a recorded token and
  ``now < t + ttl - margin``; ``margin`` covers the time to stop telephony
  and the clock-rate difference between the nodes.
* **Renewal** is asked every ``renew_every`` seconds while the lease is held.
  A renewal that fails leaves the deadline where it was. A renewal sent at or
  after the fencing point is ignored even if it succeeded: the lease is
  treated as lost and a new acquisition (a new token) is needed to serve.
* **Self-fencing.** The driver never sleeps past :meth:`LeaderGuard.wake_at`.
  Once ``now`` reaches ``deadline - margin`` the lease is dropped and, if
  the services run (or may run), the decision is ``STOP``, repeated until
  a stop succeeds. A node frozen past its deadline therefore stops at its
  first step after resuming, before anything else.
* **Take-over.** A node without the lock asks to ``ACQUIRE`` only when its
  own probes say no other node serves (``others_serving is False``; ``None``
  = unknown never counts), so a flapping backend alone never moves telephony.
  It starts (``START`` with the token) only once it holds the lock.
* **Tokens.** A grant whose token is not greater than every token this node
  has seen is refused (the driver releases it); the recorded token never
  goes backwards.
* **Clock.** Time going backwards is treated as the deadline having passed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Action(enum.Enum):
    NONE = "none"
    ACQUIRE = "acquire"  # try Coordinator.acquire once, then call acquired()
    RENEW = "renew"  # Coordinator.renew, then call renewed()
    START = "start"  # start telephony with decision.token, then call started()
    STOP = "stop"  # stop telephony now (self-fencing or lock lost), then call stopped()
    RELEASE = "release"  # give back a grant refused (stale token) with Coordinator.release


@dataclass(frozen=True)
class GuardConfig:
    ttl: float
    margin: float
    renew_every: float

    def __post_init__(self):
        if not 0 < self.margin < self.ttl:
            raise ValueError(f"margin must be between 0 and ttl ({self.ttl}), got {self.margin}")
        if not 0 < self.renew_every < self.ttl - self.margin:
            raise ValueError(f"renew_every must be between 0 and ttl - margin, got {self.renew_every}")


@dataclass(frozen=True)
class Grant:
    """What an acquisition returned: the fencing token."""

    token: int


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    token: int | None = None


class LeaderGuard:
    """One node's view of the leader lock. Not thread-safe: one driver calls it."""

    def __init__(self, config: GuardConfig):
        self.config = config
        self.token: int | None = None  # the token of the lease we hold, None when none
        self.highest_token: int | None = None
        self.deadline: float | None = None  # our lease is surely ours before this
        self.serving = False  # services may run (started, half-started, or a stop failed)
        self.started_ok = False  # the last start succeeded and no stop since
        self.start_attempted_at: float | None = None
        self.last_renew: float | None = None
        self.last_now: float | None = None
        self.refused_token: int | None = None

    # --- queries -----------------------------------------------------------------

    def holds(self, now: float) -> bool:
        """Whether the lease is held and its fencing point not reached at ``now``."""
        return self.token is not None and self.deadline is not None and now < self.deadline - self.config.margin

    def may_serve(self, now: float) -> bool:
        return self.holds(now)

    def wake_at(self) -> float | None:
        """The latest time the driver must call :meth:`step` again: the next renewal or the fencing point.

        The driver steps at its own interval too; it must never sleep past this.
        """
        if self.token is None or self.deadline is None:
            return None
        renewal = self.last_renew + self.config.renew_every if self.last_renew is not None else self.last_now
        times = [renewal, self.deadline - self.config.margin, self._start_due()]
        return min(time for time in times if time is not None)

    def _start_due(self) -> float | None:
        """When to (re)try starting the services: at once after an acquisition, then every ``renew_every``."""
        if self.started_ok:
            return None
        if self.start_attempted_at is None:
            return self.last_now
        return self.start_attempted_at + self.config.renew_every

    # --- the step ----------------------------------------------------------------

    def step(self, now: float, others_serving: bool | None) -> Decision:
        """What to do at ``now``, given whether this node's probes see another node serving."""
        if self.last_now is not None and now < self.last_now:
            self._drop_lease()
            self.last_now = now
            return self._stop_if_serving("clock went backwards: lease treated as lost")
        self.last_now = now
        if self.token is not None and not self.holds(now):
            self._drop_lease()
            return self._stop_if_serving("lease not renewed before its fencing point")
        if self.refused_token is not None:
            token, self.refused_token = self.refused_token, None
            return Decision(Action.RELEASE, "refused a grant whose token went backwards", token)
        if self.token is None:
            if self.serving:
                return Decision(Action.STOP, "serving without the lock")
            if others_serving is False:
                return Decision(Action.ACQUIRE, "no other node serves")
            return Decision(Action.NONE, "standby")
        if self.last_renew is None or now >= self.last_renew + self.config.renew_every:  # as wake_at() computes it
            return Decision(Action.RENEW, "renewal due", self.token)
        start_due = self._start_due()
        if start_due is not None and now >= start_due:
            self.start_attempted_at = now
            return Decision(Action.START, "holding the lock", self.token)
        return Decision(Action.NONE, "serving", self.token)

    # --- results -----------------------------------------------------------------

    def acquired(self, sent_at: float, grant: Grant | None) -> None:
        """The result of an acquisition sent at ``sent_at`` (``None``: not granted or it raised)."""
        if grant is None or self.token is not None:
            return
        if self.highest_token is not None and grant.token <= self.highest_token:
            self.refused_token = grant.token
            return
        self.highest_token = grant.token
        self.token = grant.token
        self.deadline = sent_at + self.config.ttl
        self.last_renew = sent_at

    def renewed(self, sent_at: float, ok: bool) -> None:
        """The result of a renewal sent at ``sent_at`` (``False`` also when it raised)."""
        self.last_renew = sent_at
        if not ok or self.token is None or self.deadline is None:
            return
        if sent_at >= self.deadline - self.config.margin:
            self._drop_lease()  # we may already have been declared fenced: never resurrect
            return
        self.deadline = max(self.deadline, sent_at + self.config.ttl)

    def started(self, ok: bool) -> None:
        """The services were started (``ok``), or the start failed: they may be half up, and it is retried."""
        self.serving = True
        self.started_ok = ok

    def released(self, token: int) -> None:
        """The lease with ``token`` was given up on purpose (a failback): the lock is no longer held."""
        if token == self.token:
            self._drop_lease()

    def stopped(self, ok: bool) -> None:
        """The services were stopped (``ok``); on failure the next step asks again."""
        if ok:
            self.serving = False
            self.started_ok = False

    # --- internals ---------------------------------------------------------------

    def _drop_lease(self) -> None:
        self.start_attempted_at = None
        self.token = None
        self.deadline = None
        self.last_renew = None

    def _stop_if_serving(self, reason: str) -> Decision:
        if self.serving:
            return Decision(Action.STOP, reason)
        return Decision(Action.NONE, reason)
