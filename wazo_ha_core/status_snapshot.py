"""The status snapshot: what ``wazo-ha status`` shows from the store, readable without SQLAlchemy.

Importing SQLAlchemy alone costs 20 to 30 bare interpreter starts, so the store
(:class:`~wazo_ha_core.store.Store`, SQLite file only) writes, after each of its
writes, the answers to the queries ``status`` makes into a small JSON file beside
the database (``<state_db>.status.json``, mode 0600 like the store: journal
messages and figures are no more public there). ``status`` reads it with
:func:`load` and opens the store only when :func:`load` says no.

Staleness contract: a snapshot is shown only if it describes the database as
it is *now*. :func:`load` holds SQLite's own SHARED lock on the database file
(the POSIX byte-range lock SQLite takes to read, so no writer can commit
meanwhile) and compares the file as found — SQLite's file change counter
(header offset 24, incremented by every committing transaction in rollback-journal
mode), device, inode, size, modification and change times — with what the
writer recorded; also the schema revision (this library's ``HEAD_REVISION``)
and the snapshot format. Any difference, a database in WAL mode, a journal left
by a writer that died (a hot journal), a lock it cannot take, a missing or
unreadable file: no snapshot, the store is read instead. A write by another
process, even one that never refreshes the snapshot (the sqlite3 shell), moves
the counter and the file times, so it can only make the snapshot unused, never
make an old one pass for current.

The writer records the marker before and after its reads (all through
SQLAlchemy, each a committed state) and writes the snapshot only if both are
equal, so the answers belong to the marker written beside them. Two writers
racing may leave the older snapshot in place: its marker no longer matches,
so it is not used.

PostgreSQL stores (``store.url`` set) have no such connection-free test; they
are always read through SQLAlchemy. Only the default embedded SQLite file
(``store.url`` empty) gets a snapshot.

Import cost: json, os, fcntl, datetime; never SQLAlchemy.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from pathlib import Path

from .journal import Event
from .store.revision import HEAD_REVISION
from .watch import STATE_OWNER

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from typing import Any

FORMAT = 2
SUFFIX = ".status.json"
#: The kinds whose last event ``status`` shows (newest, and newest ok or skipped).
LAST_KINDS = ("replication", "sync", "copy-back", "failover", "failback", "switchover", "switchback")
GOOD_OUTCOMES = ("ok", "skipped")
#: The last failover or failback in force (``status.master_view``).
SWITCH_KINDS, SWITCH_OUTCOMES = ("failover", "failback"), ("ok",)
WATCH_KEYS = ("status", "paused")
SWITCHOVER_OWNER = "core.switchover"  # wazo_ha_core.switchover.STATE_OWNER, not imported: it pulls the engine in
COPY_BACK_OWNER = "core.copy_back"  # wazo_ha_core.copy_back.auto.STATE_OWNER (its key: "auto")
#: The plugin states ``status`` reads, and which of their keys.
STATES = {STATE_OWNER: WATCH_KEYS, SWITCHOVER_OWNER: ("switched",), COPY_BACK_OWNER: ("auto",)}

# SQLite's locking protocol (os_unix.c): byte-range locks at 1 GiB; a reader holds a read
# lock on the shared range, a writer needs a write lock on all of it to commit.
_PENDING_BYTE = 0x40000000
_SHARED_FIRST, _SHARED_SIZE = _PENDING_BYTE + 2, 510
_HEADER = b"SQLite format 3\x00"


class SnapshotMiss(Exception):
    """The snapshot cannot answer exactly: read the store."""


def snapshot_path(database: Path) -> Path:
    return database.with_name(database.name + SUFFIX)


# --- the marker: the database file as it is ----------------------------------------------------


def _marker(fd: int, database: Path) -> dict[str, Any]:
    """The database file's identity and change counter; raises :class:`SnapshotMiss` when not comparable."""
    for suffix in ("-journal", "-wal"):
        side = database.with_name(database.name + suffix)
        try:
            if side.stat().st_size > 0:  # a write in flight, a hot journal, or WAL mode
                raise SnapshotMiss(f"{side.name} present")
        except FileNotFoundError:
            pass
    header = os.pread(fd, 100, 0)
    if len(header) < 100 or not header.startswith(_HEADER):
        raise SnapshotMiss("not an SQLite database (yet)")
    if header[18] != 1 or header[19] != 1:  # 2 = WAL: commits do not move the counter
        raise SnapshotMiss("database not in rollback-journal mode")
    st = os.fstat(fd)
    return {
        "dev": st.st_dev,
        "ino": st.st_ino,
        "size": st.st_size,
        "mtime_ns": st.st_mtime_ns,
        "ctime_ns": st.st_ctime_ns,
        "change_counter": int.from_bytes(header[24:28], "big"),
    }


