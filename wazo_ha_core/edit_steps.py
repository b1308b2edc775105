"""The side effects of an HA settings edit, one :class:`EditStep` each.

The engine runs them in this order: device provisioners, the core steps of
other modules (SIP expiry, replication, pg_hba, schedules), the file-sync
trust, compatibility files, then the store (the commit point: if writing the
store fails, the files and the provisioners are put back). See
:meth:`wazo_ha_core.engine.HAEngine.edit_steps`.
"""

from __future__ import annotations

import logging

from .compat import CompatFiles, FileSnapshot
from .config import HASettings
from .edit import EditStep
from .extensions import DeviceProvisioner, FileSyncBackend
from .journal import Event, utcnow
from .managed_files import ExactSnapshot

log = logging.getLogger(__name__)


class ProvisionerStep(EditStep):
    """Master: phones get the peer as backup registrar. Leaving master (not as a slave): restored."""

    def __init__(self, provisioner: DeviceProvisioner):
        self.provisioner = provisioner
        self.name = f"device provisioner {provisioner.name}"
        self.changed = False

    def apply(self, before: HASettings, after: HASettings) -> None:
        if after.node_type == "master" and after != before:
            self.provisioner.enable_backup(after.remote_address)
            self.changed = True
            log.info("%s: phones get %s as their backup registrar", self.name, after.remote_address)
        elif after.node_type == "disabled" and before.node_type == "master":
            self.provisioner.disable_backup()
            self.changed = True
            log.info("%s: phones' backup registrar put back as before HA", self.name)

    def undo(self, before: HASettings, after: HASettings) -> None:
        if not self.changed:
            return
        if before.node_type == "master":
            self.provisioner.enable_backup(before.remote_address)
        else:
            self.provisioner.disable_backup()


def left_role(before: HASettings, after: HASettings) -> str | None:
    """The role (``"master"`` or ``"slave"``) this edit takes the node out of, if any.

    Disabling, and switching master ↔ slave, both leave a role: a node that
    becomes master must no longer accept files pushed by its former master, and
    a node that becomes slave must no longer hold a key that writes to its
    former slave. A new ``remote_address`` in the same role leaves nothing: the
    key stays bound to its ``from=`` address and the host key to its pinned
    address, and the new peer needs ``wazo-ha sync init`` anyway.
    """
    if before.node_type in ("master", "slave") and after.node_type != before.node_type:
        return before.node_type
    return None


class FileSyncTrustStep(EditStep):
    """Leaving master or slave: the file-sync plugin forgets its side of the trust, undone exactly."""

    def __init__(self, backend: FileSyncBackend):
        self.backend = backend
        self.name = f"file sync trust {backend.name}"
        self.snapshots: list[ExactSnapshot] = []

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.snapshots = []
        role = left_role(before, after)
        if role is None:
            return
        self.snapshots = [ExactSnapshot.take(path) for path in self.backend.trust_files(role)]
        removed = self.backend.forget_trust(role, before.remote_address or None)
        if removed:
            log.info("file sync %s: left the %s role, removed %s", self.backend.name, role, "; ".join(removed))

    def undo(self, before: HASettings, after: HASettings) -> None:
        for snapshot in reversed(self.snapshots):
            snapshot.restore()


def leaves_slave_role(before: HASettings, after: HASettings) -> bool:
    """Whether the edit takes the node out of the slave role (to disabled or master)."""
    return before.node_type == "slave" and after.node_type != "slave"


class TelephonyHandBackStep(EditStep):
    """A forced edit of a slave that serves: telephony handed back (stopped here) before the role changes.

    Undone by taking over again, so a failed edit leaves the node serving as it was.
    """

    name = "telephony hand-back"

    def __init__(self, services):
        self.services = services  # a ServiceControl
        self.handed_back = False

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.handed_back = False
        if not (leaves_slave_role(before, after) and self.services.is_active()):
            return
        try:
            figures = self.services.give_back()
        except Exception:
            # Some managers may have stopped: start them again, so a refused hand-back changes nothing.
            try:
                self.services.take_over()
            except Exception as exc:  # the give-back error matters more
                log.error("telephony hand-back failed and taking over again failed too: %s", exc)
            raise
        self.handed_back = True
        log.info("telephony hand-back: %s stopped here before leaving the slave role", ", ".join(figures["managers"]))

    def undo(self, before: HASettings, after: HASettings) -> None:
        if self.handed_back:
            self.services.take_over()


class CompatFilesStep(EditStep):
    """``ha.conf`` and the role sentinels, as the rest of Wazo expects them."""

    name = "compatibility files"

    def __init__(self, files: CompatFiles):
        self.files = files
        self.snapshots: list[FileSnapshot] = []

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.snapshots = self.files.snapshot()
        self.files.write(after)
        sentinel = {"master": self.files.primary_sentinel, "slave": self.files.secondary_sentinel}.get(after.node_type)
        log.info(
            "compatibility files: %s says %s %s; role sentinel %s",
            self.files.ha_conf,
            after.node_type,
            after.remote_address or "-",
            sentinel or "none",
        )

    def undo(self, before: HASettings, after: HASettings) -> None:
        for snapshot in self.snapshots:
            snapshot.restore()


class StoreStep(EditStep):
    """The commit point: the new settings and the edit's journal event, in one transaction."""

    name = "state store"

    def __init__(self, store, event: Event):
        self.store = store
        self.event = event

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.event.ended_at = utcnow()
        self.store.write_ha_settings(after, self.event)
        log.info("state store: HA settings %s written with the edit's journal event", after.as_dict())

    def undo(self, before: HASettings, after: HASettings) -> None:
        # Last step: it is only undone if it succeeded, which never happens.
        pass
