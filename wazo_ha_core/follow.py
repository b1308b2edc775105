"""Follow mode on the master: a configuration change replicated, and a saved file synced, within seconds.

:class:`Follower` is the loop of ``wazo-ha follow``. It adds no way of
copying: it decides *when* to call the existing operations, each with its
lock, journal and verification (:func:`~wazo_ha_core.replication.replicate`
and :func:`~wazo_ha_core.file_sync.sync_files`).

* **Database**: every ``follow.poll_interval`` seconds each replication
  backend's :meth:`~wazo_ha_core.extensions.ReplicationBackend.change_signal`
  is read (``pg_dump``: one query on a kept connection). When its ``tables``
  reading moved, a replication starts; when only ``any_write`` moved, one
  starts once ``tables`` has not caught up within the signal's ``lag``. The
  readings taken *before* a run become the new baseline when it succeeds,
  so a write that lands during the run triggers the next one. A follow run
  that copies nothing is neither journaled nor logged above DEBUG
  (``journal_skipped=False``): it writes nothing to the master's database,
  so it cannot look like a change itself, and a busy PBX (whose call
  records move ``any_write``) does not fill the journal.
* **Files**: inotify watches (``watchdog``) on the synced directories;
  ``follow.debounce`` seconds after the first write, rename or delete the
  directories are synced.
* Two runs of one kind start at least ``follow.min_interval`` apart; after a
  failure the next waits ``min_interval`` * 2^failures, at most
  ``follow.max_backoff``. A run refused because another holds the lock
  (cron's fallback run) is tried again after ``min_interval``.
* **Copy-back** (:class:`CopyBackChecks`): every ``follow.copy_back_interval``
  seconds the schedule's automatic check (:func:`~wazo_ha_core.copy_back.auto.check`,
  as ``wazo-ha copy-back --auto``: same decision, back-off, notifications,
  journal and locks) runs in a thread of its own with an engine of its own,
  so the copy-back owed after a failover starts within seconds of the
  failback, and a copy-back of minutes never holds up the database and file
  rounds. A check meeting the schedule's (the lock of the checks) is skipped:
  one of them runs, never both. A copy-back and a file sync exclude each
  other by the file sync's lock: a sync due meanwhile is tried again after
  ``min_interval``.
* Both kinds run once at start (the slave may have missed changes while no
  follower ran); a run that finds nothing to do stays silent.
* Steady state writes no log line: starts, copies, syncs, failures and
  recoveries do.

Time limits: a reading is bounded by the plugin (``timeouts.connect``), a
run by the operation's own limits; the loop ends within one poll interval
(or the run in progress) of ``stop``, and waits at most
:data:`COPY_BACK_STOP_WAIT` seconds for a copy-back in progress (one cut
short is journaled "interrupted" by the next check and retried: it is safe
to interrupt at any point).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import AlreadyRunning, WazoHAError

if TYPE_CHECKING:
    from .engine import HAEngine
    from .extensions import ChangeSignal, ReplicationBackend

log = logging.getLogger(__name__)

#: How long a stopping follower waits for a copy-back in progress before leaving it to end with the process.
COPY_BACK_STOP_WAIT = 20.0

#: watchdog event types that mean content or names changed (not opened, read, or closed unwritten).
WRITE_EVENTS = frozenset({"created", "modified", "deleted", "moved", "closed"})


@dataclass
class Pace:
    """When the next run of one kind may start: ``min_interval`` apart, doubling after failures."""

    min_interval: float
    max_backoff: float
    failures: int = 0
    not_before: float = 0.0

    def started(self, now: float) -> None:
        self.not_before = now + self.min_interval

    def succeeded(self) -> None:
        self.failures = 0

    def failed(self, now: float) -> float:
        """Record a failure; returns the delay before the next try."""
        self.failures += 1
        delay = min(self.min_interval * 2 ** min(self.failures, 30), self.max_backoff)
        self.not_before = now + delay
        return delay

    def busy(self, now: float) -> None:
        """Another run held the lock: try again soon, not a failure."""
        self.not_before = now + self.min_interval

    def ready(self, now: float) -> bool:
        return now >= self.not_before


@dataclass
class DatabaseWatch:
    """The change signals of the replication backends and what is due (no I/O: fed readings)."""

    baseline: list[ChangeSignal] | None = None
    any_write_since: float | None = None  # when any_write first moved with tables unchanged
    startup: bool = True

    def due(self, readings: list[ChangeSignal], now: float) -> bool:
        if self.startup or self.baseline is None or len(self.baseline) != len(readings):
            return True
        if any(new.tables != old.tables for new, old in zip(readings, self.baseline, strict=True)):
            return True
        moved = [new for new, old in zip(readings, self.baseline, strict=True) if new.any_write != old.any_write]
        if not moved:
            self.any_write_since = None
            return False
        if self.any_write_since is None:
            self.any_write_since = now
        return now - self.any_write_since >= max(reading.lag for reading in moved)

    def covered(self, readings: list[ChangeSignal]) -> None:
        """A run that started after ``readings`` succeeded: they are the new baseline."""
        self.baseline, self.any_write_since, self.startup = readings, None, False


@dataclass
class FileEvents:
    """Set by watchdog's thread, read by the loop: when the first unsynced write happened."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    first: float | None = None
    count: int = 0

    def saw(self, now: float) -> None:
        with self.lock:
            if self.first is None:
                self.first = now
            self.count += 1

    def take(self, debounce: float, now: float) -> int:
        """The number of events to sync now (0 when none, or still within ``debounce`` of the first)."""
        with self.lock:
            if self.first is None or now - self.first < debounce:
                return 0
            count, self.first, self.count = self.count, None, 0
            return count

    def put_back(self, count: int, now: float) -> None:
        with self.lock:
            self.first = now if self.first is None else min(self.first, now)
            self.count += count


