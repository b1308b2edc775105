"""Planned switchover and switchback, run on the master; the slave moves through its normal watch.

**Switchover** (``wazo-ha switchover``, for an upgrade or maintenance of the master):

1. checks (each refusal named; ``--force`` goes on and journals what it overrode):
   this node is the master and serves; it carries no call; the slave is
   not paused and does not already answer SIP; the slave is in sync — the
   last replication and file sync run now and must succeed;
2. the master gives back (its service managers stop, in reverse order, as a
   slave gives back: ``wazo-service stop`` then ``disable``);
3. the slave's watch sees the master's service probe fail (the host still
   answers) and takes over after ``watch.fall`` rounds — the failover path,
   no second mechanism; the master polls the slave with its service probes
   (``sip``) until it answers;
4. the time phones had no server — from the moment the master began to stop
   to the slave's first SIP answer, an upper bound — is reported and journaled
   (``no_server_seconds``). No answer within ``switchover.timeout``: the master
   takes over again (nothing lost but the wait) and the run fails.

**Why the slave does not fail back at once**: a failback needs ``watch.rise``
good rounds; with a service probe configured a round is good only when the
master *answers SIP*, and its services stay stopped. **Why the master does not
restart them**: nothing in wazo-ha starts a master's services (the watch is
idle on a master; the master's schedules replicate and sync only), and the
stop commands ``disable`` the units, so a reboot does not start them either.
A marker in the store (``core.switchover``/``switched``) records the
switchover for ``status`` and for ``switchback``.

**Switchback** (``wazo-ha switchback``, on the master, when the work is done):
checks (the master does not serve, the slave serves and is not paused), then
the master takes over here (``services start``); the slave's watch sees the
master good for ``watch.rise`` rounds and ``watch.stability`` seconds and
gives back through its normal failback (with its courtesy wait for calls,
and the copy-back of issue 12 item 1 as that path does it); the master waits
until the slave stops answering SIP, within ``switchover.switchback_timeout``.
Phones always had a server: the master answers before the slave stops.

The slave's pause can only be read from its store: set
``switchover.peer_store_url`` to it (e.g. the slave's PostgreSQL). Without it
the pause is not checked beforehand; a paused slave then never takes over and
the switchover times out and takes over here again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import PluginError, PreflightError, WazoHAError
from .journal import Event, utcnow
from .status_snapshot import SWITCHOVER_OWNER

if TYPE_CHECKING:
    from .engine import HAEngine

log = logging.getLogger(__name__)

SWITCHOVER, SWITCHBACK = "switchover", "switchback"
STATE_OWNER = SWITCHOVER_OWNER  # also in the status snapshot
STATE_KEY = "switched"
WATCH_OWNER = "core.watch"  # the slave's watch state, as watcher.STATE_OWNER (not imported: no SQLAlchemy here)
POLL = 0.05  # seconds between two SIP probes of the slave while waiting


@dataclass(frozen=True)
class PeerWatch:
    """The slave's watch as its store tells it; ``known`` False when it cannot be read."""

    known: bool
    paused: dict[str, Any] | None = None
    role: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Facts:
    """What the checks decide on; gathered by :func:`gather`, judged by the pure functions below."""

    node_type: str
    peer: str
    serving_here: bool | None  # this node's service managers: all active / not / cannot tell
    calls_here: int | None
    peer_answers: bool  # the slave answers SIP now
    peer_watch: PeerWatch = field(default_factory=lambda: PeerWatch(False))


def switchover_refusals(facts: Facts) -> list[str]:
    """Why a switchover must not start now (empty: it may). Pure."""
    if facts.node_type != "master" or not facts.peer:
        return [f"switchover runs on the master; this node's node_type is {facts.node_type!r}"]
    problems = []
    if facts.serving_here is False:
        problems.append("telephony does not run here (already switched over? `wazo-ha switchback` brings it back)")
    if facts.calls_here:
        problems.append(f"{facts.calls_here} call(s) are up here and would be cut")
    if facts.peer_answers:
        problems.append(f"the slave {facts.peer} already answers SIP (it serves already: both would serve)")
    problems += _paused(facts)
    return problems


def switchback_refusals(facts: Facts) -> list[str]:
    """Why a switchback must not start now (empty: it may). Pure."""
    if facts.node_type != "master" or not facts.peer:
        return [f"switchback runs on the master; this node's node_type is {facts.node_type!r}"]
    problems = []
    if facts.serving_here:
        problems.append("telephony already runs here: nothing to switch back")
    if not facts.peer_answers:
        problems.append(f"the slave {facts.peer} does not answer SIP: it does not serve (unreachable or stopped)")
    return problems + _paused(facts)


