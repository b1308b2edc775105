"""A skipped replication decided without opening the store: a derived cache, checked against both servers.

The store (behind SQLAlchemy) stays the only record. After a run that found
both servers unchanged since the last verified copy, the engine writes a small
cache beside the SQLite store (:mod:`.cache`): the markers the replication
backend skips by, and what they were derived from (the store file's change
counter and identity, the settings, the node's role and peer). The next
scheduled run (:mod:`.fast_path`) reads it with the JSON module only, asks
both PostgreSQL servers whether their markers still equal it, and if they do
records a ``skipped`` run without importing SQLAlchemy.

Fail-safe: anything missing, stale, unreadable or different sends the run to
the full path, which decides as before; a wrong cache can cost a run, never
skip a copy the servers need (the servers' markers are always read live).
The skipped runs it records wait in a small pending file, folded into the
journal by the next process that opens the store (:func:`.cache.fold_pending`).
"""
