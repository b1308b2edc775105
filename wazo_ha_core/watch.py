"""The standby's watch: a pure state machine that decides failover and failback.

It does no I/O and reads no clock. The driver (:mod:`wazo_ha_core.watcher`,
or a test with a synthetic timeline) feeds it one *round* of probe answers at
a time together with the current time, and acts on the :class:`Decision` it
returns::

    watch = Watch(WatchConfig(fall=3, rise=3, stability=30))
    decision = watch.observe(now, [Observation("host", UP), Observation("service", DOWN)])
    if decision.action is Action.CHECK_WITNESSES:
        decision = watch.witnessed(now, [UP])          # the witnesses' answers
    if decision.action in (Action.TAKE_OVER, Action.GIVE_BACK):
        ok = ...                                       # start / stop the services
        watch.done(decision.action, ok, now)

The rules, in the order they apply (``docs/watch.rst`` draws the diagram):

* A round **fails** when the host check fails, or when the service check
  fails while the host answers (or no host probe is configured). It is
  **good** when the checks that answered say the master serves. A probe that
  raised is *unknown*: a round whose verdict hangs on an unknown answer is
  unknown, and an unknown round resets both streaks — a broken probe never
  counts towards a failover (nor towards a failback).
* **Failover**: on standby, after ``fall`` consecutive failed rounds. Before
  taking over, the driver probes the witnesses (when any are configured); if
  none answers, this node is the one cut off: no failover, one journal note
  per outage; until a good round, every failed round asks the witnesses and
  each refusal restarts the failed streak, so rounds counted while cut off
  never decide a take-over once the link is back.
* **Failback**: when active, after ``rise`` consecutive good rounds *and* the
  master has been good for ``stability`` seconds. While this node reports
  active calls, the failback waits, at most ``courtesy_max`` seconds.
* **Paused**: rounds are still counted (so ``status`` tells the truth) but no
  action is taken; on resume the next round acts on what is true then.
* **Clock**: a time that goes backwards, or a gap between rounds longer than
  ``max_gap`` (a suspended process, a stalled loop), resets both streaks:
  nothing observed across the gap counts.
* A failed action leaves the role as it was; it is retried after ``retry``
  seconds if the condition still holds.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any

#: Owner of the watch's plugin state (its last verdict, the pause); ``status`` reads it too.
STATE_OWNER = "core.watch"


class Health(enum.Enum):
    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"  # the probe itself failed (raised, timed out in the driver)


class RoundVerdict(enum.Enum):
    GOOD = "good"
    FAILED = "failed"
    UNKNOWN = "unknown"


class Role(enum.Enum):
    STANDBY = "standby"  # the master serves; this node watches
    ACTIVE = "active"  # this node took over telephony


class Action(enum.Enum):
    NONE = "none"
    CHECK_WITNESSES = "check-witnesses"  # probe the witnesses, then call Watch.witnessed()
    TAKE_OVER = "take-over"
    GIVE_BACK = "give-back"


HOST, SERVICE = "host", "service"


@dataclass(frozen=True)
class Observation:
    """One probe's answer in a round. ``checks`` is ``"host"`` or ``"service"``."""

    checks: str
    health: Health
    probe: str = ""
    reason: str = ""