def _paused(facts: Facts) -> list[str]:
    paused = facts.peer_watch.paused
    if not paused:
        return []
    reason = f" ({paused.get('reason')})" if paused.get("reason") else ""
    since = paused.get("since", "?")
    return [f"the slave's watch is paused since {since}{reason}: it would not move (`wazo-ha resume` there)"]


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    poll: float = POLL,
) -> float | None:
    """Seconds until ``condition()`` held (checked at once, then every ``poll``); ``None`` after ``timeout``."""
    start = clock()
    while True:
        if condition():
            return clock() - start
        if clock() - start >= timeout:
            return None
        sleep(poll)


# --- I/O -------------------------------------------------------------------------------------------


def read_peer_watch(settings) -> PeerWatch:
    """The slave's pause and watch role from its store (``switchover.peer_store_url``); unknown without one."""
    url = settings.get("switchover.peer_store_url")
    if not url:
        return PeerWatch(False, detail="switchover.peer_store_url not set: the slave's pause is not checked")
    from .store import Store

    store = Store(url, settings.get("store.schema"))
    try:
        state = store.plugin_state(WATCH_OWNER)
        status = state.get("status") or {}
        return PeerWatch(True, state.get("paused"), status.get("role"), "read from the slave's store")
    except Exception as exc:  # any database error: the check cannot be made, which is itself a refusal
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return PeerWatch(False, detail=f"the slave's store ({store.describe()}) cannot be read: {reason}")
    finally:
        store.close()


class PeerSip:
    """Whether the slave answers SIP, through the enabled probes that check the service (``sip``)."""

    def __init__(self, probes: list):
        self.probes = [probe for probe in probes if probe.checks == "service"]
        if not self.probes:
            raise PreflightError(
                "switchover needs a service probe (e.g. sip) in plugins.health_probes to see the slave answer, "
                "and the slave's watch needs one to take over from a master whose host still answers"
            )

    def answers(self, peer: str) -> bool:
        for probe in self.probes:
            try:
                if probe.probe(peer).up:
                    return True
            except Exception as exc:  # a broken probe (or a plugin bug) is no answer, as in the watch
                log.debug("probe %s: %s", probe.name, exc)
        return False


def gather(engine: HAEngine, sip: PeerSip) -> tuple[Facts, Any]:
    """The facts and the service control of this node."""
    ha = engine.current_settings()
    control = engine.service_control()
    states = [state.active for _, state in control.status()]
    serving = None if not states or None in states else all(states)
    peer = ha.remote_address
    facts = Facts(
        node_type=ha.node_type,
        peer=peer,
        serving_here=serving,
        calls_here=control.active_calls() if serving else None,
        peer_answers=bool(peer) and sip.answers(peer),
        peer_watch=read_peer_watch(engine.settings),
    )
    return facts, control


def _refuse(engine: HAEngine, event: Event, what: str, problems: list[str]) -> None:
    event.outcome = "refused"
    event.message = f"{what} refused: " + "; ".join(problems) + " (`--force` goes on anyway)"
    event.figures["refusals"] = problems
    engine.journal.append(event)
    raise PreflightError(event.message)


def _checked(engine: HAEngine, kind: str, facts: Facts, problems: list[str], force: bool) -> Event:
    event = Event(kind=kind, started_at=utcnow(), figures={"peer": facts.peer, "forced": force})
    if not facts.peer_watch.known:
        event.figures["peer_watch"] = facts.peer_watch.detail
    if problems and (not force or facts.node_type != "master" or not facts.peer):
        _refuse(engine, event, kind, problems)
    if problems:
        event.figures["overridden"] = problems
        log.warning("%s forced despite: %s", kind, "; ".join(problems))
    return event


def _bring_in_sync(engine: HAEngine, event: Event, force: bool, say: Callable[[str], None]) -> None:
    """The last replication and file sync; a failure means the slave is not in sync."""
    problems = []
    try:
        if engine.loader.load("replication"):
            say("replicating the configuration database to the slave")
            results = engine.replicate()
            event.figures["replication"] = [result.outcome for result in results]
        else:
            event.figures["replication"] = "no replication backend enabled"
        if engine.loader.load("file_sync"):
            say("syncing files to the slave")
            report = engine.sync_files()
            if not report.initialised:
                problems.append("file sync is not set up (`wazo-ha sync init`)")
            event.figures["sync"] = [entry.get("outcome") for entry in getattr(report, "results", [])]
    except WazoHAError as exc:
        problems.append(f"the slave is not in sync: {exc}")
    if problems and not force:
        _refuse(engine, event, event.kind, problems)
    if problems:
        event.figures.setdefault("overridden", []).extend(problems)


