"""The scheduled replication's fast path: skipped by the cache and both servers' markers, without the store.

:func:`try_skip` is offered the settings before the engine is built (``wazo-ha
replicate`` and ``xivo-master-slave-db-replication``, through
``cli.common.run``'s ``without_engine``). It returns the results of a skipped
run, or ``None`` to have the full path run as before. It returns ``None``
(never raises, never refuses) whenever it cannot be sure:

* not the embedded SQLite store, or not exactly one replication backend;
* the replication lock is held (the full path then waits or refuses as it says);
* :func:`.cache.load` misses: no cache, unreadable, another format or schema
  revision, the store or the settings changed since it was written;
* the role, the peer or the standbys the cache was written for are not this run's;
* :data:`.cache.PENDING_LIMIT` skipped runs already wait to be journaled;
* the metrics file lacks the gauges a skipped run sets;
* the backend (``skipped_by_cache(peer, entry)``) cannot connect, errs, or finds
  either server's marker moved.

Holding the replication lock throughout, it then appends the ``skipped`` event
(the same figures as the full path's, plus ``skip_cache: true``) to the pending
file and sets the metrics' replication gauges as the journal listener would.
What the full path also does on a skipped run and this one does not: carry the
users' statuses back (nothing to carry: the slave's marker, which covers them,
has not moved since a run that found them equal to the baseline, and the
baseline is in the store, unchanged), and notify (a skipped run after a skipped
run is no failure and no recovery).
"""

from __future__ import annotations

import logging

from ..journal import Event, utcnow
from . import cache

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from ..extensions import OperationResult

log = logging.getLogger("wazo_ha_core.replication")  # the full path's logger: one place to look


def try_skip(settings, peer: str | None = None) -> list[OperationResult] | None:
    """A skipped run's results, or ``None``: take the full path. ``peer``: the legacy script's argument."""
    database = cache.sqlite_database(settings)
    names = settings.enabled_plugins("replication")
    if database is None or len(names) != 1:
        return None
    from .. import run_locks
    from ..errors import AlreadyRunning

    try:
        with run_locks.exclusive(settings.path("run_dir"), "replication.lock", "replication"):
            return _skip_locked(settings, database, names[0], peer)
    except AlreadyRunning:
        return None
    except (cache.CacheMiss, OSError) as exc:  # OSError: a file it reads or writes (the full path will say)
        log.debug("replication fast path not taken: %s", exc)
        return None


def _skip_locked(settings, database, name: str, peer: str | None) -> list[OperationResult] | None:
    data = cache.load(settings)
    node_type, cached_peer = data.get("node_type"), data.get("peer")
    if peer is None:  # `wazo-ha replicate`: the master to its one standby
        if node_type != "master" or data.get("peers") != [cached_peer]:
            raise cache.CacheMiss("not a master with one standby")
        peer = cached_peer
    elif node_type == "slave" or peer != cached_peer:  # the legacy script names its slave
        raise cache.CacheMiss("another peer, or a slave")
    if data.get("plugin") != name or not isinstance(data.get("class"), str):
        raise cache.CacheMiss("another replication backend")
    if cache.pending_count(database) >= cache.PENDING_LIMIT:
        raise cache.CacheMiss("enough skipped runs wait to be journaled")
    metrics_path = settings.path("metrics_file")
    metrics = cache.patched_metrics(metrics_path)
    backend = _backend(settings, name, data["class"])
    started = utcnow()
    try:
        result = backend.skipped_by_cache(peer, data.get("entry"))
    except Exception as exc:  # the full path reports any real problem, with its own messages
        raise cache.CacheMiss(f"backend check failed: {type(exc).__name__}: {exc}") from None
    if result is None:
        raise cache.CacheMiss("a server's marker moved")
    result.figures["skip_cache"] = True  # what tells this run from the full path's, in the journal and --json
    event = Event(
        kind="replication",
        started_at=started,
        ended_at=utcnow(),
        outcome="skipped",
        message=result.message,
        figures={"node_type": node_type, "peer": peer, "plugin": name, **result.figures},
    )
    cache.append_pending(database, event)
    try:
        cache.write_metrics(metrics_path, metrics, event)
    except OSError as exc:  # as the journal listener: logged, never raised
        log.warning("could not write metrics to %s: %s", metrics_path, exc)
    log.info("replication to %s: %s", peer, event.message)
    return [result]


class _NoState:
    """The backend's state is in the store, which this path never opens: any use of it is a miss."""

    def get(self, key, default=None):
        raise cache.CacheMiss(f"the backend read its state ({key!r})")

    set = delete = get


def _backend(settings, name: str, qualified: str):
    """The backend class the engine loaded when it wrote the cache (``module:QualName``), built without its
    state; a class that has no ``skipped_by_cache`` or fails to build is a miss."""
    import importlib

    from ..extensions import PluginContext

    module_name, _, class_name = qualified.partition(":")
    try:
        backend_class = getattr(importlib.import_module(module_name), class_name)
        context = PluginContext(
            name=name,
            namespace="wazo_ha.replication",
            config=settings.plugin_config(name),
            settings=settings,
            state=_NoState(),
            log=logging.getLogger(f"wazo_ha.plugin.{name}"),
        )
        backend = backend_class(context)
    except Exception as exc:
        raise cache.CacheMiss(f"backend {qualified!r} not built: {exc}") from None
    if not callable(getattr(backend, "skipped_by_cache", None)):
        raise cache.CacheMiss(f"backend {qualified!r} has no skipped_by_cache")
    return backend
