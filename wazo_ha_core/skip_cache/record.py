"""The engine's side of the skip cache: fold the pending skipped runs into the journal, write the cache."""

from __future__ import annotations

from . import cache


def fold(engine) -> int:
    """Journal the skipped runs the fast path left pending (oldest first), then rewrite the metrics once.

    Cheap when there are none (one ``stat``). Never raises: a failure is logged and the runs stay pending
    (the fast path stops adding to them at :data:`.cache.PENDING_LIMIT`)."""
    database = cache.sqlite_database(engine.settings)
    if database is None:
        return 0
    try:
        if cache.pending_path(database).stat().st_size == 0:
            return 0
    except OSError:
        return 0
    try:
        folded = cache.fold_pending(database, engine.store.append_event)
    except Exception as exc:
        cache.log.warning("skipped runs left pending in %s: %s", cache.pending_path(database), exc)
        return 0
    if folded:
        engine.metrics.on_event(None)  # renders from the store: consistent with what was just journaled
    return folded


def after_run(engine, peer: str, backends: list, outcome: str) -> bool:
    """After a run to ``peer`` (journaled or not): write the cache if it was skipped by the one backend and
    that backend can be skipped by a cache; remove it otherwise. ``True`` when written."""
    backend = backends[0] if len(backends) == 1 else None
    if outcome != "skipped" or backend is None or not callable(getattr(backend, "skip_cache_entry", None)):
        cache.discard(engine.settings)
        return False

    def content():
        ha = engine.current_settings()
        entry = backend.skip_cache_entry(peer)
        if entry is None:
            return None
        backend_class = type(backend)
        return {
            "node_type": ha.node_type,
            "peer": peer,
            "peers": engine.standby_peers(),
            "plugin": backend.name,
            "class": f"{backend_class.__module__}:{backend_class.__qualname__}",
            "entry": entry,
        }

    return cache.write(engine.settings, content)
