"""The side effects of an HA settings edit, one :class:`EditStep` each.

The engine runs them in this order: device provisioners, compatibility
files, then the store (the commit point: if writing the store fails, the
files and the provisioners are put back).
"""

from __future__ import annotations

from .compat import CompatFiles, FileSnapshot
from .config import HASettings
from .edit import EditStep
from .extensions import DeviceProvisioner
from .journal import Event, utcnow


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
        elif after.node_type == "disabled" and before.node_type == "master":
            self.provisioner.disable_backup()
            self.changed = True

    def undo(self, before: HASettings, after: HASettings) -> None:
        if not self.changed:
            return
        if before.node_type == "master":
            self.provisioner.enable_backup(before.remote_address)
        else:
            self.provisioner.disable_backup()


class CompatFilesStep(EditStep):
    """``ha.conf`` and the role sentinels, as the rest of Wazo expects them."""

    name = "compatibility files"

    def __init__(self, files: CompatFiles):
        self.files = files
        self.snapshots: list[FileSnapshot] = []

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.snapshots = self.files.snapshot()
        self.files.write(after)

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

    def undo(self, before: HASettings, after: HASettings) -> None:
        # Last step: it is only undone if it succeeded, which never happens.
        pass
