"""The skip cache file, the pending skipped runs, and the metrics they update.

Files, beside the embedded SQLite store ``paths.state_db`` (only that store:
a PostgreSQL store has no connection-free staleness test), each mode 0600:

* ``<state_db>.skip.json``: written atomically (rename) by the engine after a
  skipped run (:func:`write`); holds ``store`` (the database file's marker,
  :func:`wazo_ha_core.status_snapshot.file_marker`, read before and after the
  cache's content was read from the store, and written only if both are
  equal), ``settings`` (a digest of the whole settings tree), the node's role,
  peer and standbys, the backend's name and class, and the backend's
  ``entry`` (what it skips by). :func:`load` accepts it only if every one of
  these equals what it finds now, under SQLite's SHARED lock.
* ``<state_db>.skipped.jsonl``: one journal event per line, appended by the
  fast path (:func:`append_pending`) under ``flock``; at most
  :data:`PENDING_LIMIT` lines, then the fast path declines and the full path
  folds them. :func:`fold_pending` appends them to the journal in order and
  empties the file (at least once: a crash between the two can journal a
  skipped run twice, never lose one).

Import cost: json, os, fcntl, hashlib; never SQLAlchemy.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from datetime import datetime
from pathlib import Path

from ..journal import Event
from ..status_snapshot import SnapshotMiss, file_marker, locked_marker
from ..store.revision import HEAD_REVISION

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger(__name__)

FORMAT = 1
CACHE_SUFFIX = ".skip.json"
PENDING_SUFFIX = ".skipped.jsonl"
#: Skipped runs kept out of the journal at most; then one run takes the full path and journals them.
PENDING_LIMIT = 60
#: The replication gauges a skipped event sets (wazo_ha_core.metrics), and the event's value for each.
METRIC_GAUGES = {
    "wazo_ha_last_replication_timestamp_seconds": lambda event: event.ended_at.timestamp(),
    "wazo_ha_last_replication_duration_seconds": lambda event: event.duration,
    "wazo_ha_last_replication_bytes": lambda event: float(event.figures.get("bytes", 0)),
    "wazo_ha_last_replication_user_statuses_to_master": lambda event: float(event.figures.get("statuses_to_master", 0)),
}


class CacheMiss(Exception):
    """The cache cannot decide: take the full path."""


def cache_path(database: Path) -> Path:
    return database.with_name(database.name + CACHE_SUFFIX)


def pending_path(database: Path) -> Path:
    return database.with_name(database.name + PENDING_SUFFIX)


def settings_digest(settings) -> str:
    """Every setting at once: any change of them (the plugin's endpoints, paths, standbys…) misses the cache."""
    return hashlib.sha256(json.dumps(settings.tree, sort_keys=True, default=str).encode()).hexdigest()


def sqlite_database(settings) -> Path | None:
    """The embedded SQLite store's file, or ``None`` when the store is elsewhere (``store.url``)."""
    return None if settings.get("store.url") else settings.path("state_db")


# --- writing (the engine, after a skipped run; SQLAlchemy is loaded there anyway) ------------------------


def write(settings, read_content) -> bool:
    """Write the cache from ``read_content()`` (a dict read from the store: role, peer, backend's entry…).

    Written only if the store's file marker is the same before and after ``read_content`` (no commit in
    between: the content describes that marker); otherwise, or on any error, the cache is removed and
    ``False`` returned. Never raises: the cache is only ever a shortcut.
    """
    database = sqlite_database(settings)
    if database is None:
        return False
    path = cache_path(database)
    try:
        before = file_marker(database)
        content = read_content()
        if content is not None and file_marker(database) == before:
            data = {
                "format": FORMAT,
                "revision": HEAD_REVISION,
                "store": before,
                "settings": settings_digest(settings),
                **content,
            }
            _write_private(path, json.dumps(data, sort_keys=True).encode())
            return True
    except Exception as exc:  # a store error included
        log.debug("skip cache %s not written: %s", path, exc)
    discard(settings)
    return False


def discard(settings) -> None:
    database = sqlite_database(settings)
    if database is not None:
        try:
            cache_path(database).unlink()
        except OSError:
            pass  # absent; or kept, and its store marker no longer matches the next write


def _write_private(path: Path, content: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
        os.replace(temporary, path)  # readers see the old cache or the new one, never half of one
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


# --- reading (the fast path, without SQLAlchemy) ----------------------------------------------------------


def load(settings) -> dict[str, Any]:
    """The cache if it was derived from the store and settings as they are now; else :class:`CacheMiss`."""
    database = sqlite_database(settings)
    if database is None:
        raise CacheMiss("the store is not the embedded SQLite file")
    path = cache_path(database)
    try:
        marker, raw = locked_marker(database, path.read_bytes)
    except SnapshotMiss as exc:
        raise CacheMiss(str(exc)) from None
    except OSError as exc:
        raise CacheMiss(f"no readable cache: {exc.strerror}") from None
    try:
        data = json.loads(raw)
    except ValueError:
        raise CacheMiss("cache is not JSON") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("revision") != HEAD_REVISION:
        raise CacheMiss("cache format or schema revision differs")
    if data.get("store") != marker:
        raise CacheMiss("the store changed since the cache was written")
    if data.get("settings") != settings_digest(settings):
        raise CacheMiss("the settings changed since the cache was written")
    return data


# --- the pending skipped runs ---------------------------------------------------------------------------


def _open_locked(path: Path, flags: int):
    fd = os.open(path, flags | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # held for a few file operations at most, by every user of the file
    return fd


def pending_count(database: Path) -> int:
    try:
        with open(pending_path(database), "rb") as pending:
            return sum(1 for _ in pending)
    except FileNotFoundError:
        return 0


def append_pending(database: Path, event: Event) -> None:
    """One line, one ``write(2)`` under the file's lock: a reader sees whole lines only."""
    line = json.dumps(event.as_dict(), sort_keys=True, default=str).encode() + b"\n"
    fd = _open_locked(pending_path(database), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read_pending(database: Path) -> list[dict[str, Any]]:
    """The pending events as dicts (``Event.as_dict``), oldest first; an unreadable line is left out."""
    try:
        raw = pending_path(database).read_bytes()
    except OSError:
        return []
    events = []
    for line in raw.splitlines():
        try:
            item = json.loads(line)
            _event(item)
        except (ValueError, KeyError, TypeError):
            log.warning("pending skipped run unreadable, left out: %r", line[:200])
            continue
        events.append(item)
    return events


def fold_pending(database: Path, append_event) -> int:
    """Append the pending skipped runs to the journal (``append_event(Event)``), oldest first; empty the file.

    Returns how many were folded. The file's lock is held throughout, so a fast path appending waits.
    """
    path = pending_path(database)
    if not path.exists():
        return 0
    fd = _open_locked(path, os.O_RDWR)
    try:
        items = read_pending(database)
        for item in items:
            append_event(_event(item))
        os.ftruncate(fd, 0)
        return len(items)
    finally:
        os.close(fd)


def _event(item: dict[str, Any]) -> Event:
    return Event(
        kind=item["kind"],
        started_at=datetime.fromisoformat(item["started_at"]),
        ended_at=datetime.fromisoformat(item["ended_at"]),
        outcome=item["outcome"],
        message=item["message"],
        figures=dict(item["figures"]),
    )


# --- metrics: what the journal listener would write for the skipped event ---------------------------------


def patched_metrics(path: Path) -> str:
    """The metrics file's text if it holds every gauge a skipped run sets; else :class:`CacheMiss`."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise CacheMiss(f"metrics file {path} unreadable: {exc.strerror}") from None
    names = {line.split(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")}
    if not set(METRIC_GAUGES) <= names:
        raise CacheMiss(f"metrics file {path} lacks the replication gauges")
    return text


def write_metrics(path: Path, text: str, event: Event) -> None:
    """Set the replication gauges to ``event``'s values, as :class:`~wazo_ha_core.metrics.MetricsFile` would."""
    from ..compat import write_atomically

    lines = []
    for line in text.splitlines():
        name = line.split(" ", 1)[0]
        if name in METRIC_GAUGES and not line.startswith("#"):
            line = f"{name} {float(METRIC_GAUGES[name](event))!r}"
        lines.append(line)
    write_atomically(path, ("\n".join(lines) + "\n").encode(), 0o644)
