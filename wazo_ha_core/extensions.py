"""The six extension points: what a plugin promises and what the engine does with it.

A plugin is a class registered under one of the entry-point namespaces in
:data:`wazo_ha_core.settings.PLUGIN_NAMESPACES`, subclassing one of the
abstract classes below. The engine builds it with a :class:`PluginContext`
(its name, its own settings section, the library settings, a logger and a
small persistent key/value state) and then only calls the methods documented
here.

Rules that hold for every method unless its docstring says otherwise:

* **Idempotence.** Calling a state-changing method twice in a row leaves
  things as the first call did and the second call changes nothing.
* **Time.** Every network call and every external command is bounded by a
  timeout taken from settings (``timeouts.connect``, ``timeouts.command`` or
  the plugin's own section). Nothing blocks forever.
* **Errors.** A plugin raises :class:`~wazo_ha_core.errors.PluginError` (or
  a subclass) with a message an operator can act on. Any other exception is
  a bug in the plugin; the engine treats it like a ``PluginError`` but logs
  the traceback.
* **Secrets.** Passwords and keys never appear on a command line, in a log
  line, in an exception message or in a world-readable file.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UnsupportedOperation

if TYPE_CHECKING:
    from .doctor import Check
    from .settings import Settings

#: ``progress(message, figures)``: plugins report progress through this; the
#: CLI shows it on a terminal and drops it otherwise.
ProgressCallback = Callable[[str, dict[str, Any]], None]


def no_progress(message: str, figures: dict[str, Any]) -> None:
    """The progress callback used when nobody is watching."""


class PluginState(abc.ABC):
    """A plugin's small persistent memory, kept in the state store.

    Values are JSON-serialisable. ``set`` is durable when it returns.
    """

    @abc.abstractmethod
    def get(self, key: str, default: Any = None) -> Any: ...

    @abc.abstractmethod
    def set(self, key: str, value: Any) -> None: ...

    @abc.abstractmethod
    def delete(self, key: str) -> None: ...


@dataclass
class PluginContext:
    """Everything a plugin is given when the engine builds it."""

    name: str
    namespace: str
    config: dict[str, Any]
    settings: Settings
    state: PluginState
    log: logging.Logger


class Plugin:
    """Common base: keeps the context; merges the plugin's defaults into its config.

    A plugin declares the keys of its settings section and their defaults in
    ``default_config``; the operator's ``plugin_config.<name>`` is merged over
    them.
    """

    default_config: dict[str, Any] = {}

    def __init__(self, context: PluginContext):
        self.context = context
        self.config = {**self.default_config, **context.config}
        self.log = context.log

    @property
    def name(self) -> str:
        return self.context.name

    def doctor_checks(self, node_type: str, peer: str | None, preflight: bool = False) -> list[Check]:
        """Optional: this plugin's own prerequisites, for ``wazo-ha doctor``.

        ``preflight`` is true before enabling (``wazo-ha doctor --as ROLE --peer ADDRESS``):
        a check that can only pass once HA is enabled on this node or on the
        peer (the slave's PostgreSQL opened to the master, the sync key made
        by ``sync init``) then returns a WARN saying when to run the doctor
        again, not a FAIL. A plugin whose method has no ``preflight``
        parameter is called without it (its checks are the same either way).

        Called on every loaded plugin with this node's role (``"master"`` or
        ``"slave"``; never called while HA is disabled) and the peer's address
        (``remote_address``, ``None`` when unknown). Returns
        :class:`~wazo_ha_core.doctor.Check` objects; it must not do I/O itself
        (the doctor runs the checks concurrently, each bounded by
        ``doctor.check_timeout``). Each check's ``run()`` has no side effects,
        bounds its network calls with ``timeouts.connect`` and returns a
        :class:`~wazo_ha_core.doctor.CheckResult` (PASS, WARN or FAIL with the
        fix an operator should apply) rather than raising. Check names are
        shown prefixed with the plugin's name. Default: no checks.
        """
        return []


# --- results -----------------------------------------------------------------


@dataclass
class OperationResult:
    """What a replication or a sync did.

    ``outcome`` is ``"copied"`` / ``"synced"`` when data moved, ``"skipped"``
    when there was nothing to do; failures are exceptions, not outcomes.
    ``figures`` are counts for the journal and metrics (``tables``, ``rows``,
    ``bytes``, ``files``...).
    """

    outcome: str
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ProbeAnswer:
    """One health probe's answer: is the target serving?

    ``latency`` is in seconds (``None`` when there was no answer);
    ``reason`` says why it is down ("timeout", "connection refused"...).
    """

    up: bool
    latency: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class ServiceState:
    """Whether a service manager's services are taken over on this node.

    ``active`` is ``None`` when it cannot tell; ``detail`` is for humans.
    """

    active: bool | None
    detail: str = ""


# --- the extension points ----------------------------------------------------


class ReplicationBackend(Plugin, abc.ABC):
    """Copies the configuration database from this node (master) to the peer (slave).

    Namespace ``wazo_ha.replication``; default plugin ``pg_dump``.
    """

    @abc.abstractmethod
    def replicate(self, peer: str, *, force: bool = False, progress: ProgressCallback = no_progress) -> OperationResult:
        """Make the peer's replicated data equal to this node's.

        * **Atomic**: when this returns or raises, for whatever reason (peer
          died, link cut, this process killed), the peer holds either its
          previous data or the new copy in full, never a mixture.
        * **Skips** the copy when nothing replicated changed since the last
          good copy, unless ``force``; returns ``outcome="skipped"`` then.
        * **Time**: connecting is bounded by ``timeouts.connect``; the whole
          run by the plugin's own limit.
        * **Raises** :class:`~wazo_ha_core.errors.PreflightError` when a
          precondition fails (nothing changed),
          :class:`~wazo_ha_core.errors.PeerUnreachable`,
          :class:`~wazo_ha_core.errors.AlreadyRunning` when another run holds
          the lock, :class:`~wazo_ha_core.errors.PluginError` otherwise.

        On failure the engine journals it, reports a non-zero exit and notifies.

        **Slave-side edits**: a backend that can tell raises
        :class:`~wazo_ha_core.errors.SlaveChangesPending` (nothing changed)
        when the peer's data was edited since the last good copy beyond what a
        failover explains. The engine passes ``discard_slave_changes=True``
        (only then, so backends without the keyword keep working) when the
        operator chose to overwrite them.
        """

    def slave_changes(self, peer: str) -> dict[str, Any]:
        """Optional: what the peer holds that a copy would overwrite (``wazo-ha slave-changes``).

        Returns ``{"method": text, "tables": [{"table", "key", "added",
        "changed", "removed"}], "sql": text}``: per table, rows only the
        peer has, rows whose values differ (``{"key", "columns": {column:
        [this node's value, the peer's value]}}``), rows only this node has;
        values as text (``None`` for NULL). ``sql`` replays the peer's
        version on this node. Reads only; bounded like :meth:`replicate`.
        Raises :class:`~wazo_ha_core.errors.UnsupportedOperation` by default.
        """
        raise UnsupportedOperation(f"replication plugin {self.name!r} cannot list slave-side changes")

    def copy_back_rows(
        self, peer: str, *, dry_run: bool = False, progress: ProgressCallback = no_progress
    ) -> OperationResult:
        """Optional, on the master: append the history rows the peer (slave) wrote while serving; exactly once.

        The history tables that replication excludes and a serving node writes
        (``cel``, ``queue_log``) are read on the peer and appended to this
        node's, with new ids; an interrupted run rerun neither loses nor
        duplicates a row. **This node pulls**: nothing gives the peer access
        here. ``dry_run`` counts and writes nothing. Figures: ``rows_<table>``.
        Time-bounded like :meth:`replicate`. Raises
        :class:`~wazo_ha_core.errors.PluginError` (rows already committed stay).
        """
        raise UnsupportedOperation(f"the {self.name} replication plugin cannot copy rows back")

    def change_signal(self) -> ChangeSignal | None:
        """For ``wazo-ha follow``: a cheap reading that moves when the replicated data may have changed.

        Called every ``follow.poll_interval`` seconds on the master, so it must
        cost a single short query (no scan of the data); it may keep a
        connection open between calls. ``None`` (the default): this backend
        has no such signal and follow mode leaves it to the schedule.

        * **Time**: bounded by ``timeouts.connect`` to connect and by the
          plugin's own limit per call.
        * **Raises** :class:`~wazo_ha_core.errors.PluginError` when the reading
          fails; the follower logs it and reads again later.
        """
        return None

    def close_change_signal(self) -> None:
        """Release what :meth:`change_signal` keeps open (a connection); idempotent."""


@dataclass(frozen=True)
class ChangeSignal:
    """Two readings of the master's database, compared with the previous ones by the follower.

    ``tables`` moves when a replicated table was written, but may lag the
    write by up to ``lag`` seconds (e.g. statistics flushed lazily).
    ``any_write`` moves at once on any write of the database or cluster,
    replicated or not (including the journal of this library, when the
    store lives there). A moved ``tables`` triggers a run at once; a moved
    ``any_write`` alone triggers one when ``tables`` has not caught up
    within ``lag`` seconds, so a lagging ``tables`` delays a run but
    never loses it. A false alarm costs only a run that ends ``skipped``.
    """

    tables: Any
    any_write: Any
    lag: float = 0.0


@dataclass(frozen=True)
class PeerVerification:
    """How :meth:`FileSyncBackend.init` may trust a peer identity (a host key) nothing has pinned yet.

    With none of these set, an unpinned identity is refused before any
    secret is sent. A pinned identity is always checked and never replaced
    by these.

    ``fingerprint``: what the operator read on the peer (e.g. ``SHA256:…``);
    the identity presented must match it. ``accept_new``: trust it
    unverified, an explicit choice the plugin logs and reports as a warning.
    ``confirm``: asks the operator a yes/no question (the text shows what
    the peer presents) on a terminal; ``None`` when there is no terminal.
    """

    fingerprint: str | None = None
    accept_new: bool = False
    confirm: Callable[[str], bool] | None = None


#: The default: only a pinned identity is trusted.
ONLY_PINNED = PeerVerification()


class FileSyncBackend(Plugin, abc.ABC):
    """Mirrors directories from this node (master) to the peer (slave).

    Namespace ``wazo_ha.file_sync``; default plugin ``rsync``.
    """

    @abc.abstractmethod
    def init(self, peer: str, *, rotate: bool = False, verification: PeerVerification = ONLY_PINNED) -> OperationResult:
        """Set up the trust that later syncs use (keys, host key pinning).

        Idempotent: a second call adds nothing. ``rotate`` replaces the
        credentials on both sides. Any secret asked for (a password) is read
        from a terminal, a file or the environment, never from arguments, and
        is sent only to a peer whose identity is pinned or verified as
        ``verification`` allows; otherwise it refuses before authenticating.
        Raises :class:`~wazo_ha_core.errors.PluginError`.
        """

    def show_host_keys(self) -> str:
        """Optional, on the slave: this node's identity as text the master can pin (``sync host-key show``)."""
        raise UnsupportedOperation(f"the {self.name} file sync plugin has no host key to show")

    def pin_host_keys(self, peer: str, text: str, *, replace: bool = False) -> OperationResult:
        """Optional, on the master: pin ``peer``'s identity from ``show_host_keys``'s text, before ``init``.

        Bad text is refused whole with nothing changed. An identity that
        differs from the one already pinned is refused unless ``replace``.
        """
        raise UnsupportedOperation(f"the {self.name} file sync plugin has no host key to pin")

    @abc.abstractmethod
    def sync(self, peer: str, paths: Sequence[str], *, progress: ProgressCallback = no_progress) -> OperationResult:
        """Make each of ``paths`` (absolute node paths) on the peer a mirror of ours.

        The engine may pass ``by_content=[path, ...]`` (only when not empty): those of
        ``paths`` must be compared by content, not by size and time (the voicemail
        spool after a renumbering: another message, same name, perhaps same size
        and second). A plugin without that keyword cannot sync the voicemail spool.

        Missing local paths are skipped with a warning in the result. Partial
        transfers are reported in ``warnings``, never silently. Time-bounded
        by the plugin's settings. Raises :class:`~wazo_ha_core.errors.PluginError`
        when the mirror could not be made; the next run must converge.
        """

    def pull(
        self,
        peer: str,
        paths: Sequence[str],
        staging: Path,
        *,
        progress: ProgressCallback = no_progress,
        mirror: bool = False,
    ) -> OperationResult:
        """Optional, on the master: copy each of ``paths`` from the peer into ``staging/<path>`` (copy-back).

        **This node pulls** with the credentials :meth:`init` set up; the peer's
        side must let those read exactly the copy-back directories and nothing
        else, and gains no way to write here. Never deletes on the peer and
        changes nothing there; in ``staging`` it deletes only with ``mirror``
        (files gone from the peer's ``paths`` are then removed from their staged
        copy, so it shows the peer as it is: the two-way voicemail merge needs
        that to see deletions). A path missing on the peer is *nothing recorded
        there*, not a problem: it is listed in ``figures["missing"]``, not in
        the warnings (a warning makes the copy-back ``partial``, so the
        automatic one would retry it forever). A directory or file under ``paths``
        the peer cannot read is listed in ``figures["unreadable"]`` (node
        paths), with a warning naming it, while the rest is copied; the engine
        then merges nothing from under it (a missing staged copy must not read
        as "deleted on the slave") and the copy-back stays owed. Time-bounded by the plugin's
        settings. The engine merges ``staging`` into the live directories
        itself (:mod:`wazo_ha_core.copy_back.files`).
        Raises :class:`~wazo_ha_core.errors.NotInitialised` before :meth:`init`,
        :class:`~wazo_ha_core.errors.PluginError` when the copy failed.
        """
        raise UnsupportedOperation(f"the {self.name} file sync plugin cannot pull files back")

    def trust_files(self, role: str) -> list[Path]:
        """Optional: the local files :meth:`forget_trust` may change or remove for ``role``.

        ``role`` is ``"master"`` or ``"slave"``. The engine snapshots each of them
        (bytes, mode, owner, or absence) before calling :meth:`forget_trust`, and
        puts them back exactly when a later step of the same edit fails. So
        :meth:`forget_trust` must touch no other file. No I/O. Default: none.
        """
        return []

    def forget_trust(self, role: str, peer: str | None) -> list[str]:
        """Optional: this node leaves ``role``; remove its side of the trust with ``peer``.

        Called by the edit step ``file sync trust <name>`` when the node type goes
        from ``"master"`` or ``"slave"`` to anything else (disabled, or the other
        role). On a former slave: whatever lets the master write here (the
        master's key in ``authorized_keys``, a forced command). On a former
        master: the credentials that let it write to the slave (key pair,
        pinned host key of ``peer``, the previous ``remote_address``, ``None``
        when unknown). Trust comes back only with a new :meth:`init`.

        * **Local files only** (those :meth:`trust_files` lists), no network,
          no command: the peer may be gone for good.
        * **Idempotent**: with nothing left to remove it changes nothing and
          returns ``[]``.
        * Returns what was removed, in words for the journal and the log
          (e.g. ``"/root/.ssh/authorized_keys: 1 sync key line"``).
        * Raises :class:`~wazo_ha_core.errors.PluginError` when a file cannot
          be read or written; the edit is then rolled back.

        Default: nothing to forget.
        """
        return []


