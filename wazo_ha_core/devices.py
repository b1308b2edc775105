"""Device resynchronisation: every enabled provisioner asks its phones to fetch their configuration.

Phones must be resynchronised after HA is enabled so that they learn the
backup registrar (Wazo's documentation asks for it by hand today). The work is
the provisioner plugin's (``DeviceProvisioner.resync_devices``); this module
journals it and sums the results.
"""

from __future__ import annotations

from .errors import UnsupportedOperation, WazoHAError
from .extensions import OperationResult, ProgressCallback, no_progress


def resync_devices(engine, *, all_devices: bool = False, progress: ProgressCallback = no_progress) -> OperationResult:
    """Resynchronise through each provisioner; failures per device are in ``warnings``."""
    provisioners = engine.loader.load("device_provisioners")
    if not provisioners:
        raise WazoHAError("no device provisioner enabled (settings plugins.device_provisioners)")
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
