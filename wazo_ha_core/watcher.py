"""The watch loop on the slave: probes → :mod:`~wazo_ha_core.watch` → service managers → journal.

:class:`Watcher` does the I/O around the pure state machine: it runs every
enabled health probe once per round (concurrently, each bounded by its own
timeout plus a grace), turns answers and exceptions into observations (a probe
that raises or overruns is *unknown*), probes the witnesses when the machine
asks, calls the service managers, and journals failovers, failbacks and the
notes the machine emits.

Two ways to drive it:

* :meth:`Watcher.run` — ``wazo-ha watch``, the long-running loop for a systemd
  unit: a round every ``watch.interval`` seconds until stopped.
* :meth:`Watcher.check` — ``wazo-ha check`` and the legacy
  ``xivo-check-master-status`` for cron: a few rounds, with the machine's
  state kept in the store between runs so that fall/rise counts and the
  stability window span invocations.

In coordinated mode (a coordinator other than ``none``, ``docs/coordination.rst``)
the watch runs on every node and only judges; a
:class:`~wazo_ha_core.coordination.driver.LeaseKeeper` thread starts and stops
telephony while it holds the leader lock.

Pausing is a flag in the store (:class:`PauseSwitch`), read every round, so
``wazo-ha pause`` from another shell takes effect at the next round.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import timedelta
from pathlib import Path
from typing import Any

from .errors import SettingsError, WazoHAError
from .extensions import HealthProbe, PluginState
from .journal import Event, Journal, utcnow
from .services import ServiceControl
from .watch import (
    STATE_OWNER,  # noqa: F401 (the engine and the demo import it from here)
    Action,
    Decision,
    Health,
    Observation,
    Role,
    RoundVerdict,
    Watch,
    WatchConfig,
    WatchState,
    judge_round,
)

log = logging.getLogger(__name__)

#: Notes of the state machine that are journaled (the others are only logged).
JOURNALED_NOTES = ("failover-refused", "failover-paused", "failback-delayed")
#: A probe gets its own timeout plus this before the watcher calls it unknown.
PROBE_GRACE = 0.5
#: Between two cron runs of ``check``, the machine's memory stays valid this long.
CHECK_MAX_GAP = 150.0


class PauseSwitch:
    """The persistent pause flag: ``{"since": ISO time, "reason": text}`` while paused."""

    def __init__(self, state: PluginState):
        self.state = state

    def get(self) -> dict[str, Any] | None:
        return self.state.get("paused")

    def pause(self, reason: str) -> bool:
        """Pause; ``False`` when already paused (nothing changed)."""
        if self.get():
            return False
        self.state.set("paused", {"since": utcnow().isoformat(), "reason": reason})
        return True

    def resume(self) -> bool:
        """Resume; ``False`` when not paused."""
        if not self.get():
            return False
        self.state.delete("paused")
        return True


def watch_config(settings, max_gap: float | None = None) -> WatchConfig:
    """The state machine's settings from ``watch.*``, with errors naming the key and value."""
    values = {}
    for key in ("fall", "rise"):
        value = settings.get(f"watch.{key}")
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or value < 1:
            raise SettingsError("settings", f"watch.{key}", f"must be an integer >= 1, got {value!r}")
        values[key] = value
    interval = float(settings.get("watch.interval"))
    return WatchConfig(
        fall=values["fall"],
        rise=values["rise"],
        stability=float(settings.get("watch.stability")),
        courtesy_max=float(settings.get("watch.courtesy_max")),
        retry=float(settings.get("watch.retry")),
        max_gap=max_gap if max_gap is not None else max(5.0, 5 * interval),
        witnesses=bool(settings.get("watch.witnesses")),
    )


