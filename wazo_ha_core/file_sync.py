"""What the engine does around a file sync: role check, directory list, lock, journal.

The :class:`~wazo_ha_core.extensions.FileSyncBackend` plugins only move files;
this module decides whether to run them (master only), with which directories
(``file_sync.directories`` plus each tenant's sound directories, discovered at
every run), holds a lock so two syncs never overlap, nor a sync and a
copy-back (the copy-back holds the same lock: :mod:`.copy_back.run`), and
journals every run with its figures and warnings.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from . import run_locks
from .errors import NotInitialised, PluginError, PreflightError
from .extensions import (
    ONLY_PINNED,
    FileSyncBackend,
    OperationResult,
    PeerVerification,
    ProgressCallback,
    no_progress,
)
from .settings import Settings

if TYPE_CHECKING:
    from .engine import HAEngine

#: Shared by the file sync and the copy-back: the voicemail mirror master -> slave and the merge slave -> master
#: must never interleave (each reads what the other writes: the spools and the voicemail base).
SYNC_LOCK_FILE = "file-sync.lock"
SYNC_HOLDER = "file sync"


@dataclass
class SyncReport:
    """What ``wazo-ha sync`` prints: one entry per enabled backend."""

    initialised: bool = True
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def warnings(self) -> list[str]:
        return [warning for result in self.results for warning in result["warnings"]]

    @property
    def partial(self) -> bool:
        """rsync-style partial transfer (some files not copied) — today's scripts exit 1 on it."""
        return any(result["figures"].get("rsync_exit") in (23, 24) for result in self.results)