class CopyBackChecks:
    """The automatic copy-back check every ``interval`` seconds, in a daemon thread with its own engine.

    ``make_engine`` builds that engine in the thread (its store connection and plugin instances are its own:
    nothing is shared with the loop's rounds but the locks on disk). A check never raises out of the thread;
    its outcome is journaled by the check, and logged here only when what it says changes.
    """

    def __init__(self, make_engine: Callable[[], HAEngine], interval: float):
        self.make_engine, self.interval = make_engine, interval
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="copy-back-checks", daemon=True)
        self.checks = 0
        self._said = ""

    def start(self) -> None:
        self.thread.start()

    def stop(self, wait: float = COPY_BACK_STOP_WAIT) -> bool:
        """Ask the thread to stop; ``False`` when a check (a copy-back) still runs after ``wait`` seconds."""
        self.stopping.set()
        self.thread.join(timeout=wait)
        return not self.thread.is_alive()

    def _loop(self) -> None:
        engine = None
        try:
            engine = self.make_engine()
            while not self.stopping.is_set():
                self._check(engine)
                self.stopping.wait(self.interval)
        except Exception:  # the engine could not be built (settings, store): the schedule still checks
            log.exception("follow: automatic copy-back checks stopped; the schedule still runs them")
        finally:
            if engine is not None:
                engine.store.close()

    def _check(self, engine: HAEngine) -> None:
        from .copy_back.auto import check

        self.checks += 1
        try:
            result = check(engine, quiet=True)
        except AlreadyRunning:  # the schedule's check runs now: it does the same work
            return
        except Exception as exc:  # the store or a probe plugin failed: the next check retries
            self._say(f"follow: automatic copy-back check failed: {_text(exc)}")
            return
        if result.get("ran"):
            self._said = ""
            level = logging.INFO if result.get("outcome") == "ok" else logging.WARNING
            log.log(level, "follow: copy-back attempt %s: %s", result.get("outcome"), result.get("message", ""))
        elif result.get("owed"):
            self._say(f"follow: copy-back owed, not run yet: {result['why']}")
        elif self._said:
            self._said = ""
            log.info("follow: no copy-back owed")

    def _say(self, message: str) -> None:
        if message != self._said:
            self._said = message
            log.info("%s", message)