class Watcher:
    def __init__(
        self,
        *,
        settings,
        journal: Journal,
        state: PluginState,
        probes: list[HealthProbe],
        services: ServiceControl,
        target: Callable[[], str | None],
        is_slave: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic,
        keeper=None,
    ):
        self.settings = settings
        self.journal = journal
        self.state = state
        self.pause_switch = PauseSwitch(state)
        self.probes = probes
        self.services = services
        self.target = target
        self.is_slave = is_slave
        self.clock = clock
        #: Coordinated mode (:class:`~wazo_ha_core.coordination.driver.LeaseKeeper`): the leader lock decides
        #: when telephony starts and stops; ``None`` with the ``none`` coordinator (the watch acts itself).
        self.keeper = keeper
        self.interval = float(settings.get("watch.interval"))
        self.witnesses = list(settings.get("watch.witnesses"))
        self.watch: Watch | None = None
        self._executor = ThreadPoolExecutor(max_workers=4 + len(probes) * (1 + len(self.witnesses)))
        self._broken: dict[str, str] = {}  # probe name → last error, to log each breakage once
        self._last_logged: tuple | None = None
        #: (``"failover"``/``"failback"``, succeeded) of the last action, for ``check``'s exit code.
        self.last_action: tuple[str, bool] | None = None

    # --- drivers -------------------------------------------------------------------------

    def run(self, stop: threading.Event, on_round: Callable[[Decision], None] | None = None) -> None:
        """Rounds every ``watch.interval`` seconds until ``stop`` is set."""
        self.watch = Watch(watch_config(self.settings), self._actual_role())
        log.info(
            "watch started: %s, %d probe(s), role %s", self._describe_config(), len(self.probes), self.watch.role.value
        )
        keeper_thread = None
        if self.keeper is not None:
            keeper_thread = threading.Thread(target=self.keeper.run, args=(stop,), name="lease-keeper", daemon=True)
            keeper_thread.start()
        next_round = self.clock()
        while not stop.is_set():
            try:
                decision = self.round()
            except Exception:  # the loop must outlive a store hiccup or a plugin bug; the next round retries
                log.exception("watch round failed")
                decision = Decision(Action.NONE, "round failed")
            if on_round:
                on_round(decision)
            next_round += self.interval
            now = self.clock()
            if next_round < now:  # the round overran: skip the missed slots, do not burst
                next_round = now
            stop.wait(next_round - now)
        if keeper_thread is not None:
            keeper_thread.join()  # it stops the services and releases the lock first
        self._executor.shutdown(wait=False, cancel_futures=True)
        log.info("watch stopped")

    def check(self, rounds: int | None = None) -> Decision:
        """A few rounds (``fall`` or ``rise``, whichever is larger) for cron; the machine's state is kept."""
        if self.keeper is not None:
            raise SettingsError(
                "settings", "schedules.slave_mode", "coordinated mode needs the long-running `wazo-ha watch`"
            )
        config = watch_config(self.settings, max_gap=CHECK_MAX_GAP)
        saved = self._load_state()
        role = self._actual_role()
        self.watch = Watch(config, role, saved)
        self.watch.state.role = role.value  # the services' real state wins over memory
        count = rounds or max(config.fall, config.rise)
        decision = Decision(Action.NONE, "no round")
        try:
            for number in range(count):
                if number:
                    time.sleep(self.interval)  # a cadence between rounds, not synchronisation
                decision = self.round()
                if decision.action is not Action.NONE:
                    break
        finally:
            self._save_state()
            self._executor.shutdown(wait=False, cancel_futures=True)
        return decision

    # --- one round -------------------------------------------------------------------------

    def round(self) -> Decision:
        if self.keeper is not None:
            return self._coordinated_round()
        target = self.target() if self.is_slave() else None
        if not target:
            decision = Decision(Action.NONE, "this node is not a slave with a master address: idle")
            self._log_state(decision)
            return decision
        observations = self._probe_all(target, self.probes)
        decision = self._judge(observations)
        if decision.action in (Action.TAKE_OVER, Action.GIVE_BACK):
            self._act(decision, target)
        self._log_state(decision)
        return decision

    def _judge(self, observations) -> Decision:
        """The watch's verdict on one round (the slave's calls counted when a failback is near; the witnesses
        asked when it wants them)."""
        watch = self.watch
        paused = self.pause_switch.get() is not None
        now = self.clock()
        calls = None
        if watch.role is Role.ACTIVE and judge_round(observations)[0] is RoundVerdict.GOOD:
            if watch.state.good_streak + 1 >= watch.config.rise:
                calls = self.services.active_calls()
        decision = watch.observe(now, observations, paused=paused, active_calls=calls)
        self._handle_notes(decision)
        if decision.action is Action.CHECK_WITNESSES:
            decision = watch.witnessed(now, self._probe_witnesses())
            self._handle_notes(decision)
        return decision

    def _coordinated_round(self) -> Decision:
        """A round in coordinated mode: the watch judges, the keeper acts (only while holding the lock)."""
        from .coordination.node import failback_observations

        watch, keeper = self.watch, self.keeper
        target = self.target() if self.is_slave() else None
        if not target:  # the preferred node: the lock alone decides when it serves
            watch.serving_changed(keeper.serving)
            decision = Decision(Action.NONE, "preferred node: serves while it holds the leader lock")
            keeper.watched(decision.action, None)
            self._log_state(decision)
            return decision
        observations = self._probe_all(target, self.probes)
        watch.serving_changed(keeper.serving)  # the keeper may have started or stopped meanwhile
        if watch.role is Role.ACTIVE:
            observations = failback_observations(observations)  # the preferred node cannot serve without the lock
        decision = self._judge(observations)
        if decision.action in (Action.TAKE_OVER, Action.GIVE_BACK):
            watch.withdraw(decision.action)
        keeper.watched(decision.action, decision.verdict)
        self._log_state(decision)
        return decision

    def _act(self, decision: Decision, target: str) -> None:
        kind = "failover" if decision.action is Action.TAKE_OVER else "failback"
        ok = False
        try:
            with self.journal.record(kind) as event:
                event.message = f"master {target}: {decision.reason}"
                event.figures.update(decision.figures, master=target)
                log.warning("%s: %s", kind, event.message)
                try:
                    switch = self.services.take_over if decision.action is Action.TAKE_OVER else self.services.give_back
                    event.figures.update(switch())
                except WazoHAError as exc:
                    event.message += f"; {exc}"
                    raise
                ok = True
        except WazoHAError as exc:
            log.error("%s failed: %s (retried in %.0f s)", kind, exc, self.watch.config.retry)
        finally:
            self.last_action = (kind, ok)
            self.watch.done(decision.action, ok, self.clock())

    def _probe_all(self, target: str, probes: list[HealthProbe]) -> list[Observation]:
        futures = [(probe, self._executor.submit(probe.probe, target)) for probe in probes]
        observations = []
        for probe, future in futures:
            limit = float(probe.config.get("timeout", self.interval)) + PROBE_GRACE
            try:
                answer = future.result(timeout=limit)
            except FutureTimeout:
                observations.append(self._broken_probe(probe, f"did not return within {limit:g} s"))
                continue
            except Exception as exc:  # a probe that raises is broken: unknown, never "down"
                observations.append(self._broken_probe(probe, f"{type(exc).__name__}: {exc}"))
                continue
            if probe.name in self._broken:
                log.warning("probe %s works again", probe.name)
                del self._broken[probe.name]
            health = Health.UP if answer.up else Health.DOWN
            observations.append(Observation(probe.checks, health, probe.name, answer.reason))
        return observations

    def _broken_probe(self, probe: HealthProbe, error: str) -> Observation:
        if self._broken.get(probe.name) != error:
            log.error("probe %s is broken (its answers count as unknown, never as down): %s", probe.name, error)
            self._broken[probe.name] = error
        return Observation(probe.checks, Health.UNKNOWN, probe.name, error)

    def _probe_witnesses(self) -> list[Health]:
        host_probes = [probe for probe in self.probes if probe.checks == "host"] or self.probes
        answers = []
        for witness in self.witnesses:
            healths = [o.health for o in self._probe_all(witness, host_probes)]
            answers.append(
                Health.UP if Health.UP in healths else Health.DOWN if Health.DOWN in healths else Health.UNKNOWN
            )
        log.info("witnesses %s: %s", self.witnesses, [answer.value for answer in answers])
        return answers

    def _handle_notes(self, decision: Decision) -> None:
        for note in decision.notes:
            if note.kind in JOURNALED_NOTES:
                now = utcnow()
                event = Event(note.kind, now, now, "refused" if note.kind == "failover-refused" else "ok")
                event.message, event.figures = note.message, dict(note.figures)
                self.journal.append(event)
            log.warning("%s: %s", note.kind, note.message)

    # --- state ----------------------------------------------------------------------------------

    def _actual_role(self) -> Role:
        return Role.ACTIVE if self.services.is_active() else Role.STANDBY

    def _log_state(self, decision: Decision) -> None:
        s = self.watch.state if self.watch else None
        summary = (s.role if s else None, decision.verdict, decision.reason if decision.verdict is None else None)
        if summary != self._last_logged:
            self._last_logged = summary
            verdict = decision.verdict.value if decision.verdict else "-"
            log.info("watch: role %s, round %s: %s", summary[0], verdict, decision.reason)
            self._publish_status(decision)

    def _publish_status(self, decision: Decision) -> None:
        s = self.watch.state
        self.state.set(
            "status",
            {
                "at": utcnow().isoformat(),
                "role": s.role,
                "verdict": s.last_verdict,
                "reason": s.last_reason,
                "fail_streak": s.fail_streak,
                "good_streak": s.good_streak,
                "failback_at": self._failback_at(),
            },
        )

    def _failback_at(self) -> str | None:
        """While this node serves and the master answers again: when the give-back is due (ISO time)."""
        s, config = self.watch.state, self.watch.config
        if s.role != Role.ACTIVE.value or s.good_since is None:
            return None
        rounds_left = max(0, config.rise - s.good_streak) * self.interval
        seconds = max(config.stability - (self.clock() - s.good_since), rounds_left, 0.0)
        return (utcnow() + timedelta(seconds=seconds)).isoformat()

    def _load_state(self) -> WatchState | None:
        saved = self.state.get("machine")
        if not saved or saved.get("boot_id") != _boot_id():
            return None  # never saved, or saved before a reboot: the monotonic times mean nothing now
        return WatchState.from_dict(saved["state"])

    def _save_state(self) -> None:
        self.state.set("machine", {"boot_id": _boot_id(), "state": self.watch.state.as_dict()})

    def _describe_config(self) -> str:
        c = self.watch.config
        return (
            f"every {self.interval:g} s, down after {c.fall} failed rounds, back after {c.rise} good rounds "
            f"and {c.stability:g} s, witnesses {self.witnesses or 'none'}"
        )


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