def sync_paths(settings: Settings) -> list[str]:
    """The node paths to mirror: the configured list, then ``<tenant>/<dir>`` sound directories."""
    paths = list(settings.get("file_sync.directories"))
    tree = settings.get("file_sync.tenant_sounds_dir")
    if not tree:
        return paths
    excluded = set(settings.get("file_sync.tenant_sounds_excluded"))
    local_tree = settings.resolve(tree)
    try:
        tenants = [entry for entry in os.scandir(local_tree) if entry.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return paths
    except OSError as exc:
        raise PreflightError(f"cannot list tenant sound directories in {local_tree}: {exc.strerror}") from None
    for tenant in sorted(tenants, key=lambda entry: entry.name):
        for entry in sorted(os.scandir(tenant.path), key=lambda entry: entry.name):
            if entry.name not in excluded and entry.is_dir(follow_symlinks=False):
                paths.append(str(PurePosixPath(tree) / tenant.name / entry.name))
    return paths


def _master_peer(engine: HAEngine, operation: str, peer: str | None = None) -> str:
    """The standby to work with: ``peer`` if it is one of the master's standbys, else the first one."""
    ha = engine.current_settings()
    if ha.node_type != "master":
        raise PreflightError(f"{operation} runs on the master only; this node is {ha.node_type!r}")
    if peer is None:
        return ha.remote_address
    standbys = engine.standby_peers()
    if peer not in standbys:
        raise PreflightError(
            f"{operation}: {peer!r} is not a standby of this master (remote_address and standbys: {standbys})"
        )
    return peer


def _backends(engine: HAEngine) -> list[FileSyncBackend]:
    backends = engine.loader.load("file_sync")
    if not backends:
        raise PreflightError("no file sync plugin is enabled: set plugins.file_sync (e.g. [rsync])")
    return backends  # type: ignore[return-value]


def sync_files(
    engine: HAEngine,
    *,
    progress: ProgressCallback = no_progress,
    lock_wait: float = 0.0,
    lock_waiting: Callable[[str], None] | None = None,
) -> SyncReport:
    """Mirror the directories to the slave with every enabled backend; journal each run.

    One run at a time per node (``paths.run_dir``/``file-sync.lock``, also held by a copy-back): a second
    run, or one during a copy-back, raises :class:`AlreadyRunning` at once, or after ``lock_wait`` seconds
    (``lock_waiting(message)`` told once when it waits; ``wazo-ha sync --wait``).

    Raises :class:`PreflightError` when this node is not the master and
    :class:`PluginError` when a backend fails (journaled as ``failed``). A
    backend not set up yet is journaled as ``skipped`` and reported with
    ``initialised=False``.
    """
    try:
        _master_peer(engine, "file sync")
    except PreflightError as exc:
        _journal_refusal(engine, "sync", exc)
        raise
    report = SyncReport()
    with run_locks.exclusive(
        engine.settings.path("run_dir"),
        SYNC_LOCK_FILE,
        SYNC_HOLDER,
        wait=lock_wait,
        waiting=lock_waiting,
        holder=SYNC_HOLDER,
    ):
        paths = sync_paths(engine.settings)
        for backend, peer in [(backend, peer) for peer in engine.standby_peers() for backend in _backends(engine)]:
            with engine.journal.record("sync") as event:
                event.figures = {"plugin": backend.name, "peer": peer, "directories": len(paths)}
                try:
                    gate = _voicemail_gate(engine, backend, peer)
                    run_paths = paths + ([gate.path] if gate is not None and gate.include else [])
                    extra = {"by_content": [gate.path]} if gate is not None and gate.by_content else {}
                    result = backend.sync(peer, run_paths, progress=progress, **extra)
                except NotInitialised as exc:
                    report.initialised = False
                    event.outcome, event.message = "skipped", str(exc)
                    report.results.append(_entry(backend.name, "skipped", str(exc), event.figures, []))
                    continue
                event.figures.update(result.figures)
                warnings = list(result.warnings)
                if gate is not None:
                    gate.settle(result.figures, result.outcome)
                    event.figures.update(gate.figures)
                    warnings += gate.warnings
                if warnings:
                    event.figures["warnings"] = warnings
                event.outcome = "ok" if result.outcome != "skipped" else "skipped"
                event.message = result.message + (f" ({len(warnings)} warnings)" if warnings else "")
                report.results.append(_entry(backend.name, result.outcome, result.message, event.figures, warnings))
    return report


def _voicemail_gate(engine: HAEngine, backend: FileSyncBackend, peer: str):
    """The voicemail spool's part in this sync (:mod:`wazo_ha_core.voicemail.sync_step`); None when off."""
    from .voicemail.sync_step import voicemail_gate

    return voicemail_gate(engine.settings, backend, peer)


def init_file_sync(
    engine: HAEngine, *, rotate: bool = False, verification: PeerVerification = ONLY_PINNED, peer: str | None = None
) -> list[dict[str, Any]]:
    """Set up (or, with ``rotate``, renew) the trust of every enabled backend; journaled with its warnings.

    ``peer``: which standby (N nodes, one of ``remote_address`` and ``standbys``); default ``remote_address``.
    """
    return _on_master_per_backend(
        engine,
        "sync-init",
        "file sync init",
        {"rotate": rotate},
        lambda backend, peer: backend.init(peer, rotate=rotate, verification=verification),
        peer,
    )


def show_host_keys(engine: HAEngine) -> list[dict[str, Any]]:
    """This node's identity per backend (``{"plugin", "text"}``), to pin on the master; any role."""
    return [{"plugin": backend.name, "text": backend.show_host_keys()} for backend in _backends(engine)]


def pin_host_keys(
    engine: HAEngine, text: str, *, replace: bool = False, peer: str | None = None
) -> list[dict[str, Any]]:
    """Pin the slave's identity (the text of ``show_host_keys`` on the slave) on the master; journaled."""
    return _on_master_per_backend(
        engine,
        "sync-pin",
        "host key pin",
        {"replace": replace},
        lambda backend, peer: backend.pin_host_keys(peer, text, replace=replace),
        peer,
    )


def _on_master_per_backend(
    engine: HAEngine,
    kind: str,
    operation: str,
    figures: dict[str, Any],
    call: Callable[[FileSyncBackend, str], OperationResult],
    peer: str | None = None,
) -> list[dict[str, Any]]:
    """``call(backend, peer)`` for every file-sync backend, on the master only; one ``kind`` event each."""
    try:
        peer = _master_peer(engine, operation, peer)
    except PreflightError as exc:
        _journal_refusal(engine, kind, exc)
        raise
    entries = []
    for backend in _backends(engine):
        with engine.journal.record(kind) as event:
            event.figures = {"plugin": backend.name, "peer": peer, **figures}
            result = call(backend, peer)
            event.figures.update(result.figures)
            if result.warnings:
                event.figures["warnings"] = list(result.warnings)
            event.outcome = "ok" if result.outcome != "skipped" else "unchanged"
            event.message = result.message
            entries.append(_entry(backend.name, result.outcome, result.message, event.figures, result.warnings))
    return entries


def _entry(plugin: str, outcome: str, message: str, figures: dict, warnings: list[str]) -> dict[str, Any]:
    return {"plugin": plugin, "outcome": outcome, "message": message, "figures": dict(figures), "warnings": warnings}


def _journal_refusal(engine: HAEngine, kind: str, exc: PluginError) -> None:
    with engine.journal.record(kind) as event:
        event.outcome, event.message = "refused", str(exc)
