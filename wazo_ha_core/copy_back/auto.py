"""``wazo-ha copy-back --auto``: one scheduled check on the master; runs the copy-back when it is owed.

The decision is :mod:`.owed` (pure); this module observes, keeps the state in
the store (plugin state ``core.copy_back``, key ``auto``) and journals:

* ``copy-back-owed`` when a check first finds evidence that the slave served
  (outcome ``ok``; the reason in the message);
* the copy-back itself (``copy-back``, figures ``automatic``, ``attempt``), by
  :func:`~wazo_ha_core.copy_back.run.copy_back`;
* an attempt whose process died (SIGKILL, power loss) as a ``copy-back``
  ``failed`` "interrupted" at the next check.

Two drivers: the schedule (cron or the timer, every
``schedules.master_interval`` minutes) and ``wazo-ha follow``
(:class:`~wazo_ha_core.follow.CopyBackChecks`, every
``follow.copy_back_interval`` seconds). One check at a time
(``paths.run_dir``/``copy-back-auto.lock``, not waited for: the check
refused has nothing to do that the running one does not), so a copy-back is
never run twice at once, and the state in the store is theirs to share.
Observing costs one round of the health probes on the slave (each bounded by
its own timeout), so a check never blocks for long; the copy-back it may
start is bounded by the plugins' timeouts. Phones are never waited for: the
check runs beside telephony and never touches the service managers.

After a successful automatic copy-back the check runs one replication
(journaled as any): its first step carries back the users' statuses
(:mod:`wazo_ha_core.user_statuses`) changed on the slave while it served,
now rather than at the next master change or schedule run. A replication
refused (another one holds the lock: it carries them itself) or failed
(journaled and notified by the replication) does not change the copy-back's
outcome; the schedule runs it again.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .. import run_locks
from ..errors import AlreadyRunning, WazoHAError
from ..journal import Event, utcnow
from .owed import Decision, Observation, Policy, State, decide, finish

if TYPE_CHECKING:
    from ..engine import HAEngine

log = logging.getLogger(__name__)

STATE_OWNER, STATE_KEY = "core.copy_back", "auto"  # also read by the status snapshot and the metrics
OWED_KIND = "copy-back-owed"
LOCK_FILE = "copy-back-auto.lock"
SWITCHOVER_OWNER, SWITCHED_KEY = "core.switchover", "switched"


def policy(settings) -> Policy:
    return Policy(
        retry_min=float(settings.get("copy_back.retry_min")),
        retry_max=float(settings.get("copy_back.retry_max")),
        gap=float(settings.get("copy_back.gap") or max(300, 3 * 60 * int(settings.get("schedules.master_interval")))),
    )


def load_state(store) -> State:
    return State.from_dict(store.plugin_state(STATE_OWNER).get(STATE_KEY))


def save_state(store, state: State) -> None:
    store.plugin_state(STATE_OWNER).set(STATE_KEY, state.as_dict())


def check(engine: HAEngine, *, clock=time.time, quiet: bool = False) -> dict[str, Any]:
    """One check (see the module docstring); returns what it saw and did.

    ``quiet`` (the follower, which checks every few seconds): why nothing ran is logged at DEBUG, not INFO,
    and a check that changes nothing but ``last_check`` saves it at most every :func:`refresh_period` seconds
    (a store in the master's PostgreSQL must not write every few seconds: the follower's change signal would
    see it as a change). Raises :class:`AlreadyRunning` when another check holds the lock (the schedule's and
    the follower's take turns; the one refused has nothing to do). A failed
    copy-back does not raise: it is journaled, notified (first of a streak) and
    retried at a later check; ``outcome`` says how it ended.
    """
    settings = engine.settings
    with run_locks.exclusive(settings.path("run_dir"), LOCK_FILE, "automatic copy-back check"):
        ha = engine.current_settings()
        if ha.node_type != "master" or not ha.remote_address:
            return {"owed": False, "ran": False, "why": f"not a master (node_type {ha.node_type!r})"}
        rules = policy(settings)
        before = load_state(engine.store)
        seen = observe(engine, clock())
        decision = decide(before, seen, rules)
        _journal_news(engine, before, decision)
        automatic = bool(settings.get("copy_back.automatic"))
        if decision.run and not automatic:
            decision = replace(decision, run=False, why="copy_back.automatic is off: run `wazo-ha copy-back`")
            decision = replace(decision, state=replace(decision.state, running_since=None))
        if not quiet or _worth_saving(before, decision.state, rules):
            save_state(engine.store, decision.state)  # running_since is durable before the run starts
        result: dict[str, Any] = {"owed": decision.state.owed, "ran": False, "why": decision.why}
        if decision.run:
            result.update(_attempt(engine, decision.state, seen.now, rules, clock))
        else:
            log.log(logging.DEBUG if quiet else logging.INFO, "copy-back check: %s", decision.why)
        if decision.state.owed or before.owed:
            engine.metrics.on_event(None)  # the owed gauges follow the state, not only the journal
        return result


def refresh_period(rules: Policy) -> float:
    """How stale a quiet check may leave ``last_check`` in the store: well within ``copy_back.gap``."""
    return min(60.0, rules.gap / 2)


def _worth_saving(before: State, after: State, rules: Policy) -> bool:
    if replace(before, last_check=after.last_check) != after or before.last_check is None:
        return True
    return after.last_check - before.last_check >= refresh_period(rules)


def _attempt(engine: HAEngine, state: State, started: float, rules: Policy, clock) -> dict[str, Any]:
    from .run import UNATTENDED_LOCK_WAIT, copy_back

    attempt = state.attempts + 1
    figures = {"automatic": True, "attempt": attempt, "streak_notified": state.failure_notified}
    log.info("copy-back owed (%s): attempt %d", state.reason, attempt)
    try:
        report = copy_back(engine, automatic=figures, sync_lock_wait=UNATTENDED_LOCK_WAIT)
        outcome, message = report.outcome, report.message
    except AlreadyRunning as exc:  # a copy-back by hand or by switchback, a long sync: not an attempt of ours
        save_state(engine.store, replace(state, running_since=None))
        return {"ran": False, "why": str(exc)}
    except WazoHAError as exc:  # journaled and notified by copy_back
        outcome, message = "failed", str(exc)
    after, _ = finish(state, outcome, started, clock(), rules)  # notified through the journaled event
    save_state(engine.store, after)
    if after.next_attempt_at is not None and outcome != "ok":
        log.warning(
            "copy-back attempt %d %s; next attempt in %.0f s", attempt, outcome, after.next_attempt_at - clock()
        )
    result = {"ran": True, "outcome": outcome, "message": message, "attempt": attempt, "owed": after.owed}
    if outcome == "ok":
        result["replication"] = _carry_back_statuses(engine)
    return result


def _carry_back_statuses(engine: HAEngine) -> str:
    """One replication after the copy-back (module docstring); returns its outcome in a word or two."""
    try:
        outcomes = [result.outcome for result in engine.replicate()]
    except AlreadyRunning:
        return "already running"
    except WazoHAError as exc:
        log.warning("replication after the copy-back: %s", exc)
        return "failed"
    return ", ".join(outcomes) or "nothing to do"


def _journal_news(engine: HAEngine, before: State, decision: Decision) -> None:
    state = decision.state
    if decision.interrupted:
        event = Event(kind="copy-back", started_at=_moment(before.running_since), ended_at=utcnow())
        event.outcome = "failed"
        event.message = "interrupted: the process running the automatic copy-back died; retried"
        event.figures = {
            "automatic": True,
            "attempt": state.attempts,
            "streak_notified": before.failure_notified,
        }
        engine.journal.append(event)
    if decision.newly_owed:
        event = Event(kind=OWED_KIND, started_at=_moment(state.owed_since), ended_at=utcnow())
        event.message = f"copy-back owed: {state.reason}"
        event.figures = {"reason": state.reason}
        engine.journal.append(event)
        log.warning("%s", event.message)


def settle_manual(engine: HAEngine, outcome: str, started: float) -> None:
    """After a copy-back run by hand or by switchback: an ``ok`` that started after the evidence clears the debt.

    A failure by hand changes nothing here (the schedule's back-off is its own).
    """
    state = load_state(engine.store)
    if outcome != "ok":
        return
    if state.running_since is not None:  # an automatic attempt running, or one that died: which?
        try:
            with run_locks.exclusive(engine.settings.path("run_dir"), LOCK_FILE, "automatic copy-back check"):
                state = replace(state, running_since=None)  # it died: this run did its work
        except AlreadyRunning:
            return  # a check is running; it keeps its own state
    after, _ = finish(state, outcome, started, time.time(), policy(engine.settings))
    if after != state:
        save_state(engine.store, after)


def streak_notified(engine: HAEngine) -> bool:
    return load_state(engine.store).failure_notified


def observe(engine: HAEngine, now: float) -> Observation:
    """One round of the health probes on the slave, the peer's store if configured, and this node's services."""
    ha = engine.current_settings()
    peer = ha.remote_address
    host_answers, service_answers = [], []
    for probe in engine.loader.load("health_probes"):
        try:
            up = bool(probe.probe(peer).up)
        except Exception as exc:  # a broken probe is no answer, as in the watch
            log.debug("probe %s: %s", probe.name, exc)
            continue
        (service_answers if probe.checks == "service" else host_answers).append(up)
    serving = any(service_answers) if service_answers else None
    reachable = any(host_answers) if host_answers else None
    if serving:
        reachable = True
    if engine.settings.get("switchover.peer_store_url"):
        from ..switchover import read_peer_watch

        watch = read_peer_watch(engine.settings)
        if watch.known:
            serving = bool(serving) or watch.role == "active"
    return Observation(
        now=now,
        peer_serving=serving,
        peer_reachable=reachable,
        serving_here=_serving_here(engine),
        switched_over=bool(engine.store.plugin_state(SWITCHOVER_OWNER).get(SWITCHED_KEY)),
    )


def _serving_here(engine: HAEngine) -> bool | None:
    try:
        states = [state.active for _, state in engine.service_control().status()]
    except WazoHAError as exc:
        log.debug("service status: %s", exc)
        return None
    return None if not states or None in states else all(states)


def _moment(epoch: float | None) -> datetime:
    return datetime.fromtimestamp(epoch, UTC) if epoch is not None else utcnow()


def summary(data: dict | None) -> dict[str, Any] | None:
    """The state as ``status`` shows it (ISO times); ``None`` when no check ever ran."""
    if not data:
        return None
    state = State.from_dict(data)

    def iso(epoch):
        return _moment(epoch).isoformat() if epoch is not None else None

    return {
        "owed": state.owed,
        "owed_since": iso(state.owed_since),
        "reason": state.reason or None,
        "attempts": state.attempts,
        "last_attempt_at": iso(state.last_attempt_at),
        "last_outcome": state.last_outcome,
        "next_attempt_at": iso(state.next_attempt_at),
        "running": state.running_since is not None,
        "last_check": iso(state.last_check),
    }