class HealthProbe(Plugin, abc.ABC):
    """Answers one question: is the master serving?

    Namespace ``wazo_ha.health_probes``; default plugins ``icmp``, ``sip``, ``tcp``.

    ``checks`` says what a failure means to the watch: ``"host"`` (the
    machine is unreachable) or ``"service"`` (the machine answers but
    telephony does not).
    """

    checks: str = "host"

    @abc.abstractmethod
    def probe(self, target: str) -> ProbeAnswer:
        """Probe ``target`` once and return within the probe's timeout.

        A target that does not answer is ``ProbeAnswer(up=False, reason=...)``,
        not an exception. Raising means *the probe itself is broken*: the
        engine counts that as an unknown answer, never as "master down" (a
        broken probe must not cause a failover), logs it and shows it in
        ``doctor``. Has no side effects; may be called every second.
        """


class DeviceProvisioner(Plugin, abc.ABC):
    """Points the phones at the backup registrar, and back.

    Namespace ``wazo_ha.device_provisioners``; default plugin ``provd``.
    """

    @abc.abstractmethod
    def enable_backup(self, backup_address: str) -> None:
        """Make ``backup_address`` the backup registrar and proxy of every phone config.

        Remembers each config's previous values (in ``context.state``) the
        first time, so :meth:`disable_backup` can put them back. Idempotent:
        a config already right is not written again.
        Raises :class:`~wazo_ha_core.errors.PluginError` after putting back
        what this call had already changed (the engine does not undo a step
        that failed, only the steps before it).
        """

    @abc.abstractmethod
    def disable_backup(self) -> None:
        """Restore the backup registrar and proxy values remembered by :meth:`enable_backup`.

        Idempotent: with nothing remembered, nothing changes.
        Raises :class:`~wazo_ha_core.errors.PluginError`.
        """

    def resync_devices(self, *, all_devices: bool = False, progress: ProgressCallback = no_progress) -> OperationResult:
        """Ask the phones to fetch their configuration again (optional).

        Raises :class:`~wazo_ha_core.errors.UnsupportedOperation` when the
        plugin cannot do it.
        """
        raise UnsupportedOperation(f"device provisioner {self.name!r} cannot resynchronise devices")