def switchover(
    engine: HAEngine, *, force: bool = False, timeout: float | None = None, say: Callable[[str], None] = log.info
) -> dict[str, Any]:
    """Move telephony to the slave; returns the journaled figures (``no_server_seconds``, …).

    Raises :class:`PreflightError` (refused; nothing changed) or :class:`PluginError`
    (the slave did not take over in time: telephony was started here again).
    """
    sip = PeerSip(engine.loader.load("health_probes"))
    facts, control = gather(engine, sip)
    event = _checked(engine, SWITCHOVER, facts, switchover_refusals(facts), force)
    _bring_in_sync(engine, event, force, say)
    limit = float(timeout if timeout is not None else engine.settings.get("switchover.timeout"))
    state = engine.store.plugin_state(STATE_OWNER)
    try:
        say("stopping telephony here")
        stop_began = time.monotonic()
        event.figures.update(control.give_back())
        stopped = time.monotonic()
        event.figures["stop_seconds"] = round(stopped - stop_began, 3)
        state.set(STATE_KEY, {"since": utcnow().isoformat(), "peer": facts.peer})
        say(f"waiting for the slave {facts.peer} to answer SIP (at most {limit:g} s)")
        waited = wait_until(lambda: sip.answers(facts.peer), limit)
        if waited is None:
            _take_back(control, state)
            raise PluginError(
                f"the slave {facts.peer} did not answer SIP within {limit:g} s (watch paused or stopped there? "
                "no service probe in its plugins.health_probes?); telephony was started here again"
            )
        event.figures["no_server_seconds"] = round(time.monotonic() - stop_began, 3)
        event.figures["takeover_seconds"] = round(waited, 3)
    except WazoHAError as exc:
        event.outcome, event.message = "failed", str(exc)
        engine.journal.append(event)
        raise
    event.message = (
        f"telephony moved to {facts.peer}: phones had no server for at most {event.figures['no_server_seconds']:.1f} s"
    )
    engine.journal.append(event)
    return event.figures


def _take_back(control, state) -> None:
    try:
        control.take_over()
    finally:
        state.delete(STATE_KEY)


def switchback(
    engine: HAEngine, *, force: bool = False, timeout: float | None = None, say: Callable[[str], None] = log.info
) -> dict[str, Any]:
    """Bring telephony back here; the slave gives back through its normal failback. Returns the figures.

    Raises :class:`PreflightError` (refused; nothing changed) or :class:`PluginError`
    (telephony started here but the slave still serves after the timeout: both serve; see its watch).
    """
    sip = PeerSip(engine.loader.load("health_probes"))
    facts, control = gather(engine, sip)
    event = _checked(engine, SWITCHBACK, facts, switchback_refusals(facts), force)
    limit = float(timeout if timeout is not None else engine.settings.get("switchover.switchback_timeout"))
    state = engine.store.plugin_state(STATE_OWNER)
    try:
        say("starting telephony here")
        began = time.monotonic()
        event.figures.update(control.take_over())
        event.figures["start_seconds"] = round(time.monotonic() - began, 3)
        say(f"waiting for the slave {facts.peer} to give back through its failback (at most {limit:g} s)")
        waited = wait_until(lambda: not sip.answers(facts.peer), limit, poll=0.5)
        if waited is None:
            raise PluginError(
                f"telephony runs here again but the slave {facts.peer} still answers SIP after {limit:g} s: its watch "
                "has not given back (paused? calls up there? see `wazo-ha status` on the slave)"
            )
        event.figures["gave_back_after"] = round(time.monotonic() - began, 3)
        event.figures["copy_back"] = copy_back_hook(engine, facts.peer)
        state.delete(STATE_KEY)
    except WazoHAError as exc:
        event.outcome, event.message = "failed", str(exc)
        engine.journal.append(event)
        raise
    event.message = (
        f"telephony back here; the slave {facts.peer} gave back after {event.figures['gave_back_after']:.1f} s "
        "(phones always had a server)"
    )
    engine.journal.append(event)
    return event.figures


def copy_back_hook(engine: HAEngine, peer: str) -> str:
    """Once the slave gave back: bring here what it recorded while serving (``wazo-ha copy-back``).

    Phones first: a copy-back that fails or leaves items does not undo the
    switchback. The copy-back journals and notifies its own outcome, and the
    next ``wazo-ha copy-back`` continues where it stopped. Returns the outcome
    for the switchback's figures.
    """
    from .copy_back.run import UNATTENDED_LOCK_WAIT

    try:
        report = engine.copy_back(lock_wait=UNATTENDED_LOCK_WAIT)  # the follower's sync may be running
    except WazoHAError as exc:
        log.warning("switchback: the copy-back from %s failed: %s (run `wazo-ha copy-back` again)", peer, exc)
        return f"failed: {exc}"
    return report.outcome