class Follower:
    """``wazo-ha follow``: see the module's docstring."""

    def __init__(
        self,
        engine: HAEngine,
        clock: Callable[[], float] = time.monotonic,
        copy_back_engine: Callable[[], HAEngine] | None = None,
    ):
        settings = engine.settings
        self.engine, self.clock = engine, clock
        self.poll_interval = float(settings.get("follow.poll_interval"))
        self.debounce = float(settings.get("follow.debounce"))
        min_interval, max_backoff = (
            float(settings.get("follow.min_interval")),
            float(settings.get("follow.max_backoff")),
        )
        self.db_pace, self.file_pace = Pace(min_interval, max_backoff), Pace(min_interval, max_backoff)
        self.database = DatabaseWatch()
        self.files = FileEvents()
        self.files.saw(clock())  # one sync at start
        self.backends: list[ReplicationBackend] = []
        self.observer = None
        self._said: dict[str, str] = {}  # topic → last message, to log each condition once
        interval = settings.get("follow.copy_back_interval")
        self.copy_back_checks = (
            CopyBackChecks(copy_back_engine or _engine_like(engine), float(interval)) if interval else None
        )

    # --- the loop -----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Poll, replicate and sync until ``stop`` is set."""
        self.backends = self._signalling_backends()
        watched = self._watch_files()
        checks = self.copy_back_checks
        log.info(
            "follow started: database change signal every %g s from %s; files: %s; copy-back check %s",
            self.poll_interval,
            ", ".join(backend.name for backend in self.backends) or "no backend (left to the schedule)",
            f"{len(watched)} director{'y' if len(watched) == 1 else 'ies'} watched" if watched else "none watched",
            f"every {checks.interval:g} s" if checks else "left to the schedule",
        )
        if checks is not None:
            checks.start()
        try:
            while not stop.is_set():
                self.round()
                stop.wait(self.poll_interval)
        finally:
            if checks is not None and not checks.stop():
                log.warning(
                    "follow: a copy-back still runs after %g s; it ends with this process "
                    "(the next check journals it as interrupted and retries it)",
                    COPY_BACK_STOP_WAIT,
                )
            if self.observer is not None:
                self.observer.stop()
                self.observer.join(timeout=10)
            for backend in self.backends:
                backend.close_change_signal()
            log.info("follow stopped")

    def round(self) -> None:
        """One poll of the database signal, then whatever is due (a replication, a file sync)."""
        try:
            self._database_round()
        except Exception:  # the loop must outlive a store hiccup or a plugin bug; the next round retries
            log.exception("follow: database round failed")
        try:
            self._files_round()
        except Exception:
            log.exception("follow: files round failed")

    # --- database ---------------------------------------------------------------------------------

    def _signalling_backends(self) -> list[ReplicationBackend]:
        """The enabled replication backends that offer a change signal (the others are left to the schedule)."""
        backends = self.engine.loader.load("replication")
        for backend in backends:
            if not _has_signal(backend):
                log.warning(
                    "follow: replication backend %s has no change signal; the schedule replicates", backend.name
                )
        return [backend for backend in backends if _has_signal(backend)]

    def _database_round(self) -> None:
        if not self.backends:
            return
        now = self.clock()
        try:
            readings = [backend.change_signal() for backend in self.backends]
        except WazoHAError as exc:
            self._say("signal", f"follow: database change signal unavailable (retried every poll): {exc}")
            return
        self._clear("signal", "follow: database change signal readable again")
        if not self.database.due(readings, now) or not self.db_pace.ready(now):
            return
        self.db_pace.started(now)
        try:
            if not self._is_master("replication"):
                return
            self.engine.replicate(journal_skipped=False)
        except AlreadyRunning:
            self.db_pace.busy(self.clock())
            return
        except Exception as exc:  # journaled and logged by the operation (or the store failed): back off
            delay = self.db_pace.failed(self.clock())
            log.warning("follow: replication failed (%s); next try in %g s", _text(exc), delay)
            return
        if self.db_pace.failures:
            log.info("follow: replication works again")
        self.db_pace.succeeded()
        self.database.covered(readings)

    # --- files ------------------------------------------------------------------------------------

    def _watch_files(self) -> list[Path]:
        if not self.engine.settings.enabled_plugins("file_sync"):
            self.files.first = None
            return []
        directories = _watched_directories(self.engine.settings)
        if not directories:
            return []
        import warnings

        from watchdog.events import FileSystemEventHandler  # the long-running command only
        from watchdog.observers import Observer

        # watchdog 7 warns (on stderr) when a directory created with sub-directories at once is watched twice by
        # its own recursive registration; it keeps one callback, nothing is lost (tests/follow: a new tenant's tree).
        warnings.filterwarnings("ignore", r"Callback with id .* already exists for watch", RuntimeWarning, "watchdog")

        events, clock = self.files, self.clock

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in WRITE_EVENTS:
                    events.saw(clock())

        observer, handler, watched = Observer(), Handler(), []
        for directory in directories:
            try:
                observer.schedule(handler, str(directory), recursive=True)
            except OSError as exc:  # e.g. fs.inotify.max_user_watches reached
                log.warning("follow: cannot watch %s (%s); the schedule still syncs it", directory, exc)
                continue
            watched.append(directory)
        observer.daemon = True
        observer.start()
        self.observer = observer
        return watched

    def _files_round(self) -> None:
        now = self.clock()
        if not self.file_pace.ready(now):
            return
        count = self.files.take(self.debounce, now)
        if not count:
            return
        self.file_pace.started(now)
        try:
            if not self._is_master("file sync"):
                self.files.put_back(count, now)
                return
            report = self.engine.sync_files()
        except AlreadyRunning:
            self.file_pace.busy(self.clock())
            self.files.put_back(count, now)
            return
        except Exception as exc:  # journaled by the operation (or the store failed): back off
            delay = self.file_pace.failed(self.clock())
            self.files.put_back(count, now)
            log.warning("follow: file sync failed (%s); next try in %g s", _text(exc), delay)
            return
        if self.file_pace.failures:
            log.info("follow: file sync works again")
        self.file_pace.succeeded()
        if not report.initialised:
            self._say("files", "follow: file sync is not set up (wazo-ha sync init); files are not followed yet")
            return
        self._clear("files", "follow: file sync set up")
        log.info(
            "follow: files synced after %d change event(s): %s", count, "; ".join(r["message"] for r in report.results)
        )

    # --- helpers ----------------------------------------------------------------------------------

    def _is_master(self, what: str) -> bool:
        node_type = self.engine.current_settings().node_type
        if node_type != "master":
            self._say("role", f"follow: this node is {node_type!r}, not the master: no {what} until it is")
            return False
        self._clear("role", "follow: this node is the master again")
        return True

    def _say(self, topic: str, message: str, level: int = logging.WARNING) -> None:
        if self._said.get(topic) != message:
            self._said[topic] = message
            log.log(level, "%s", message)

    def _clear(self, topic: str, message: str) -> None:
        if self._said.pop(topic, None) is not None:
            log.info("%s", message)