class ServiceManager(Plugin, abc.ABC):
    """Takes over telephony on this node, and gives it back.

    Namespace ``wazo_ha.service_managers``; default plugins ``wazo_services``
    and ``berofos``. The engine calls enabled managers in configured order
    to take over and in reverse order to give back.
    """

    @abc.abstractmethod
    def start(self) -> None:
        """Take over: after it returns this node serves telephony.

        Checks the current state first and acts only on a change, so calling
        it on a node that already serves changes nothing. Bounded by
        ``timeouts.command`` per step. Raises
        :class:`~wazo_ha_core.errors.PluginError` naming the step that failed.
        """

    @abc.abstractmethod
    def stop(self) -> None:
        """Give back: after it returns this node no longer serves telephony.

        Same rules as :meth:`start`.
        """

    @abc.abstractmethod
    def status(self) -> ServiceState:
        """Whether the services are taken over on this node. No side effects."""

    def accept_token(self, token: int) -> None:
        """Coordinated mode: the fencing token the coming :meth:`start` serves under; called just before it.

        ``token`` is the leader lock's fencing token (etcd: the lock key's
        revision); it grows with every acquisition by any node. The default
        does nothing. A manager that drives something shared by the nodes (a
        relay, a proxy) should hand it on so that side refuses a token lower
        than the highest it has seen. Raising
        :class:`~wazo_ha_core.errors.PluginError` refuses the start (the node
        keeps trying while it holds the lock). Never called with the ``none``
        coordinator.
        """

    def active_calls(self) -> int | None:
        """How many calls this node carries now, or ``None`` when it cannot tell.

        The watch delays a failback while calls are up.
        """
        return None

    def refresh_mailboxes(self, mailboxes: Sequence[tuple[str, str]]) -> OperationResult:
        """Optional, on the master after a copy-back: have telephony here recount these voicemail mailboxes.

        ``mailboxes`` are ``(context, mailbox)`` pairs whose folders the
        copy-back changed on disk (app_voicemail sends message-waiting
        notifications only for changes it makes itself); the core has checked
        each name (:func:`wazo_ha_core.voicemail.changed.refusal`). Returns
        ``figures["refreshed"]`` (a count) and ``figures["failed"]``
        (``{"context/mailbox": reason}``, one entry per mailbox not refreshed).
        A failure for one mailbox is an entry, not an exception: the files are
        already safe, so the copy-back reports it as a warning and stays ``ok``.

        * **Time**: each request bounded by the plugin's timeout; after a
          failure that says telephony cannot be reached (refused, timed out),
          the remaining mailboxes are not tried and fail with the same reason.
        * **Raises** :class:`~wazo_ha_core.errors.UnsupportedOperation` (the
          default: this manager cannot), or
          :class:`~wazo_ha_core.errors.PluginError` when nothing could be
          tried (settings, credentials); the core then counts every mailbox
          as failed with that message.
        """
        raise UnsupportedOperation(f"service manager {self.name!r} cannot refresh voicemail mailboxes")


