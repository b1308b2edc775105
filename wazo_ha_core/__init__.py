"""wazo-ha: high availability for Wazo — the core engine.

For wazo-confd (``GET/PUT /ha``)::

    from wazo_ha_core import HAEngine, ValidationError

    engine = HAEngine.from_config()        # /etc/wazo-ha/config.yml
    engine.get_ha()                        # {"node_type": "master", "remote_address": "10.0.0.2"}
    engine.update_ha(body)                 # raises ValidationError (HTTP 400) with .errors

Plugin authors import the extension points and errors from here too.
"""

from .config import HASettings
from .doctor import Check, CheckResult, FunctionCheck, TcpCheck
from .engine import HAEngine
from .errors import (
    AlreadyRunning,
    EditError,
    EditStepError,
    NotInitialised,
    PeerUnreachable,
    PluginError,
    PluginLoadError,
    PluginTimeout,
    PreflightError,
    ServiceSwitchError,
    SettingsError,
    StoreError,
    StoreNotMigrated,
    UnsupportedOperation,
    ValidationError,
    WazoHAError,
)
from .extensions import (
    DeviceProvisioner,
    FileSyncBackend,
    HealthProbe,
    OperationResult,
    PeerVerification,
    Plugin,
    PluginContext,
    ProbeAnswer,
    ProgressCallback,
    ReplicationBackend,
    ServiceManager,
    ServiceState,
    no_progress,
)
from .settings import Settings

__version__ = "0.1.0"


def get_ha(config_file: str | None = None) -> dict[str, str]:
    """The current HA settings, ``{"node_type": …, "remote_address": …}``."""
    return HAEngine.from_config(config_file).get_ha()


def update_ha(body: dict, config_file: str | None = None) -> None:
    """Validate and apply an HA settings body; raises :class:`ValidationError` on bad input."""
    HAEngine.from_config(config_file).update_ha(body)


__all__ = [
    "AlreadyRunning",
    "Check",
    "CheckResult",
    "DeviceProvisioner",
    "EditError",
    "EditStepError",
    "FileSyncBackend",
    "FunctionCheck",
    "HAEngine",
    "HASettings",
    "HealthProbe",
    "NotInitialised",
    "OperationResult",
    "PeerUnreachable",
    "PeerVerification",
    "Plugin",
    "PluginContext",
    "PluginError",
    "PluginLoadError",
    "PluginTimeout",
    "PreflightError",
    "ProbeAnswer",
    "ProgressCallback",
    "ReplicationBackend",
    "ServiceManager",
    "ServiceState",
    "ServiceSwitchError",
    "Settings",
    "SettingsError",
    "StoreError",
    "StoreNotMigrated",
    "TcpCheck",
    "UnsupportedOperation",
    "ValidationError",
    "WazoHAError",
    "get_ha",
    "no_progress",
    "update_ha",
]
