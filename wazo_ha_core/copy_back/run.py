"""The copy-back operation (``wazo-ha copy-back``), on the master: rows, then files; locked, journaled.

1. Refused unless this node is the master (the peer is its ``remote_address``):
   the master **pulls**, so the slave is given no way to write on the master.
2. One run at a time: ``paths.run_dir``/``copy-back.lock``; and never beside a
   file sync: the copy-back then takes the file sync's lock
   (``file-sync.lock``, :data:`~wazo_ha_core.file_sync.SYNC_LOCK_FILE`) for
   the whole run, so the voicemail mirror master -> slave and the merge
   slave -> master never interleave. Both locks are waited for up to
   ``lock_wait`` seconds in all (``wazo-ha copy-back --wait``), in that order
   (:data:`~wazo_ha_core.run_locks.ORDER`; a sync takes only the second).
3. Rows: each replication backend's :meth:`copy_back_rows` (``pg_dump``: the
   slave's ``cel`` and ``queue_log`` rows, exactly once).
4. Files: each file-sync backend's :meth:`pull` of the copy-back directories
   (the voicemail spool, each tenant's ``monitor``, ``copy_back.directories``)
   into ``copy_back.staging_dir/<plugin>``, then :mod:`.files` merges the staged
   copy into the live directories (verified; nothing overwritten or deleted).
5. One journal event ``copy-back``, starting when the locks are held (the
   seconds waited for them in ``figures.lock_waited``): outcome ``ok``,
   ``partial`` (some items not merged: conflicts or problems, listed in
   ``figures.warnings``), ``failed`` or ``refused``; figures: rows per table,
   files, bytes, messages, messages renumbered. A failed or partial run is notified; the next run (by hand or
   on the schedule) continues where it stopped.
6. Message-waiting: the mailboxes whose folders changed on the master are
   recounted by Asterisk (:mod:`.mwi`, ``copy_back.refresh_mwi``); figures
   ``mwi_refreshed`` and ``mwi_failed``. A mailbox not refreshed is a notice
   (``figures.notices``), never a failure: the outcome stays as it was.

``dry_run``: rows are counted, files are pulled into the staging directory
(on the master, never the live tree) and what would move is listed; nothing
else is written, not even the ledgers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .. import run_locks
from ..errors import AlreadyRunning, NotInitialised, PluginError, PreflightError, UnsupportedOperation
from ..extensions import ProgressCallback, no_progress
from ..journal import Event, utcnow
from ..logs import REPORTED
from ..voicemail.apply import base_file as voicemail_base_file
from .files import FilesReport, Ledger, merge_plain, merge_voicemail

if TYPE_CHECKING:
    from ..engine import HAEngine
    from ..settings import Settings

log = logging.getLogger(__name__)

KIND = "copy-back"
LOCK_FILE = "copy-back.lock"
HOLDER = "copy-back"
#: How long a copy-back that no operator started (the automatic one, switchback's) waits for a file sync in
#: progress: the follower's syncs take seconds, a first sync of a large site minutes. The automatic one never
#: waits for another copy-back (it would find nothing new): it skips, without counting a failure.
UNATTENDED_LOCK_WAIT = 120.0
LEDGER_FILE = "ledger.jsonl"


@dataclass
class CopyBackReport:
    outcome: str = "ok"
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    would_copy: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)  # warnings that leave the outcome as it is (message-waiting)
    changed_mailboxes: set[tuple[str, str]] = field(default_factory=set)


def copy_back_paths(settings: Settings) -> list[tuple[str, str]]:
    """``(label, node path)`` of every directory copied back, in order: voicemail, recordings, the list."""
    paths = [("voicemail", settings.get("copy_back.voicemail_dir"))]
    tree = settings.get("file_sync.tenant_sounds_dir")
    names = list(settings.get("copy_back.tenant_sounds_names"))
    if tree and names:
        try:
            tenants = sorted(e.name for e in os.scandir(settings.resolve(tree)) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            tenants = []
        except OSError as exc:
            raise PreflightError(f"cannot list the tenant sound directories in {tree}: {exc.strerror}") from None
        paths += [("recordings", str(PurePosixPath(tree) / tenant / name)) for tenant in tenants for name in names]
    paths += [("directories", path) for path in settings.get("copy_back.directories")]
    return paths


def copy_back(
    engine: HAEngine,
    *,
    dry_run: bool = False,
    progress: ProgressCallback = no_progress,
    automatic: dict[str, Any] | None = None,
    lock_wait: float = 0.0,
    lock_waiting: Callable[[str], None] | None = None,
    sync_lock_wait: float | None = None,
) -> CopyBackReport:
    """Run the copy-back from the slave into this master (see the module docstring); journaled.

    Raises :class:`PreflightError` when this node is not the master,
    :class:`AlreadyRunning` when another copy-back or a file sync holds its
    lock (at once, or after ``lock_wait`` seconds in all, ``sync_lock_wait``
    for the file sync's when given; ``lock_waiting(message)`` told when it
    waits), and the
    plugins' :class:`PluginError` (journaled ``failed``; what was merged before
    stays merged and verified). Problems with single items do not raise: the
    outcome is then ``partial`` with the items in ``warnings``.

    ``automatic``: figures of the scheduled check that started this run
    (:mod:`.auto`; they rule its notifications), which also keeps the owed
    state. Any other run that ends ``ok`` clears a copy-back owed since before
    it started (:func:`.auto.settle_manual`).
    """
    from . import auto

    ha = engine.current_settings()
    started = time.time()
    event = Event(kind=KIND, started_at=utcnow(), figures={"dry_run": dry_run, **(automatic or {})})
    if automatic is None and not dry_run:
        event.figures["streak_notified"] = auto.streak_notified(engine)
    report = CopyBackReport()
    try:
        if ha.node_type != "master":
            raise PreflightError(
                f"copy-back runs on the master (it pulls from the slave); this node is {ha.node_type!r}"
            )
        peer = ha.remote_address
        event.figures["peer"] = peer
        sync_wait = lock_wait if sync_lock_wait is None else sync_lock_wait
        with _locks(engine.settings.path("run_dir"), lock_wait, sync_wait, lock_waiting) as waited:
            event.started_at = utcnow()  # the run itself: a wait for a sync is a figure, not part of it
            event.figures["lock_waited"] = round(waited, 3)
            _rows(engine, peer, dry_run, progress, report)
            try:
                _files(engine, peer, dry_run, progress, report)
            finally:
                _refresh_mwi(engine, dry_run, report)
    except BaseException as exc:
        refused = isinstance(exc, (PreflightError, AlreadyRunning))
        event.outcome = "refused" if refused else "failed"
        event.message = str(exc) or type(exc).__name__
        event.figures.update(report.figures)
        if report.warnings:
            event.figures["warnings"] = report.warnings[:50]
        if report.notices:
            event.figures["notices"] = report.notices[:50]
        engine.journal.append(event)
        log.error("copy-back %s: %s", event.outcome, event.message, extra=REPORTED)
        raise
    if report.warnings:
        report.outcome = "partial"
    parts = [f"rows {report.figures.get('rows_copied', 0)}", f"files {report.figures.get('files', 0)}"]
    parts.append(
        f"messages {report.figures.get('messages', 0)} ({report.figures.get('messages_renumbered', 0)} renumbered)"
    )
    report.message = ("would copy: " if dry_run else "copied: ") + ", ".join(parts)
    if report.warnings:
        report.message += f"; {len(report.warnings)} items not copied (see warnings)"
    if report.notices:
        report.message += f"; message-waiting not refreshed for {report.figures.get('mwi_failed', 0)} mailbox(es)"
    event.outcome, event.message = report.outcome, report.message
    event.figures.update(report.figures)
    if report.warnings:
        event.figures["warnings"] = report.warnings[:50]
    if report.notices:
        event.figures["notices"] = report.notices[:50]
    engine.journal.append(event)
    (log.warning if report.warnings else log.info)("copy-back from %s: %s", peer, report.message, extra=REPORTED)
    if automatic is None and not dry_run:
        auto.settle_manual(engine, report.outcome, started)
    return report


@contextlib.contextmanager
def _locks(run_dir: Path, wait: float, sync_wait: float, waiting: Callable[[str], None] | None) -> Iterator[float]:
    """The copy-back's lock, then the file sync's (ordering rule), within ``wait`` seconds in all (the second
    within ``sync_wait``); yields the seconds waited."""
    from ..file_sync import SYNC_LOCK_FILE

    began = time.monotonic()
    with run_locks.exclusive(run_dir, LOCK_FILE, HOLDER, wait=wait, waiting=waiting, holder=HOLDER):
        left = round(max(sync_wait - (time.monotonic() - began), 0.0), 1)
        with run_locks.exclusive(run_dir, SYNC_LOCK_FILE, HOLDER, wait=left, waiting=waiting, holder=HOLDER):
            yield time.monotonic() - began


def _rows(engine: HAEngine, peer: str, dry_run: bool, progress: ProgressCallback, report: CopyBackReport) -> None:
    for backend in engine.loader.load("replication"):
        try:
            result = backend.copy_back_rows(peer, dry_run=dry_run, progress=progress)
        except UnsupportedOperation as exc:
            report.warnings.append(str(exc))
            continue
        except PluginError:
            raise
        except Exception as exc:  # a plugin bug: a failure like any other, traceback in the log
            log.exception("replication plugin %r failed in copy-back", backend.name)
            raise PluginError(f"copy-back of rows by {backend.name!r} failed: {type(exc).__name__}: {exc}") from exc
        for key, value in result.figures.items():
            if key.startswith("rows_"):
                report.figures[key] = report.figures.get(key, 0) + value
        report.warnings.extend(result.warnings)


def _files(engine: HAEngine, peer: str, dry_run: bool, progress: ProgressCallback, report: CopyBackReport) -> None:
    settings = engine.settings
    labelled = copy_back_paths(settings)
    staging_root = settings.resolve(settings.get("copy_back.staging_dir"), key="copy_back.staging_dir")
    ledger = Ledger(staging_root / LEDGER_FILE)
    files = FilesReport()
    pulled_bytes = 0
    missing = 0  # directories not on the slave: nothing recorded there, not a problem
    for backend in engine.loader.load("file_sync"):
        staging = staging_root / backend.name
        try:
            # mirror: the staged copy is the slave's spool as it is now (deletions there are seen)
            result = backend.pull(peer, [path for _, path in labelled], staging, progress=progress, mirror=True)
        except (UnsupportedOperation, NotInitialised) as exc:
            report.warnings.append(f"files not copied back: {exc}")
            continue
        unreadable = [str(path) for path in result.figures.get("unreadable", ())]
        pulled_bytes += result.figures.get("bytes_transferred", 0)
        missing += len(result.figures.get("missing", ()))
        for note in result.figures.get("missing", ())[:5]:
            log.info("copy-back: %s", note)
        report.warnings.extend(result.warnings if not dry_run else [])
        for label, path in labelled:
            staged = staging / str(path).lstrip("/")
            live = settings.resolve(path)
            if label == "voicemail":
                merge_voicemail(
                    staged,
                    live,
                    ledger,
                    files,
                    dry_run=dry_run,
                    max_messages=int(settings.get("copy_back.max_messages")),
                    base_path=voicemail_base_file(staging_root, peer),
                    unreadable=_under(path, unreadable),
                )
                report.changed_mailboxes |= files.changed_mailboxes
            else:
                merge_plain(staged, live, f"{label}:{path}", ledger, files, dry_run=dry_run)
    report.figures.update(files.figures())
    report.changed_mailboxes |= files.changed_mailboxes
    report.figures["bytes_pulled"] = pulled_bytes
    report.figures["directories_missing_on_slave"] = missing
    report.warnings.extend(files.conflicts + files.problems)
    report.would_copy = files.would_copy


def _refresh_mwi(engine: HAEngine, dry_run: bool, report: CopyBackReport) -> None:
    """Recount the mailboxes the merge changed (also after a failure: what was merged stays merged)."""
    from .mwi import refresh

    if dry_run or not report.changed_mailboxes or not engine.settings.get("copy_back.refresh_mwi"):
        report.figures.update({"mwi_refreshed": 0, "mwi_failed": 0})
        return
    try:
        managers = engine.loader.load("service_managers")
    except Exception as exc:  # plugins that do not load: the copy-back itself did not need them
        managers = []
        report.notices.append(f"message-waiting not refreshed: service managers not loaded ({exc})")
    done = refresh(managers, report.changed_mailboxes)
    report.figures.update(done.figures())
    report.notices.extend(done.notices)
    for notice in done.notices:
        log.warning("copy-back: %s", notice)


def _under(directory: str, paths: list[str]) -> list[str]:
    """``paths`` (node paths) relative to ``directory``: ``"."`` for the directory itself or one above it."""
    top = PurePosixPath(directory)
    found = []
    for path in map(PurePosixPath, paths):
        if path == top or path in top.parents:
            found.append(".")
        elif top in path.parents:
            found.append(str(path.relative_to(top)))
    return found