def _shared_lock(fd: int) -> None:
    """SQLite's SHARED lock, without waiting: a writer committing (or about to) makes it fail."""
    try:
        fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, _PENDING_BYTE)
        try:
            fcntl.lockf(fd, fcntl.LOCK_SH | fcntl.LOCK_NB, _SHARED_SIZE, _SHARED_FIRST)
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN, 1, _PENDING_BYTE)
    except OSError:
        raise SnapshotMiss("a writer holds the database") from None


def locked_marker(database: Path, read):
    """``(marker, read())`` with ``read`` called under SQLite's SHARED lock on ``database`` (no commit
    can happen meanwhile); raises :class:`SnapshotMiss` like :func:`load`. Closes its descriptor: call it
    in a process that holds no transaction of the store (the fast skipped replication, ``status``)."""
    try:
        fd = os.open(database, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise SnapshotMiss(f"cannot open {database}: {exc.strerror}") from None
    try:
        _shared_lock(fd)  # released by close(): this process holds no other descriptor of the file
        return _marker(fd, database), read()
    finally:
        os.close(fd)


def file_marker(database: Path) -> dict[str, Any]:
    """The store's marker as its writer reads it (a descriptor kept open, no lock: see ``_DESCRIPTORS``)."""
    fd = _descriptor(database)
    return _marker(fd, database)


# --- reading ----------------------------------------------------------------------------------------


def load(database: Path, events_limit: int) -> SnapshotView:
    """The snapshot beside ``database`` if it is exactly current; else raises :class:`SnapshotMiss`.

    Never waits (a lock held by a writer is a miss), never writes, never imports SQLAlchemy.
    Closing its descriptor drops this process's POSIX locks on the file: call it before this
    process opens the store (``wazo-ha status`` does), not while a transaction of it is open.
    """
    path = snapshot_path(database)

    def read() -> tuple:
        # Under the lock: the skipped runs not yet journaled (wazo_ha_core.skip_cache) are folded into the
        # store by a commit, which cannot happen while it is held, so none is counted twice or lost.
        from .skip_cache.cache import read_pending

        try:
            return json.loads(path.read_bytes()), read_pending(database)
        except (OSError, ValueError) as exc:
            raise SnapshotMiss(f"no readable snapshot: {exc}") from None

    marker, (data, pending) = locked_marker(database, read)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SnapshotMiss("snapshot format differs")
    if data.get("revision") != HEAD_REVISION:
        raise SnapshotMiss(f"snapshot of schema revision {data.get('revision')!r}, this version needs {HEAD_REVISION}")
    if data.get("database") != marker:
        raise SnapshotMiss("the database changed since the snapshot was written")
    return SnapshotView(_with_pending(data, pending), events_limit)


def _with_pending(data: dict[str, Any], pending: list[dict[str, Any]]) -> dict[str, Any]:
    """The snapshot's answers with the pending skipped replications (oldest first) as if journaled."""
    if not pending:
        return data
    newest = pending[-1]
    last = {**data["last"], newest["kind"]: {"newest": newest, "good": newest}}  # skipped is a good outcome
    events = list(reversed(pending)) + data["events"]
    # events_limit grows with them: "fewer stored than the limit" (the whole journal) keeps its meaning
    return {**data, "events": events, "events_limit": data["events_limit"] + len(pending), "last": last}


class SnapshotView:
    """The store's read methods that ``status`` uses, answered from a snapshot; :class:`SnapshotMiss` otherwise."""

    def __init__(self, data: dict[str, Any], events_limit: int):
        self.data, self.events_limit = data, events_limit

    def read_ha_settings(self):
        """As the store's: ``None`` when none are stored yet (the engine then looks at ``ha.conf``)."""
        ha = self.data["ha"]
        if ha is None:
            return None
        from .config import HASettings

        return HASettings(ha["node_type"], ha["remote_address"])

    def events(self, kind: str | None = None, since=None, limit: int | None = 20) -> list[Event]:
        if since is None and kind is None and limit is not None:
            stored, complete = self.data["events"], len(self.data["events"]) < self.data["events_limit"]
            if limit <= len(stored) or complete:
                return [_event(item) for item in stored[:limit]]
        if since is None and kind in LAST_KINDS and limit == 1:
            newest = self.data["last"][kind]["newest"]
            return [] if newest is None else [_event(newest)]
        raise SnapshotMiss(f"events(kind={kind!r}, limit={limit!r}) not in the snapshot")

    def last_event(self, kinds: tuple[str, ...], outcomes: tuple[str, ...]) -> Event | None:
        if tuple(kinds) == SWITCH_KINDS and tuple(outcomes) == SWITCH_OUTCOMES:
            found = self.data["switch"]
        elif len(kinds) == 1 and kinds[0] in LAST_KINDS and tuple(outcomes) == GOOD_OUTCOMES:
            found = self.data["last"][kinds[0]]["good"]
        else:
            raise SnapshotMiss(f"last_event({kinds!r}, {outcomes!r}) not in the snapshot")
        return None if found is None else _event(found)

    def plugin_state(self, owner: str) -> _StateView:
        if owner not in STATES:
            raise SnapshotMiss(f"plugin state of {owner!r} not in the snapshot")
        return _StateView(owner, self.data["states"][owner])


class _StateView:
    def __init__(self, owner: str, values: dict[str, Any]):
        self.owner, self.values = owner, values

    def get(self, key: str, default: Any = None) -> Any:
        if key not in STATES[self.owner]:
            raise SnapshotMiss(f"{self.owner} state {key!r} not in the snapshot")
        value = self.values.get(key)
        return default if value is None else value


def _event(item: dict[str, Any]) -> Event:
    ended = item["ended_at"]
    return Event(
        kind=item["kind"],
        started_at=datetime.fromisoformat(item["started_at"]),
        ended_at=datetime.fromisoformat(ended) if ended else None,
        outcome=item["outcome"],
        message=item["message"],
        figures=item["figures"],
        id=item["id"],
    )


# --- writing (by the store, which has SQLAlchemy loaded anyway) -------------------------------------

#: (path, device, inode) -> a read-only descriptor, open for the life of the process. Closing any
#: descriptor of a file drops every POSIX lock the process holds on it, SQLite's included (another
#: thread's transaction), so the writer never closes one.
_DESCRIPTORS: dict[tuple[str, int, int], int] = {}


def _descriptor(database: Path) -> int:
    st = os.stat(database)
    key = (str(database), st.st_dev, st.st_ino)
    if key not in _DESCRIPTORS:
        _DESCRIPTORS[key] = os.open(database, os.O_RDONLY | os.O_CLOEXEC)
    return _DESCRIPTORS[key]


class SnapshotWriter:
    """Rewrites the snapshot of one SQLite store after each of its writes; see the module's contract."""

    ATTEMPTS = 3

    def __init__(self, database: Path, events_limit: int):
        self.database, self.path, self.events_limit = database, snapshot_path(database), events_limit

    def refresh(self, store) -> bool:
        """Write the snapshot of ``store`` as it is now; ``False`` (and no snapshot left) when it cannot.

        Failures are not raised: the write that called it is committed, and a missing
        snapshot only sends ``status`` to the store.
        """
        try:
            fd = _descriptor(self.database)
            for _ in range(self.ATTEMPTS):
                before = _marker(fd, self.database)
                answers = self._collect(store)
                if _marker(fd, self.database) == before:  # no commit in between: the answers are of `before`
                    self._write({"format": FORMAT, "revision": HEAD_REVISION, "database": before, **answers})
                    return True
        except Exception as exc:  # a store error included: the snapshot is only ever a shortcut
            import logging  # here only: the reading side (status) never needs it

            logging.getLogger(__name__).debug("status snapshot of %s not written: %s", self.database, exc)
        self.discard()
        return False

    def discard(self) -> None:
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass  # the marker still keeps an old snapshot from being used

    def _collect(self, store) -> dict[str, Any]:
        ha = store.read_ha_settings()

        def one(event: Event | None) -> dict[str, Any] | None:
            return None if event is None else event.as_dict()

        last = {}
        for kind in LAST_KINDS:
            newest = store.events(kind=kind, limit=1)
            last[kind] = {
                "newest": one(newest[0] if newest else None),
                "good": one(store.last_event((kind,), GOOD_OUTCOMES)),
            }
        return {
            "ha": None if ha is None else {"node_type": ha.node_type, "remote_address": ha.remote_address},
            "events_limit": self.events_limit,
            "events": [event.as_dict() for event in store.events(limit=self.events_limit)],
            "last": last,
            "switch": one(store.last_event(SWITCH_KINDS, SWITCH_OUTCOMES)),
            "states": {
                owner: {key: store.plugin_state(owner).get(key) for key in keys} for owner, keys in STATES.items()
            },
        }

    def _write(self, data: dict[str, Any]) -> None:
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(data, out, default=str, sort_keys=True)
            os.replace(temporary, self.path)  # readers see the old file or the new one, never half of one
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
