"""What the engine does around a replication: who the peer is, the local lock, the journal.

The plugin copies; this module decides whether a copy may start and records
how it ended:

* the peer is the ``remote_address`` of a node whose ``node_type`` is
  ``master``; any other node refuses (a slave copying over its master would
  destroy the live configuration). The legacy script names its peer itself,
  and is refused only on a slave;
* one run at a time per node: an exclusive ``flock`` on
  ``paths.run_dir``/``replication.lock``; a second run fails with
  :class:`~wazo_ha_core.errors.AlreadyRunning` ("replication already
  running"), at once or after ``lock_wait`` seconds (``wazo-ha replicate
  --wait``: an operator's run meeting the follower's waits for it to end).
  Plugins add their own lock on the slave (two masters);
* slave-side edits: a backend that finds the slave's configuration edited
  since the last good copy raises
  :class:`~wazo_ha_core.errors.SlaveChangesPending`; the run is journaled
  ``refused`` with the tables in ``figures["slave_changes"]`` and notified.
  ``discard_slave_changes`` (``wazo-ha replicate --discard-slave-changes``)
  overwrites them;
* every run is one journal event ``replication`` (outcome ``ok``,
  ``skipped``, ``failed`` or ``refused``, figures from the plugin); journal
  listeners are notified, which is how an application mails or alerts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from . import run_locks
from .errors import AlreadyRunning, PluginError, PreflightError, SlaveChangesPending
from .extensions import OperationResult, ProgressCallback, ReplicationBackend, no_progress
from .journal import Event, utcnow
from .logs import REPORTED
from .skip_cache import record as skip_record

if TYPE_CHECKING:
    from .engine import HAEngine

log = logging.getLogger(__name__)

KIND = "replication"
LOCK_FILE = "replication.lock"


def run_lock(run_dir: Path, wait: float = 0.0, waiting: Callable[[str], None] | None = None):
    """Hold ``run_dir/replication.lock`` exclusively, or raise AlreadyRunning (at once, or after ``wait`` s)."""
    return run_locks.exclusive(run_dir, LOCK_FILE, "replication", wait=wait, waiting=waiting)


def replicate(
    engine: HAEngine,
    *,
    peer: str | None = None,
    force: bool = False,
    progress: ProgressCallback = no_progress,
    discard_slave_changes: bool = False,
    journal_skipped: bool = True,
    lock_wait: float = 0.0,
    lock_waiting: Callable[[str], None] | None = None,
) -> list[OperationResult]:
    """Copy the configuration DB to the slave with every enabled replication backend, in order.

    ``peer`` is for the legacy script, which names the slave on its command
    line; otherwise the peers are the master's ``remote_address`` then each of
    the ``standbys`` setting (N nodes), one journal event each; a failed peer
    does not stop the next, and the first failure is raised once all were
    tried. Raises :class:`PreflightError` on a node that may not replicate,
    and whatever the plugin raises (journaled as ``failed``, or ``refused``
    for a held lock).
    With ``journal_skipped`` false (follow mode), a run that copied nothing
    leaves no event and no INFO line: it writes nothing to the master's
    database, so it cannot itself look like a change to the next poll. A
    run that carried users' statuses back to the master is journaled all the
    same (it changed the master; the journal counts what went each way).
    ``lock_wait``: seconds to wait for a run that holds the node's lock
    (``lock_waiting(message)`` is told once when it does) before
    :class:`AlreadyRunning`; 0 refuses at once.
    """
    peers = None if peer is not None else engine.standby_peers()
    options = {
        "force": force,
        "progress": progress,
        "discard_slave_changes": discard_slave_changes,
        "journal_skipped": journal_skipped,
        "lock_wait": lock_wait,
        "lock_waiting": lock_waiting,
    }
    if not peers or len(peers) == 1:
        with engine.store.writes_batched():
            return _replicate_to(engine, peer=peer, **options)
    results, first_error = [], None
    for standby in peers:
        try:
            with engine.store.writes_batched():
                results += _replicate_to(engine, peer=None, standby=standby, **options)
        except AlreadyRunning:
            raise
        except Exception as exc:  # journaled and logged by _replicate_to; the other standbys still get their copy
            first_error = first_error or exc
    if first_error is not None:
        raise first_error
    return results


def _replicate_to(
    engine: HAEngine,
    *,
    peer: str | None,
    force: bool,
    progress: ProgressCallback,
    discard_slave_changes: bool,
    journal_skipped: bool,
    lock_wait: float,
    lock_waiting: Callable[[str], None] | None,
    standby: str | None = None,
) -> list[OperationResult]:
    ha = engine.current_settings()
    event = Event(kind=KIND, started_at=utcnow(), figures={"node_type": ha.node_type})
    try:
        if peer is None:
            if ha.node_type != "master":
                raise PreflightError(f"replication runs on the master only; this node's node_type is {ha.node_type!r}")
            peer = standby or ha.remote_address
        elif ha.node_type == "slave":
            raise PreflightError("this node is a slave: replicating from it would overwrite the master's configuration")
        event.figures["peer"] = peer
        backends = engine.loader.load("replication")
        if not backends:
            raise PluginError("no replication backend enabled: set plugins.replication (e.g. [pg_dump])")
        with run_lock(engine.settings.path("run_dir"), lock_wait, lock_waiting):
            skip_record.fold(engine)  # the fast path's skipped runs first: the journal stays in order
            options = {"discard_slave_changes": True} if discard_slave_changes else {}
            if discard_slave_changes:
                event.figures["discard_slave_changes"] = True
            results = [_run_one(backend, peer, force, progress, event, options) for backend in backends]
    except BaseException as exc:
        refused = isinstance(exc, (PreflightError, AlreadyRunning))
        event.outcome = "refused" if refused else "failed"
        event.message = str(exc) or type(exc).__name__
        if isinstance(exc, SlaveChangesPending):
            event.figures["slave_changes"] = exc.tables
        engine.journal.append(event)
        log.error("replication %s: %s", event.outcome, event.message, extra=REPORTED)
        raise
    event.outcome = "skipped" if all(result.outcome == "skipped" for result in results) else "ok"
    event.message = "; ".join(result.message for result in results)
    if event.outcome == "skipped" and not journal_skipped and not _carried_back(results):
        log.debug("replication to %s: %s (not journaled)", peer, event.message)
    else:
        engine.journal.append(event)
        log.info("replication to %s: %s", peer, event.message)
    # After the journal's write: the cache records the store as this run leaves it.
    skip_record.after_run(engine, peer, backends, event.outcome)
    return results


def _carried_back(results: list[OperationResult]) -> bool:
    from .user_statuses.groups import CARRIED_BACK_FIGURE

    return any(result.figures.get(CARRIED_BACK_FIGURE) for result in results)


def _run_one(
    backend: ReplicationBackend, peer: str, force: bool, progress: ProgressCallback, event, options: dict
) -> OperationResult:
    event.figures["plugin"] = backend.name
    try:
        result = backend.replicate(peer, force=force, progress=progress, **options)
    except PluginError:
        raise
    except Exception as exc:  # a plugin bug: report it like a failure, keep the traceback in the log
        log.exception("replication plugin %r failed unexpectedly", backend.name)
        raise PluginError(f"replication plugin {backend.name!r} failed: {type(exc).__name__}: {exc}") from exc
    event.figures.update(result.figures)
    return result
