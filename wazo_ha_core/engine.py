"""The orchestrator: the one object an application (wazo-confd, the CLI) talks to.

It owns the settings, the store, the journal and the plugin loader, and
exposes the operations: read and edit the HA settings, and (in later
modules) replicate, sync, watch and switch services. It decides what a
plugin failure means; the plugins only do their one job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from . import devices, file_sync, replication, run_locks
from .compat import CompatFiles
from .config import DISABLED, HASettings, detect_local_addresses, validate_ha_body
from .edit import EditStep, run_steps
from .edit_steps import (
    CompatFilesStep,
    FileSyncTrustStep,
    ProvisionerStep,
    StoreStep,
    TelephonyHandBackStep,
    leaves_slave_role,
)
from .errors import EditError, ServingTelephony, WazoHAError
from .extensions import ONLY_PINNED, OperationResult, PeerVerification, ProgressCallback, no_progress
from .file_sync import SyncReport
from .journal import Event, Journal, utcnow
from .metrics import MetricsFile
from .notify import Notifier
from .plugins import PluginLoader
from .schedules import ScheduleStep
from .services import ServiceControl
from .settings import Settings
from .sip_expiry import SipExpiryStep
from .skip_cache import record as skip_record
from .slave_db import ReplicationPasswordStep, ReplicationRoleStep, SlaveDBAccessStep, import_password
from .store import Store
from .watcher import STATE_OWNER, PauseSwitch, Watcher

EDIT_LOCK_FILE = "edit.lock"

log = logging.getLogger(__name__)

#: ``listener(before, after)``: called after every successful edit that changed
#: something — the embedding application publishes its ``ha_edited`` bus event here.
EditListener = Callable[[HASettings, HASettings], None]


def _settings_text(ha: HASettings) -> str:
    return f"{ha.node_type} {ha.remote_address}".strip()


class HAEngine:
    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        loader: PluginLoader | None = None,
    ):
        self.settings = settings
        self.store = store or Store.from_settings(settings)
        self.compat = CompatFiles.from_settings(settings)
        self.journal = Journal(self.store.append_event)
        self.loader = loader or PluginLoader(settings, self.store.plugin_state)
        self.edit_listeners: list[EditListener] = []
        self.notifier = Notifier.from_settings(settings)
        self.metrics = MetricsFile.from_settings(settings, self.store)
        self.journal.listeners += [self.metrics.on_event, self.notifier.on_event]
        skip_record.fold(self)  # skipped replications the fast path left pending (wazo_ha_core.skip_cache)

    @classmethod
    def from_config(cls, config_file: str | None = None) -> HAEngine:
        return cls(Settings.load(config_file))

    # --- HA settings (GET/PUT /ha) ----------------------------------------------

    def get_ha(self) -> dict[str, str]:
        """The current HA settings in Wazo's shape: ``{"node_type": …, "remote_address": …}``."""
        return self.current_settings().as_dict()

    def current_settings(self) -> HASettings:
        """From the store; on first use, imported from an existing ``ha.conf``."""
        stored = self.store.read_ha_settings()
        if stored is not None:
            return stored
        legacy = self.compat.read_legacy()
        if legacy is None:
            return DISABLED
        event = Event(
            kind="import",
            started_at=utcnow(),
            message=f"imported from {self.compat.ha_conf}",
            figures={"after": legacy.as_dict()},
        )
        event.ended_at = event.started_at
        self.store.write_ha_settings(legacy, event)
        self.journal.notify(event)
        log.info("imported HA settings %s from %s", legacy.as_dict(), self.compat.ha_conf)
        return legacy

    def update_ha(self, body: Any, *, force: bool = False) -> None:
        """Validate ``body`` and apply it as one transaction.

        Raises :class:`~wazo_ha_core.errors.ValidationError` (nothing changed,
        no plugin called), :class:`~wazo_ha_core.errors.AlreadyRunning` (another
        edit runs on this node, from any process: nothing changed),
        :class:`~wazo_ha_core.errors.ServingTelephony` (this slave serves
        telephony and ``body`` takes it out of the slave role: nothing changed;
        with ``force`` telephony is handed back first, as a step of the edit) or
        :class:`~wazo_ha_core.errors.EditError` (a step failed; the steps
        already done were undone).
        """
        after = validate_ha_body(body, self.local_addresses())
        # One edit at a time across processes (confd, the CLI): each compares with the settings in force.
        with run_locks.exclusive(
            self.settings.path("run_dir"), EDIT_LOCK_FILE, "an HA settings edit", record_pid=False
        ):
            self._apply(after, force)

    def _apply(self, after: HASettings, force: bool = False) -> None:
        before = self.current_settings()
        event = Event(kind="edit", started_at=utcnow(), figures={"before": before.as_dict(), "after": after.as_dict()})
        if after == before and self.compat.is_current(after):
            event.outcome, event.message = "unchanged", "settings already in force"
            self.journal.append(event)
            return
        hand_back = []
        services = self._serving_services(before, after)
        if services is not None:
            if not force:
                self._refuse_while_serving(event, services)
            hand_back = [TelephonyHandBackStep(services)]
        steps = [*hand_back, *self.edit_steps(), StoreStep(self.store, event)]
        event.message = f"{_settings_text(before)} -> {_settings_text(after)}" + (" (forced)" if hand_back else "")
        # Written with the settings by the last step, so listed before they run.
        event.figures["steps"] = [step.name for step in steps]
        try:
            run_steps(steps, before, after)
        except EditError as exc:
            event.outcome, event.message = "failed", str(exc)
            try:
                self.journal.append(event)
            except Exception:  # the store may be what failed; the EditError matters more
                log.exception("could not journal the failed edit")
            raise
        self.journal.notify(event)
        log.info("HA settings changed from %s to %s", before.as_dict(), after.as_dict())
        for listener in self.edit_listeners:
            try:
                listener(before, after)
            except Exception:  # the edit is done; a failing notification must not undo it
                log.exception("edit listener %r failed", listener)

    def _serving_services(self, before: HASettings, after: HASettings) -> ServiceControl | None:
        """The service control when the edit takes a slave that serves telephony out of its role, else ``None``."""
        if not leaves_slave_role(before, after):
            return None
        try:
            services = self.service_control()
        except WazoHAError as exc:  # leaving HA must stay possible with a broken service manager
            log.warning("cannot tell whether this slave serves telephony (%s): the edit goes on", exc)
            return None
        return services if services.is_active() else None

    def _refuse_while_serving(self, event: Event, services: ServiceControl) -> None:
        calls = services.active_calls()
        carrying = f", carrying {calls} call(s)" if calls else ""
        event.outcome = "refused"
        event.message = (
            f"this slave serves telephony (it took over{carrying}): leaving the slave role now would leave it "
            "running here while the master serves too. Give telephony back first (`wazo-ha services stop` once the "
            "master serves), or force the edit (`wazo-ha config set ... --force`), which gives it back first"
        )
        event.ended_at = utcnow()
        self.journal.append(event)
        raise ServingTelephony(event.message)

    def edit_steps(self) -> list[EditStep]:
        """The side effects of an edit, in order, before the store commit (docs/enabling.rst)."""
        steps: list[EditStep] = [ProvisionerStep(p) for p in self.loader.load("device_provisioners")]
        steps += [
            SipExpiryStep(self.settings, self.store.plugin_state("edit.sip_expiry")),
            ReplicationPasswordStep(self.settings),
            ReplicationRoleStep(self.settings),
            SlaveDBAccessStep(self.settings),
            ScheduleStep(self.settings),
        ]
        steps += [FileSyncTrustStep(backend) for backend in self.loader.load("file_sync")]
        steps.append(CompatFilesStep(self.compat))
        return steps

    def import_replication_password(self, password: str) -> bool:
        """``wazo-ha replication-password import``: store it; on a slave, set it on the role."""
        return import_password(self.settings, self.current_settings(), password)

    # --- devices --------------------------------------------------------------------

    def resync_devices(self, *, all_devices: bool = False, progress: ProgressCallback = no_progress) -> OperationResult:
        """Ask the phones to fetch their configuration again (``wazo-ha devices resync``)."""
        return devices.resync_devices(self, all_devices=all_devices, progress=progress)

    def local_addresses(self) -> list[str]:
        configured = self.settings.get("local_addresses")
        return list(configured) if configured is not None else detect_local_addresses()

    # --- file sync (master) ------------------------------------------------------------

    def sync_files(
        self,
        progress: ProgressCallback = no_progress,
        lock_wait: float = 0.0,
        lock_waiting: Callable[[str], None] | None = None,
    ) -> SyncReport:
        """Mirror the configured directories to the slave; see :mod:`wazo_ha_core.file_sync`."""
        return file_sync.sync_files(self, progress=progress, lock_wait=lock_wait, lock_waiting=lock_waiting)

    def init_file_sync(
        self, rotate: bool = False, verification: PeerVerification = ONLY_PINNED, peer: str | None = None
    ) -> list[dict[str, Any]]:
        """Set up (or rotate) the file-sync trust with the slave; see :mod:`wazo_ha_core.file_sync`.

        The slave's host key must be pinned first (:meth:`pin_host_keys`) or
        verified as ``verification`` allows; otherwise nothing is sent to it.
        ``peer``: one of :meth:`standby_peers` (N nodes); default the first.
        """
        return file_sync.init_file_sync(self, rotate=rotate, verification=verification, peer=peer)

    def show_host_keys(self) -> list[dict[str, Any]]:
        """On the slave: its identity (sshd host keys) for the master to pin, per file sync plugin."""
        return file_sync.show_host_keys(self)

    def pin_host_keys(self, text: str, replace: bool = False, peer: str | None = None) -> list[dict[str, Any]]:
        """On the master: pin the slave's identity from the text :meth:`show_host_keys` printed there.

        ``peer``: one of :meth:`standby_peers` (N nodes); default the first.
        """
        return file_sync.pin_host_keys(self, text, replace=replace, peer=peer)

    # --- replication --------------------------------------------------------------------

    def copy_back(
        self,
        *,
        dry_run: bool = False,
        progress: ProgressCallback = no_progress,
        lock_wait: float = 0.0,
        lock_waiting: Callable[[str], None] | None = None,
    ):
        """Bring back what the slave recorded while serving; see :mod:`wazo_ha_core.copy_back.run`.

        ``lock_wait``: seconds to wait for another copy-back or a file sync holding its lock.
        """
        from .copy_back.run import copy_back

        return copy_back(self, dry_run=dry_run, progress=progress, lock_wait=lock_wait, lock_waiting=lock_waiting)

    def copy_back_check(self) -> dict[str, Any]:
        """The schedule's check: run the copy-back if one is owed; see :mod:`wazo_ha_core.copy_back.auto`."""
        from .copy_back.auto import check

        return check(self)

    def replicate(
        self,
        *,
        peer: str | None = None,
        force: bool = False,
        progress: ProgressCallback = no_progress,
        discard_slave_changes: bool = False,
        journal_skipped: bool = True,
        lock_wait: float = 0.0,
        lock_waiting: Callable[[str], None] | None = None,
    ) -> list[OperationResult]:
        """Copy the configuration DB to the slave; see :func:`wazo_ha_core.replication.replicate`."""
        return replication.replicate(
            self,
            peer=peer,
            force=force,
            progress=progress,
            discard_slave_changes=discard_slave_changes,
            journal_skipped=journal_skipped,
            lock_wait=lock_wait,
            lock_waiting=lock_waiting,
        )

    def slave_changes(self) -> list[dict[str, Any]]:
        """The slave's configuration edits a replication would overwrite, per backend (``wazo-ha slave-changes``)."""
        from .slave_changes import list_slave_changes

        return list_slave_changes(self)

    def follower(self):
        """The master's follow loop (``wazo-ha follow``); see :mod:`wazo_ha_core.follow`."""
        from .follow import Follower  # watchdog is imported by the long-running command only

        return Follower(self)

    # --- the standby's watch and the services (logic in watcher.py and services.py) -----

    def standby_peers(self) -> list[str]:
        """Where the master copies to: ``remote_address`` (the first standby), then each of ``standbys``."""
        first = self.current_settings().remote_address
        peers = [first] if first else []
        return peers + [peer for peer in self.settings.get("standbys") if peer not in peers]

    def service_control(self) -> ServiceControl:
        return ServiceControl(self.loader.load("service_managers"))

    def watcher(self, master: str | None = None) -> Watcher:
        """The watch over ``master`` (default: ``remote_address`` while this node is a slave).

        With a coordinator other than ``none``, the watch runs on every node and a
        :class:`~wazo_ha_core.coordination.driver.LeaseKeeper` starts and stops telephony under the lock.
        """
        services = self.service_control()
        is_slave = lambda: master is not None or self.current_settings().node_type == "slave"  # noqa: E731
        return Watcher(
            settings=self.settings,
            journal=self.journal,
            state=self.store.plugin_state(STATE_OWNER),
            probes=self.loader.load("health_probes"),
            services=services,
            target=lambda: master or self.current_settings().remote_address or None,
            is_slave=is_slave,
            keeper=self.lease_keeper(services, standby=is_slave()),
        )

    def coordinator(self):
        """The configured coordinator plugin (``none`` by default)."""
        [coordinator] = self.loader.load("coordinators") or [None]
        return coordinator

    def lease_keeper(self, services: ServiceControl, standby: bool):
        """The leader lock's keeper in coordinated mode; ``None`` with the ``none`` coordinator (or none at all)."""
        coordinator = self.coordinator()
        if coordinator is None or not coordinator.coordinated:
            return None
        from .coordination import LeaderGuard
        from .coordination.config import guard_config
        from .coordination.driver import LeaseKeeper
        from .coordination.node import CoordinatedNode

        section = self.settings.get("coordination")
        guard = LeaderGuard(guard_config(section))
        fence = self.fence_control() if section["fence_guard"] else None
        guard.serving = services.is_active()  # running already: stopped unless the lock is ours
        rank = int(section["priority"] or 1) if standby else 0
        return LeaseKeeper(
            node=CoordinatedNode(guard, rank=rank, standby_delay=float(section["standby_delay"])),
            coordinator=coordinator,
            services=services,
            journal=self.journal,
            state=self.store.plugin_state(STATE_OWNER),
            name=coordinator.config.get("node") or section["node"] or _host_name(),
            ttl=float(section["lease_ttl"]),
            interval=min(1.0, float(self.settings.get("watch.interval"))),
            fence=fence,
        )

    def fence_control(self):
        """The keeper's side of the fence guard (:mod:`wazo_ha_core.coordination.fence`)."""
        import sys

        from .coordination.config import guard_deadline
        from .coordination.fence import FenceControl

        command = [sys.executable, "-m", "wazo_ha_core.cli.main"]
        if self.settings.sources:
            command += ["--config", self.settings.sources[0]]
        return FenceControl(
            self.settings.path("run_dir"),
            [*command, "--quiet", "fence-guard"],
            guard_deadline(self.settings.get("coordination")),
        )

    def fence_guard(self):
        """The fence guard's loop for ``wazo-ha fence-guard``: stops this node's telephony when due, journaled."""
        from .coordination.fence import FenceGuard

        services = self.service_control()

        def journal(token: int, late: float) -> None:
            with self.journal.record("guard-fence") as event:
                event.message = f"fence guard stopped telephony: the watch did not renew lease {token} in time"
                event.figures.update(token=token, late=round(late, 2))

        return FenceGuard(
            self.settings.path("run_dir"),
            services.give_back,
            float(self.settings.get("coordination.guard_poll")),
            on_fenced=journal,
        )

    def switch_services(self, take_over: bool) -> dict[str, Any]:
        """Take over (``True``) or give back telephony by hand; journaled as ``services``."""
        control = self.service_control()
        with self.journal.record("services") as event:
            event.message = "take over" if take_over else "give back"
            event.figures.update(control.take_over() if take_over else control.give_back())
            return event.figures

    def pause_watch(self, reason: str = "") -> bool:
        """Stop the watch from acting (it keeps observing); ``False`` if it already was."""
        changed = PauseSwitch(self.store.plugin_state(STATE_OWNER)).pause(reason)
        if changed:
            self.journal.append(Event(kind="pause", started_at=utcnow(), message=reason))
        return changed

    def resume_watch(self) -> bool:
        changed = PauseSwitch(self.store.plugin_state(STATE_OWNER)).resume()
        if changed:
            self.journal.append(Event(kind="resume", started_at=utcnow()))
        return changed

    def watch_status(self) -> dict[str, Any]:
        state = self.store.plugin_state(STATE_OWNER)
        return {"paused": state.get("paused"), "last": state.get("status")}

    # --- planned switchover (logic in switchover.py) ------------------------------------

    def switchover(self, *, force: bool = False, timeout: float | None = None, say=None) -> dict[str, Any]:
        """Move telephony to the slave through its watch; see :func:`wazo_ha_core.switchover.switchover`."""
        from . import switchover

        return switchover.switchover(self, force=force, timeout=timeout, **({"say": say} if say else {}))

    def switchback(self, *, force: bool = False, timeout: float | None = None, say=None) -> dict[str, Any]:
        """Bring telephony back from the slave; see :func:`wazo_ha_core.switchover.switchback`."""
        from . import switchover

        return switchover.switchback(self, force=force, timeout=timeout, **({"say": say} if say else {}))

    # --- doctor -------------------------------------------------------------------------

    def doctor(self, planned: HASettings | None = None) -> list[Any]:
        """Every prerequisite checked, as :class:`~wazo_ha_core.doctor.CheckReport` objects.

        ``planned``: check for these settings instead of those in force (``doctor --as ROLE --peer ADDRESS``,
        before enabling); validated like an edit (:class:`~wazo_ha_core.errors.ValidationError`).
        """
        from .doctor_checks import run_doctor  # imports the schedules and the config DB only when asked

        if planned is not None:
            planned = validate_ha_body(planned.as_dict(), self.local_addresses())
        return run_doctor(self, planned)

    # --- status -----------------------------------------------------------------------

    def status(self, limit: int | None = None) -> dict[str, Any]:
        """``wazo-ha status`` (see :mod:`.status`), read from the store; in coordinated mode one bounded
        etcd read too (:mod:`.coordination.status`)."""
        from .coordination.status import coordination_status
        from .status import status_report  # role, master as seen, services, last operations, pause

        ha = self.current_settings()
        limit = limit or int(self.settings.get("history.default_limit"))
        report = status_report(self.store, ha, self.service_control, self.store.describe(), limit)
        return {**report, "coordination": coordination_status(self)}


def _host_name() -> str:
    import socket

    return socket.gethostname().split(".")[0]