@dataclass(frozen=True)
class Note:
    """Something the driver must journal or log (besides the action itself)."""

    kind: str  # master-down, master-up, failover-refused, failover-paused, failback-delayed, clock-gap
    message: str
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str = ""
    verdict: RoundVerdict | None = None
    notes: tuple[Note, ...] = ()
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class WatchConfig:
    fall: int = 3
    rise: int = 3
    stability: float = 30.0
    courtesy_max: float = 600.0
    max_gap: float = 5.0
    retry: float = 10.0
    witnesses: bool = False  # whether witnesses are configured (the driver probes them)

    def __post_init__(self):
        for name in ("fall", "rise"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("stability", "courtesy_max", "max_gap", "retry"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")


def combine(observations: Iterable[Observation], checks: str) -> Health | None:
    """One health for all probes of a kind: any UP wins, then any DOWN; ``None`` when there is none."""
    healths = [o.health for o in observations if o.checks == checks]
    if not healths:
        return None
    if Health.UP in healths:
        return Health.UP
    if Health.DOWN in healths:
        return Health.DOWN
    return Health.UNKNOWN


def judge_round(observations: Sequence[Observation]) -> tuple[RoundVerdict, str]:
    """The verdict of one round and why, from the rules in the module docstring."""
    host, service = combine(observations, HOST), combine(observations, SERVICE)
    if host is Health.DOWN:
        return RoundVerdict.FAILED, "host does not answer: " + _reasons(observations, HOST)
    if service is Health.UP:
        return RoundVerdict.GOOD, "service answers"
    if host is Health.UNKNOWN:
        return RoundVerdict.UNKNOWN, "host probe broken: " + _reasons(observations, HOST)
    if service is Health.DOWN:
        return RoundVerdict.FAILED, "host answers but the service does not: " + _reasons(observations, SERVICE)
    if service is Health.UNKNOWN:
        return RoundVerdict.UNKNOWN, "service probe broken: " + _reasons(observations, SERVICE)
    if host is Health.UP:
        return RoundVerdict.GOOD, "host answers"
    return RoundVerdict.UNKNOWN, "no probe answered"


def _reasons(observations: Sequence[Observation], checks: str) -> str:
    parts = [f"{o.probe or '?'}: {o.reason or o.health.value}" for o in observations if o.checks == checks]
    return "; ".join(parts)


@dataclass
class WatchState:
    """Everything the watch remembers between rounds (JSON-serialisable through :meth:`as_dict`)."""

    role: str = Role.STANDBY.value
    master_down: bool = False  # the fall threshold was reached in the current outage
    fail_streak: int = 0
    good_streak: int = 0
    first_fail_at: float | None = None
    good_since: float | None = None
    last_round_at: float | None = None
    courtesy_since: float | None = None
    refused: bool = False  # a refused failover was already noted for this outage
    paused_noted: bool = False
    retry_after: float | None = None
    pending: str | None = None  # the action returned and not yet confirmed with done()
    last_verdict: str | None = None
    last_reason: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WatchState:
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


class Watch:
    def __init__(self, config: WatchConfig, role: Role = Role.STANDBY, state: WatchState | None = None):
        self.config = config
        self.state = state or WatchState(role=role.value)

    @property
    def role(self) -> Role:
        return Role(self.state.role)

    # --- the driver's three calls ---------------------------------------------------

    def observe(
        self,
        now: float,
        observations: Sequence[Observation],
        *,
        paused: bool = False,
        active_calls: int | None = None,
    ) -> Decision:
        """Count one round observed at ``now`` and say what to do."""
        if self.state.pending:
            raise RuntimeError(f"observe() called before done() confirmed {self.state.pending}")
        s, config = self.state, self.config
        notes: list[Note] = []
        if s.last_round_at is not None and (now < s.last_round_at or now - s.last_round_at > config.max_gap):
            gap = now - s.last_round_at
            notes.append(Note("clock-gap", f"{gap:+.1f} s since the previous round: streaks restart", {"gap": gap}))
            self._reset_streaks()
        s.last_round_at = now

        verdict, reason = judge_round(observations)
        s.last_verdict, s.last_reason = verdict.value, reason
        if verdict is RoundVerdict.FAILED:
            s.fail_streak += 1
            if s.fail_streak == 1:
                s.first_fail_at = now
            s.good_streak, s.good_since, s.courtesy_since = 0, None, None
        elif verdict is RoundVerdict.GOOD:
            s.good_streak += 1
            if s.good_since is None:
                s.good_since = now
            s.fail_streak, s.first_fail_at = 0, None
            s.refused = s.paused_noted = False
            if self.role is Role.STANDBY:
                s.master_down = False
        else:
            self._reset_streaks()

        if s.fail_streak == config.fall and not s.master_down:
            s.master_down = True
            notes.append(Note("master-down", f"master down after {s.fail_streak} failed rounds: {reason}"))

        return self._decide(now, paused, active_calls, verdict, reason, notes)

    def witnessed(self, now: float, answers: Sequence[Health]) -> Decision:
        """The witnesses' answers after :data:`Action.CHECK_WITNESSES`: take over or refuse."""
        s = self.state
        verdict = RoundVerdict(s.last_verdict) if s.last_verdict else None
        if Health.UP in answers:
            if s.fail_streak < self.config.fall:
                return Decision(Action.NONE, "a witness answers again: counting fresh failed rounds", verdict)
            return self._act(Action.TAKE_OVER, f"{s.last_reason}; a witness answers", now, [], verdict)
        why = "no witness answers" if Health.DOWN in answers else "the witness probes are broken"
        # The failed rounds counted so far may all come from this node's own isolation: once the witnesses
        # answer again, only ``fall`` rounds failed after this refusal may move telephony.
        s.fail_streak, s.first_fail_at = 0, None
        notes = []
        if not s.refused:
            s.refused = True
            notes.append(
                Note(
                    "failover-refused",
                    f"master looks down but {why}: this node is probably the one cut off, no failover",
                    {"witnesses": [answer.value for answer in answers]},
                )
            )
        return Decision(Action.NONE, f"failover refused: {why}", verdict, tuple(notes))

    def done(self, action: Action, ok: bool, now: float) -> None:
        """Confirm the action returned by :meth:`observe`/:meth:`witnessed` succeeded or failed."""
        s = self.state
        if s.pending != action.value:
            raise RuntimeError(f"done({action.value}) but the pending action is {s.pending}")
        s.pending = None
        if not ok:
            s.retry_after = now + self.config.retry
            return
        s.retry_after = None
        if action is Action.TAKE_OVER:
            s.role = Role.ACTIVE.value
            s.good_streak, s.good_since = 0, None
        else:
            s.role = Role.STANDBY.value
            s.master_down = False
            s.fail_streak, s.first_fail_at = 0, None
        s.courtesy_since = None
        s.refused = s.paused_noted = False

    def withdraw(self, action: Action) -> None:
        """Forget the pending ``action`` without acting and without the retry delay (coordinated mode).

        The leader lock decides when the take-over or give-back happens; the
        watch asks again at its next round while the condition still holds.
        """
        if self.state.pending != action.value:
            raise RuntimeError(f"withdraw({action.value}) but the pending action is {self.state.pending}")
        self.state.pending = None

    def serving_changed(self, serving: bool) -> None:
        """The services were started or stopped outside the watch (the leader lock did it)."""
        role = Role.ACTIVE if serving else Role.STANDBY
        if role is self.role:
            return
        self.state.role = role.value
        self.state.good_streak, self.state.good_since, self.state.courtesy_since = 0, None, None
        if not serving:
            self.state.master_down = self.state.fail_streak >= self.config.fall

    # --- internals -----------------------------------------------------------------

    def _decide(self, now, paused, active_calls, verdict, reason, notes) -> Decision:
        s, config = self.state, self.config
        if self.role is Role.STANDBY and config.witnesses and s.refused and 0 < s.fail_streak < config.fall:
            # Cut off a moment ago: every failed round asks the witnesses, and each refusal restarts the count.
            if not paused:
                return Decision(Action.CHECK_WITNESSES, reason, verdict, tuple(notes))
        if self.role is Role.STANDBY and s.fail_streak >= config.fall:
            if paused:
                if not s.paused_noted:
                    s.paused_noted = True
                    notes.append(Note("failover-paused", f"master down but the watch is paused: {reason}"))
                return Decision(Action.NONE, "paused", verdict, tuple(notes))
            if s.retry_after is not None and now < s.retry_after:
                return Decision(Action.NONE, "the last take-over failed; retrying later", verdict, tuple(notes))
            if config.witnesses:
                return Decision(Action.CHECK_WITNESSES, reason, verdict, tuple(notes))
            return self._act(Action.TAKE_OVER, reason, now, notes, verdict)
        if self.role is Role.ACTIVE and s.good_streak >= config.rise and now - s.good_since >= config.stability:
            if s.master_down:
                s.master_down = False
                notes.append(Note("master-up", f"master good for {now - s.good_since:.1f} s"))
            if paused:
                return Decision(Action.NONE, "paused", verdict, tuple(notes))
            if s.retry_after is not None and now < s.retry_after:
                return Decision(Action.NONE, "the last give-back failed; retrying later", verdict, tuple(notes))
            if active_calls:
                if s.courtesy_since is None:
                    s.courtesy_since = now
                    notes.append(
                        Note(
                            "failback-delayed",
                            f"master is back but {active_calls} call(s) are up here: failback waits for them, "
                            f"at most {config.courtesy_max:.0f} s",
                            {"active_calls": active_calls},
                        )
                    )
                if now - s.courtesy_since < config.courtesy_max:
                    return Decision(Action.NONE, f"{active_calls} active call(s)", verdict, tuple(notes))
            return self._act(Action.GIVE_BACK, reason, now, notes, verdict)
        return Decision(Action.NONE, reason, verdict, tuple(notes))

    def _act(self, action, reason, now, notes, verdict=None) -> Decision:
        s = self.state
        s.pending = action.value
        if action is Action.TAKE_OVER:
            figures = {"failed_rounds": s.fail_streak, "detection": _since(now, s.first_fail_at)}
        else:
            figures = {
                "good_rounds": s.good_streak,
                "stable_for": _since(now, s.good_since),
                "courtesy_waited": _since(now, s.courtesy_since) if s.courtesy_since is not None else 0.0,
            }
        return Decision(action, reason, verdict, tuple(notes), figures)

    def _reset_streaks(self) -> None:
        s = self.state
        s.fail_streak = s.good_streak = 0
        s.first_fail_at = s.good_since = s.courtesy_since = None


def _since(now: float, then: float | None) -> float:
    return round(now - then, 3) if then is not None else 0.0
