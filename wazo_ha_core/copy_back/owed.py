"""When the master copies back on its own: a pure decision over what each scheduled check observed.

The master pulls (:mod:`.run`), so the slave's failback cannot start a
copy-back; the master's schedule runs ``wazo-ha copy-back --auto`` (one
*check*) every ``schedules.master_interval`` minutes. Each check observes the
pair and this module decides, with no I/O and no clock of its own (times are
wall-clock seconds passed in, because the state outlives the process):

**Owed.** A copy-back is *owed* from the first check with evidence that the
slave served, or may have served, since the last verified copy-back:

* the slave serves now (it answers the service probes, e.g. SIP, or its store
  says its watch is ``active``);
* the slave cannot be reached by any host probe (behind a cut link it may be
  serving);
* no check ran here for more than ``copy_back.gap`` seconds (this master was
  down or cut off: the slave's watch may have taken over and given back
  meanwhile), or the clock went back.

False alarms cost one copy-back that finds nothing new; a missed failover
would leave messages on the slave, so every doubt owes.

**Run.** An owed copy-back runs when the slave is reachable and does *not*
serve (its services stopped: nothing more can arrive there), telephony runs
here, no planned switchover is in force (switchback runs its own copy-back),
and the back-off allows. An unknown answer (no service probe configured) is a
"maybe serving": the check then never runs it (status shows it owed).

**Retries.** A failed or partial attempt, or one whose process died (its
``running_since`` is still set at the next check), waits
``retry_min · 2^(n-1)`` seconds (at most ``retry_max``) before attempt n+1.
Only the first failure of a streak and the recovery are notified.

**Cleared** only by a copy-back with outcome ``ok`` that *started after* the
last evidence: a run that began while the slave may still have been serving
does not clear it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

NOTIFY_FAILURE, NOTIFY_RECOVERY = "failure", "recovery"


@dataclass(frozen=True)
class Policy:
    retry_min: float = 60.0
    retry_max: float = 3600.0
    gap: float = 300.0

    def backoff(self, attempts: int) -> float:
        """Seconds before attempt ``attempts + 1`` after ``attempts`` failed ones in a row (≥ 1)."""
        return min(self.retry_min * 2 ** max(attempts - 1, 0), self.retry_max)


@dataclass(frozen=True)
class Observation:
    """What one check saw. ``None``: cannot tell (no probe of that kind configured)."""

    now: float
    peer_serving: bool | None
    peer_reachable: bool | None
    serving_here: bool | None = True
    switched_over: bool = False


@dataclass(frozen=True)
class State:
    """Kept in the store between checks (``core.copy_back``/``auto``), as a plain dict."""

    owed_since: float | None = None
    reason: str = ""
    evidence_at: float | None = None  # the last moment the slave served or may have served
    last_check: float | None = None
    attempts: int = 0  # failed attempts in a row
    last_attempt_at: float | None = None
    last_outcome: str | None = None
    next_attempt_at: float | None = None
    running_since: float | None = None  # an automatic attempt started and not yet finished
    failure_notified: bool = False

    @property
    def owed(self) -> bool:
        return self.owed_since is not None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> State:
        if not isinstance(data, dict):
            return cls()
        known = {name: data[name] for name in cls.__dataclass_fields__ if name in data}
        return cls(**known)


@dataclass(frozen=True)
class Decision:
    state: State
    run: bool
    why: str  # why it runs, or why not (for the log and ``--json``)
    newly_owed: bool = False
    interrupted: bool = False  # the previous automatic attempt died: counted as failed
    notify: str | None = None  # for the interrupted attempt: NOTIFY_FAILURE when it starts a streak


def evidence(state: State, seen: Observation, policy: Policy) -> str | None:
    """Why this check says the slave served or may have served since; ``None`` when it says nothing."""
    if seen.peer_serving:
        return "the slave serves"
    if seen.peer_reachable is False:
        return "the slave cannot be reached (it may be serving behind the cut)"
    if state.last_check is not None:
        if seen.now < state.last_check - 1:
            return "the clock went back since the last check"
        if seen.now - state.last_check > policy.gap:
            return f"no check ran here for {seen.now - state.last_check:.0f} s (this master was down or cut off?)"
    return None


def decide(state: State, seen: Observation, policy: Policy) -> Decision:
    """One check: update what is owed and say whether the copy-back runs now."""
    interrupted = state.running_since is not None
    notify = None
    if interrupted:
        notify = None if state.failure_notified else NOTIFY_FAILURE
        state = replace(_failed(state, "interrupted", state.running_since, policy), failure_notified=True)
    why = evidence(state, seen, policy)
    newly_owed = why is not None and not state.owed
    if why is not None:
        state = replace(
            state,
            owed_since=state.owed_since if state.owed else seen.now,
            reason=state.reason if state.owed else why,
            evidence_at=seen.now,
        )
    state = replace(state, last_check=seen.now)
    if not state.owed:
        return Decision(state, False, "nothing owed", newly_owed, interrupted, notify)
    waiting = _waiting(state, seen)
    if waiting:
        return Decision(state, False, waiting, newly_owed, interrupted, notify)
    started = replace(state, running_since=seen.now)
    return Decision(started, True, "owed: " + state.reason, newly_owed, interrupted, notify)


def _waiting(state: State, seen: Observation) -> str | None:
    if seen.switched_over:
        return "a planned switchover is in force (switchback copies back)"
    if seen.peer_serving is None:
        return "cannot tell whether the slave still serves (no service probe such as sip): run it by hand"
    if seen.peer_serving:
        return "the slave still serves"
    if seen.peer_reachable is False:
        return "the slave cannot be reached"
    if seen.serving_here is False:
        return "telephony does not run here"
    if state.next_attempt_at is not None and seen.now < state.next_attempt_at:
        return f"retry in {state.next_attempt_at - seen.now:.0f} s (attempt {state.attempts + 1})"
    return None


def finish(state: State, outcome: str, started_at: float, now: float, policy: Policy) -> tuple[State, str | None]:
    """The state after a copy-back that started at ``started_at`` ended with ``outcome``; and what to notify.

    ``ok`` clears what is owed when the run started at or after the last
    evidence; any other outcome (``failed``, ``partial``) is a failed attempt.
    The notification is :data:`NOTIFY_FAILURE` for the first failure of a
    streak, :data:`NOTIFY_RECOVERY` for the success that ends one, else ``None``.
    """
    state = replace(state, running_since=None)
    if outcome == "ok":
        notify = NOTIFY_RECOVERY if state.failure_notified else None
        if state.evidence_at is not None and started_at < state.evidence_at:  # the slave may have served since
            kept = replace(state, attempts=0, next_attempt_at=None, failure_notified=False)
            return replace(kept, last_attempt_at=started_at, last_outcome=outcome), notify
        return State(last_check=state.last_check, last_attempt_at=started_at, last_outcome=outcome), notify
    failed = _failed(state, outcome, started_at, policy, now=now)
    notify = None if state.failure_notified else NOTIFY_FAILURE
    return replace(failed, failure_notified=True), notify


def _failed(state: State, outcome: str, started_at: float, policy: Policy, now: float | None = None) -> State:
    attempts = state.attempts + 1
    end = started_at if now is None else now
    return replace(
        state,
        running_since=None,
        attempts=attempts,
        last_attempt_at=started_at,
        last_outcome=outcome,
        next_attempt_at=end + policy.backoff(attempts),
    )