@dataclass(frozen=True)
class Lease:
    """A held leader lock, as :meth:`Coordinator.acquire` granted it.

    ``token`` is the **fencing token**: an integer that grows with every new
    acquisition of the lock by any node (etcd: the revision at which the lock
    key was created), never with a renewal. ``ttl`` is the lease's time to
    live in seconds, as granted. ``handle`` is the plugin's own object (not
    compared, not shown); nobody but the plugin that made the lease reads it.
    """

    node: str
    token: int
    ttl: float
    handle: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class LockHolder:
    """Who holds the leader lock now, as the backend sees it (``wazo-ha status``, the doctor).

    ``expires_in`` is the lease's remaining time in seconds as the backend
    reports it (``None`` when the backend cannot tell).
    """

    node: str
    token: int
    expires_in: float | None


class Coordinator(Plugin, abc.ABC):
    """Holds the one leader lock of an HA cluster: a lease-backed lock with a fencing token.

    Namespace ``wazo_ha.coordinators``; plugins ``none`` (the default: no
    backend, two-node behaviour as before) and ``tooz`` (etcd through tooz).
    The pure rules deciding *when* to acquire, renew and stop serving live in
    :mod:`wazo_ha_core.coordination`; a coordinator only talks to the backend.

    Contract, for every method:

    * **One lock per cluster.** All nodes of one HA cluster use the same key
      (the plugin's ``key_prefix`` keeps several clusters apart on one
      backend). At any moment the backend grants it to at most one node.
    * **Leases, measured from the caller's send time.** A lease granted or
      renewed by a call that *started* at local monotonic time ``t`` is not
      granted to anyone else before ``t + ttl`` (the backend starts its TTL
      after it receives the request, so never earlier). The caller keeps that
      deadline on its own clock; nothing relies on clocks agreeing across nodes.
    * **Time bound.** Every method returns or raises within
      :attr:`time_bound` seconds (the plugin's ``timeout`` setting), whatever
      the backend does. It never blocks waiting for the lock.
    * **Backend unreachable.** :meth:`acquire`, :meth:`renew` and
      :meth:`holder` raise :class:`~wazo_ha_core.errors.CoordinatorUnavailable`
      (no quorum, connection refused, timeout); they never guess.
      :meth:`release` never raises for that: a lease that cannot be revoked
      expires by itself.
    * **Errors.** Anything else (bad credentials, bad URL) raises
      :class:`~wazo_ha_core.errors.PluginError` with a message an operator can
      act on; secrets (passwords in URLs) never appear in it.
    """

    #: ``False`` for the ``none`` coordinator: no backend, the lock is always granted.
    coordinated: bool = True

    @property
    def time_bound(self) -> float:
        """Seconds any one call may take at most (the plugin's ``timeout``)."""
        return float(self.config.get("timeout", 2.0))

    @abc.abstractmethod
    def acquire(self, node: str, ttl: float) -> Lease | None:
        """Try once, without waiting, to take the leader lock for ``node`` with a ``ttl``-second lease.

        **Atomic**: the check "nobody holds it" and the grant are one backend
        operation (etcd: a transaction comparing the key's create revision to 0).
        Returns the :class:`Lease` with a fencing token greater than every token
        granted before, or ``None`` when another node holds the lock (a normal
        answer, not an error). Calling it while ``node`` already holds the lock
        returns ``None`` (holding is not re-granted; renew instead).
        Raises :class:`~wazo_ha_core.errors.CoordinatorUnavailable` when the
        backend did not answer within :attr:`time_bound`; then no lock was
        granted that the caller could use (a lease granted but unanswered
        expires after ``ttl`` without being renewed).
        """

    @abc.abstractmethod
    def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` by its ``ttl`` from the moment this call started.

        **Atomic**: succeeds only if the backend still holds this very lease
        (same lock, same token); it never re-creates an expired one, so a
        ``True`` here never covers a moment when someone else held the lock.
        Returns ``False`` when the lease is gone (expired, released, taken).
        Raises :class:`~wazo_ha_core.errors.CoordinatorUnavailable` when the
        backend did not answer within :attr:`time_bound`. On ``False`` or a
        raise the caller must treat the lease as ending at its last deadline.
        """

    @abc.abstractmethod
    def release(self, lease: Lease) -> None:
        """Give the lock up now, if ``lease`` still holds it (best effort, idempotent).

        Never releases a lock held under another token. Returns within
        :attr:`time_bound`; when the backend is unreachable it logs and
        returns (the lease expires by itself). Raises nothing for that.
        """

    @abc.abstractmethod
    def holder(self) -> LockHolder | None:
        """Who holds the lock now, or ``None`` when nobody does. Read-only; no side effects.

        Raises :class:`~wazo_ha_core.errors.CoordinatorUnavailable` when the
        backend did not answer within :attr:`time_bound`.
        """

    def close(self) -> None:
        """Drop connections and background threads (not the lock: release it first). Idempotent."""


#: Extension point group name (as in settings ``plugins.<group>``) → its ABC.
EXTENSION_POINTS: dict[str, type[Plugin]] = {
    "replication": ReplicationBackend,
    "file_sync": FileSyncBackend,
    "health_probes": HealthProbe,
    "device_provisioners": DeviceProvisioner,
    "service_managers": ServiceManager,
    "coordinators": Coordinator,
}