def _text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, WazoHAError) else f"{type(exc).__name__}: {exc}"


def _engine_like(engine: HAEngine) -> Callable[[], HAEngine]:
    """A factory of engines of ``engine``'s class on the same settings (the copy-back checks' own)."""
    return lambda: type(engine)(engine.settings)


def _has_signal(backend: Any) -> bool:
    from .extensions import ReplicationBackend

    return type(backend).change_signal is not ReplicationBackend.change_signal


def _watched_directories(settings) -> list[Path]:
    """The synced directories that exist, resolved under ``root``, none inside another (watches are recursive)."""
    wanted = [settings.resolve(path) for path in settings.get("file_sync.directories")]
    if settings.get("file_sync.voicemail"):  # a message left or read on the master reaches the slave in seconds
        wanted.append(settings.resolve(settings.get("copy_back.voicemail_dir")))
    tree = settings.get("file_sync.tenant_sounds_dir")
    if tree:
        wanted.append(settings.resolve(tree))  # new tenants and their directories appear inside it
    # The tenant directories file_sync.sync_paths lists are all inside ``tree``.
    directories: list[Path] = []
    for path in sorted(set(wanted), key=lambda path: len(path.parts)):
        if any(path.is_relative_to(parent) for parent in directories):
            continue
        if not path.is_dir():
            log.info("follow: %s does not exist; not watched (the schedule syncs it once it does)", path)
            continue
        directories.append(path)
    return directories
