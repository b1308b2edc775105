"""Device resynchronisation: every enabled provisioner asks its phones to fetch their configuration.

Phones must be resynchronised after HA is enabled so that they learn the
backup registrar (Wazo's documentation asks for it by hand today). The work is
the provisioner plugin's (``DeviceProvisioner.resync_devices``); this module
journals it and sums the results.
"""

from __future__ import annotations

from .errors import UnsupportedOperation
from .extensions import OperationResult, ProgressCallback, no_progress

NO_PROVISIONER = "no provisioner configured (plugins.device_provisioners is empty): nothing to resync"


def resync_devices(engine, *, all_devices: bool = False, progress: ProgressCallback = no_progress) -> OperationResult:
    """Resynchronise through each provisioner; failures per device are in ``warnings``.

    With no provisioner enabled it is a no-op: outcome ``skipped``, message :data:`NO_PROVISIONER`, nothing
    journaled. A provisioner that cannot be reached raises its :class:`PluginError`.
    """
    provisioners = engine.loader.load("device_provisioners")
    if not provisioners:
        # Nothing to ask: a no-op, not a failure (a script resyncing after every enable must not break on a
        # node that manages its phones by hand). Not journaled: nothing happened.
        return OperationResult(
            "skipped",
            message=NO_PROVISIONER,
            figures={"devices": 0, "failed": 0, "provisioners": 0},
        )
    with engine.journal.record("resync") as event:
        total = OperationResult("synced", figures={"devices": 0, "failed": 0})
        for provisioner in provisioners:
            try:
                result = provisioner.resync_devices(all_devices=all_devices, progress=progress)
            except UnsupportedOperation as exc:
                total.warnings.append(str(exc))
                continue
            total.figures["devices"] += int(result.figures.get("devices", 0))
            total.figures["failed"] += int(result.figures.get("failed", 0))
            total.warnings += result.warnings
        devices, failed = total.figures["devices"], total.figures["failed"]
        total.message = f"{devices - failed} of {devices} device(s) resynchronised"
        if devices == 0:
            total.outcome = "skipped"
        event.figures = {**total.figures, "all": all_devices}
        event.message = total.message
        if failed:
            event.outcome = "failed"
    return total
