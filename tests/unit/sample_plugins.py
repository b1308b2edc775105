"""In-memory plugins for the unit tests: one well-behaved class per extension point,
plus broken ones that the loader must refuse with a clear message."""

from __future__ import annotations

from wazo_ha_core import (
    DeviceProvisioner,
    FileSyncBackend,
    HealthProbe,
    OperationResult,
    PluginError,
    ProbeAnswer,
    ReplicationBackend,
    ServiceManager,
    ServiceState,
)

CALLS: list[tuple[str, str, tuple]] = []  # (plugin name, method, args), shared by every instance


class RecordingReplication(ReplicationBackend):
    def replicate(self, peer, *, force=False, progress=None):
        CALLS.append((self.name, "replicate", (peer, force)))
        return OperationResult("copied", figures={"tables": 1})


class RecordingFileSync(FileSyncBackend):
    def init(self, peer, *, rotate=False, verification=None):
        CALLS.append((self.name, "init", (peer, rotate)))
        return OperationResult("ok")

    def sync(self, peer, paths, *, progress=None):
        CALLS.append((self.name, "sync", (peer, tuple(paths))))
        return OperationResult("synced")

    def trust_files(self, role):
        """One file per role under ``trust/`` in the sandbox: ``<role>.key``."""
        return [self.context.settings.resolve(f"/trust/{role}.key")]

    def forget_trust(self, role, peer):
        CALLS.append((self.name, "forget_trust", (role, peer)))
        [path] = self.trust_files(role)
        if not path.exists():
            return []
        path.unlink()
        return [str(path)]


class AlwaysUpProbe(HealthProbe):
    def probe(self, target):
        return ProbeAnswer(up=True, latency=0.001)


class RecordingProvisioner(DeviceProvisioner):
    """Keeps 'phone configs' in its plugin state; fails on demand (config key ``fail_on``)."""

    default_config = {"fail_on": None}

    def enable_backup(self, backup_address):
        CALLS.append((self.name, "enable_backup", (backup_address,)))
        if self.config["fail_on"] == "enable_backup":
            raise PluginError("provd refused the change (test)")
        if self.context.state.get("previous") is None:
            self.context.state.set("previous", self.context.state.get("backup", ""))
        self.context.state.set("backup", backup_address)

    def disable_backup(self):
        CALLS.append((self.name, "disable_backup", ()))
        if self.config["fail_on"] == "disable_backup":
            raise PluginError("provd refused the change (test)")
        previous = self.context.state.get("previous")
        if previous is not None:
            self.context.state.set("backup", previous)
            self.context.state.delete("previous")


class RecordingServices(ServiceManager):
    def start(self):
        CALLS.append((self.name, "start", ()))

    def stop(self):
        CALLS.append((self.name, "stop", ()))

    def status(self):
        return ServiceState(active=None)


class ServingServices(ServiceManager):
    """Telephony as a flag in its plugin state: started means active; counts ``calls`` from its config."""

    default_config = {"calls": 0, "fail_stop": False}

    def start(self):
        CALLS.append((self.name, "start", ()))
        self.context.state.set("active", True)

    def stop(self):
        CALLS.append((self.name, "stop", ()))
        if self.config["fail_stop"]:
            raise PluginError("wazo-service stop failed: exit 1 (test)")
        self.context.state.set("active", False)

    def status(self):
        return ServiceState(active=bool(self.context.state.get("active")))

    def active_calls(self):
        return self.config["calls"] if self.context.state.get("active") else 0


class HalfDoneServices(ServiceManager):
    """Forgets to implement stop() and status(): the loader must refuse it."""

    def start(self):
        pass


class NotAPlugin:
    pass


class ExplodingConstructor(RecordingServices):
    def __init__(self, context):
        raise RuntimeError("cannot find /etc/bnfos.conf (test)")


#: What the scripted peer does (tests/unit/test_copy_back_auto.py): answers its probes, and how copy-back ends.
PEER = {"host": True, "sip": False, "copy_back": []}


class ScriptedHostProbe(HealthProbe):
    checks = "host"

    def probe(self, target):
        return ProbeAnswer(up=PEER["host"], reason="" if PEER["host"] else "timeout")


class ScriptedSipProbe(HealthProbe):
    checks = "service"

    def probe(self, target):
        return ProbeAnswer(up=PEER["sip"], reason="" if PEER["sip"] else "timeout")


class ScriptedCopyBackRows(ReplicationBackend):
    """copy_back_rows pops the next of PEER["copy_back"]: an exception to raise or a row count."""

    def replicate(self, peer, *, force=False, progress=None):
        return OperationResult("copied")

    def copy_back_rows(self, peer, *, dry_run=False, progress=None):
        CALLS.append((self.name, "copy_back_rows", (peer, dry_run)))
        outcome = PEER["copy_back"].pop(0) if PEER["copy_back"] else 0
        if isinstance(outcome, Exception):
            raise outcome
        return OperationResult("copied", figures={"rows_cel": outcome})
