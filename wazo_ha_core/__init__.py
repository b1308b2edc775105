"""wazo-ha: high availability for Wazo — the core engine.

For wazo-confd (``GET/PUT /ha``)::

    from wazo_ha_core import HAEngine, ValidationError

    engine = HAEngine.from_config()        # /etc/wazo-ha/config.yml
    engine.get_ha()                        # {"node_type": "master", "remote_address": "10.0.0.2"}
    engine.update_ha(body)                 # raises ValidationError (HTTP 400) with .errors

Plugin authors import the extension points and errors from here too.
"""

import importlib

# The errors import nothing: cheap enough to load with the package.
from .errors import (
    AlreadyRunning,
    CoordinatorUnavailable,
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
    SlaveChangesPending,
    StoreError,
    StoreNotMigrated,
    UnsupportedOperation,
    ValidationError,
    WazoHAError,
)

__version__ = "0.1.0"

#: Public name -> the submodule defining it. Imported on first access (PEP 562), so that
#: ``import wazo_ha_core`` (every plugin, every CLI command) costs nothing it does not use:
#: the engine pulls in SQLAlchemy, the settings PyYAML, the doctor a thread pool.
_LAZY_NAMES = {
    "HASettings": "config",
    "Check": "doctor",
    "CheckResult": "doctor",
    "FunctionCheck": "doctor",
    "TcpCheck": "doctor",
    "HAEngine": "engine",
    "Settings": "settings",
    **dict.fromkeys(
        (
            "Coordinator",
            "DeviceProvisioner",
            "FileSyncBackend",
            "HealthProbe",
            "Lease",
            "LockHolder",
            "OperationResult",
            "PeerVerification",
            "Plugin",
            "PluginContext",
            "ProbeAnswer",
            "ProgressCallback",
            "ReplicationBackend",
            "ServiceManager",
            "ServiceState",
            "no_progress",
        ),
        "extensions",
    ),
}

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:
    from .config import HASettings
    from .doctor import Check, CheckResult, FunctionCheck, TcpCheck
    from .engine import HAEngine
    from .extensions import (
        Coordinator,
        DeviceProvisioner,
        FileSyncBackend,
        HealthProbe,
        Lease,
        LockHolder,
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


def __getattr__(name: str):
    module = _LAZY_NAMES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later accesses are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY_NAMES})


def get_ha(config_file: str | None = None) -> dict[str, str]:
    """The current HA settings, ``{"node_type": …, "remote_address": …}``."""
    from .engine import HAEngine

    return HAEngine.from_config(config_file).get_ha()


def update_ha(body: dict, config_file: str | None = None) -> None:
    """Validate and apply an HA settings body; raises :class:`ValidationError` on bad input."""
    from .engine import HAEngine

    HAEngine.from_config(config_file).update_ha(body)


__all__ = [
    "AlreadyRunning",
    "Check",
    "CheckResult",
    "Coordinator",
    "CoordinatorUnavailable",
    "DeviceProvisioner",
    "EditError",
    "EditStepError",
    "FileSyncBackend",
    "FunctionCheck",
    "HAEngine",
    "HASettings",
    "HealthProbe",
    "Lease",
    "LockHolder",
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
    "SlaveChangesPending",
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
