"""The exceptions the library raises, one family per audience.

Everything derives from :class:`WazoHAError`, so an embedding application
(wazo-confd) can catch one class. The CLI maps them to exit codes:
:class:`ValidationError` and :class:`SettingsError` are the caller's mistake
(exit 2), everything else is an operation that failed (exit 1).
"""

from __future__ import annotations


class WazoHAError(Exception):
    """Base class of every error this library raises on purpose."""


class ValidationError(WazoHAError):
    """An HA settings body was rejected; nothing was changed.

    ``errors`` maps each bad field to a message that names the value.
    """

    def __init__(self, errors: dict[str, str]):
        self.errors = dict(errors)
        detail = "; ".join(f"{field}: {message}" for field, message in sorted(self.errors.items()))
        super().__init__(f"invalid HA settings: {detail}")


class SettingsError(WazoHAError):
    """The library's settings file is unreadable or holds a bad value."""

    def __init__(self, source: str, key: str | None, reason: str):
        self.source = source
        self.key = key
        self.reason = reason
        where = f"{source}: {key}" if key else source
        super().__init__(f"{where}: {reason}")


class StoreError(WazoHAError):
    """The state store cannot be reached or used."""


class StoreNotMigrated(StoreError):
    """The state store exists but its schema is not at the shipped revision."""


class EditError(WazoHAError):
    """An HA settings edit failed half-way; the steps already done were undone.

    ``step`` names the step that failed; ``undo_failures`` lists the steps whose
    undo failed too (the operator must look at those by hand).
    """

    def __init__(self, step: str, cause: BaseException, undo_failures: list[str] | None = None):
        self.step = step
        self.cause = cause
        self.undo_failures = list(undo_failures or [])
        message = f"HA edit failed at step {step!r}: {cause}"
        if self.undo_failures:
            message += "; undo ALSO failed for: " + ", ".join(self.undo_failures)
        else:
            message += "; every earlier step was undone"
        super().__init__(message)


class EditStepError(WazoHAError):
    """A core edit step (SIP expiry, slave database access, schedules…) could not do its job.

    The message names what failed and how to fix it; the edit is undone.
    """


class ServiceSwitchError(WazoHAError):
    """Taking over or giving back telephony failed in at least one service manager.

    ``failures`` maps each failing manager to its error; the others did their part.
    """

    def __init__(self, action: str, failures: dict[str, str]):
        self.action = action
        self.failures = dict(failures)
        detail = "; ".join(f"{name}: {message}" for name, message in self.failures.items())
        super().__init__(f"{action} failed: {detail}")


class PluginError(WazoHAError):
    """Raised by a plugin when its job cannot be done.

    The message must let an operator act (what failed, against what, and the
    likely fix). Plugins raise one of the subclasses below when one fits.
    """


class PluginLoadError(PluginError):
    """A configured plugin is missing, fails to import or breaks its contract."""

    def __init__(self, namespace: str, name: str, cause: str):
        self.namespace = namespace
        self.name = name
        self.cause = cause
        super().__init__(f"plugin {name!r} in namespace {namespace!r}: {cause}")


class PluginTimeout(PluginError):
    """A network call or a command did not finish within its time limit."""


class PeerUnreachable(PluginError):
    """The other node could not be reached at all."""


class PreflightError(PluginError):
    """A precondition was not met; nothing was changed."""


class NotInitialised(PreflightError):
    """The one-time set-up (e.g. ``wazo-ha sync init``) has not been done; nothing was changed."""


class ServingTelephony(PreflightError):
    """The edit would take a slave that serves telephony out of its role; nothing was changed.

    Refused unless forced (``wazo-ha config set … --force``), which hands
    telephony back before the role changes.
    """


class SlaveChangesPending(PreflightError):
    """The slave's configuration was edited since the last good copy: a replication would overwrite the edits.

    Nothing was changed. The operator decides: ``wazo-ha slave-changes show``
    / ``export FILE`` (replayed on the master keeps them), or
    ``wazo-ha replicate --discard-slave-changes`` (overwrites them).
    ``tables`` names the tables that differ.
    """

    def __init__(self, message: str, tables: list[str] | None = None):
        super().__init__(message)
        self.tables = list(tables or [])


class AlreadyRunning(PluginError):
    """Another run of the same operation holds the lock."""


class UnsupportedOperation(PluginError):
    """The plugin does not offer this optional operation."""


class CoordinatorUnavailable(PluginError):
    """The coordination backend (e.g. the etcd majority) did not answer within the coordinator's time bound.

    Whoever holds a lease must then assume it may lose it at its expiry.
    """
