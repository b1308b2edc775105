"""The fence guard: a process apart from the watch that stops telephony when the watch stops pushing a deadline.

Why: the lease keeper (:mod:`.driver`) stops telephony before its lease can
expire, but only while its own process runs. A ``wazo-ha watch`` frozen
(``SIGSTOP``, a VM paused, a process stuck in the kernel) or killed leaves
Asterisk answering, and once the lease expires a standby takes over: two
nodes serve. Patroni arms a watchdog device for the same reason; here a tiny
process of its own, ``wazo-ha fence-guard``, plays the watchdog.

The contract between the two processes is one file, ``<paths.run_dir>/fence.json``:

* the keeper **arms** it after every acquisition or renewal sent at ``t``
  with ``fence_at = t + guard_deadline`` on ``CLOCK_BOOTTIME`` (one clock
  for every process of the machine, counting suspended time), before it
  starts anything; it **disarms** it only once its telephony is stopped;
* the guard reads it every ``guard_poll`` seconds and, once ``now >=
  fence_at`` for an armed token, stops telephony through the same service
  managers as the watch (``give_back``), once per arming (retried while the
  stop fails). It never talks to etcd.

So the guard starts stopping at most ``guard_deadline + guard_poll`` after
the last renewal that went out, and ``coordination.config`` checks that this
comes no later than the keeper's own fencing point (``lease_ttl -
stop_margin``): the stop then has ``stop_margin`` seconds to finish before
the lease can expire, the same budget as the keeper's own stop. A file
written during another boot (``boot_id``) is ignored: ``/run`` is emptied at
boot anyway, and a rebooted node starts without the lock.

One guard per node: it holds an exclusive ``flock`` on
``<run_dir>/fence-guard.lock`` (with its PID inside) while it runs. The
keeper starts one (:meth:`FenceControl.ensure`) when none holds the lock, in
a session of its own, so that freezing or killing the watch leaves the guard
running; a node whose guard cannot be started does not take the lock.

The guard's lifetime follows the watch's: the watch holds ``<run_dir>/watch.lock``
(``flock``, released by the kernel when the watch ends however it ends; a
frozen watch still holds it). Once no watch holds it and nothing is armed
(disarmed, or the last arming already fenced), the guard exits. A watch that
crashed while serving thus leaves its guard to fence first.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

FENCE_FILE = "fence.json"
FENCED_FILE = "fenced.json"  # written by the guard only: the last arming it stopped telephony for
LOCK_FILE = "fence-guard.lock"
WATCH_LOCK_FILE = "watch.lock"
RESPAWN_AFTER = 10.0  # seconds between two attempts to start a guard that did not start
RETRY_AFTER_FAILED_STOP = 1.0


def boot_clock() -> float:
    """Seconds on the machine-wide monotonic clock that keeps counting while suspended."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


@dataclass(frozen=True)
class Arming:
    """What the fence file says: telephony may run under ``token`` until ``fence_at`` (``CLOCK_BOOTTIME``)."""

    token: int | None
    fence_at: float | None
    boot: str

    @property
    def armed(self) -> bool:
        return self.token is not None and self.fence_at is not None


def due(arming: Arming | None, now: float, boot: str, fenced: tuple | None) -> bool:
    """Whether the guard must stop telephony now (pure).

    ``fenced`` is the ``(token, fence_at)`` the guard last stopped for: one stop per arming. A file from
    another boot is ignored.
    """
    if arming is None or not arming.armed or arming.boot != boot:
        return False
    return now >= arming.fence_at and (arming.token, arming.fence_at) != fenced


class FenceFile:
    """``<run_dir>/fence.json``: written by the keeper only (atomically, mode 0600), read by the guard."""

    def __init__(self, directory: Path, name: str = FENCE_FILE):
        self.directory = directory
        self.path = directory / name

    def arm(self, token: int, fence_at: float) -> None:
        self._write({"token": token, "fence_at": fence_at, "boot": boot_id()})

    def disarm(self) -> None:
        self._write({"token": None, "fence_at": None, "boot": boot_id()})

    def read(self) -> Arming | None:
        """The arming, ``None`` when there is no file. An unreadable file counts as armed and due (fail safe)."""
        try:
            data = json.loads(self.path.read_text())
            return Arming(data["token"], data["fence_at"], data["boot"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.error("fence file %s unreadable (%s): treated as due", self.path, exc)
            return Arming(-1, 0.0, boot_id())

    def _write(self, data: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(data, handle)
        os.replace(temporary, self.path)


def finished(arming: Arming | None, boot: str, fenced: tuple | None, watch_alive: bool) -> bool:
    """Whether the guard may exit (pure): no watch any more, and nothing armed left to fence."""
    if watch_alive:
        return False
    if arming is None or not arming.armed or arming.boot != boot:
        return True
    return (arming.token, arming.fence_at) == fenced


def _held(path: Path) -> bool:
    """Whether another process holds an exclusive ``flock`` on ``path``."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        return True
    else:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return False
    finally:
        os.close(descriptor)


def guard_running(directory: Path) -> int | None:
    """The PID of the guard holding ``fence-guard.lock``, 0 if it holds it but its PID is unreadable; else None."""
    path = directory / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            text = os.pread(descriptor, 32, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else 0
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)


class FenceControl:
    """The keeper's side: arm, disarm, and make sure a guard runs (starting one with ``command``)."""

    def __init__(self, directory: Path, command: Sequence[str], deadline: float, start_timeout: float = 10.0):
        self.file = FenceFile(directory)
        self.directory = directory
        self.command = list(command)
        self.deadline = deadline  # seconds after a renewal was sent
        self.start_timeout = start_timeout
        self.token: int | None = None  # as last armed
        self.fence_at: float | None = None
        self._child: subprocess.Popen | None = None
        self._watch_lock: int | None = None  # held for the watch's life: the guard outlives it only to fence
        self._failed_at: float | None = None

    def arm(self, token: int, sent_at: float) -> None:
        """Push the guard's deadline to ``sent_at + deadline`` for ``token`` (never backwards for one token)."""
        fence_at = sent_at + self.deadline
        if token == self.token and self.fence_at is not None and fence_at <= self.fence_at:
            return
        self.file.arm(token, fence_at)
        self.token, self.fence_at = token, fence_at

    def disarm(self) -> None:
        """Telephony is stopped: nothing for the guard to do."""
        self.file.disarm()
        self.token = self.fence_at = None

    def fenced_by_guard(self) -> tuple | None:
        """The ``(token, fence_at)`` the guard last stopped telephony for, or ``None``."""
        arming = FenceFile(self.directory, FENCED_FILE).read()
        return (arming.token, arming.fence_at) if arming is not None and arming.armed else None

    def may_start(self, token: int, now: float) -> bool:
        """Whether a start under ``token`` may go on at ``now``: armed for it and before the guard's deadline."""
        return self.token == token and self.fence_at is not None and now < self.fence_at

    def ensure(self) -> bool:
        """A guard holds the lock (started here if none did, waiting up to ``start_timeout``).

        Takes the watch lock first (kept until this process ends). ``False`` when another watch holds it, or
        the guard did not start (then not tried again for ``RESPAWN_AFTER`` seconds).
        """
        if self._child is not None and self._child.poll() is not None:
            self._child = None  # reaped
        if not self._hold_watch_lock():
            log.error("another wazo-ha watch holds %s: one watch per node", self.directory / WATCH_LOCK_FILE)
            return False
        if guard_running(self.directory) is not None:
            return True
        if self._failed_at is not None and time.monotonic() - self._failed_at < RESPAWN_AFTER:
            return False
        log.warning("starting the fence guard: %s", " ".join(self.command))
        self._child = subprocess.Popen(  # a session of its own: signals to the watch's group do not reach it
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if guard_running(self.directory) is not None:
                return True
            if self._child.poll() is not None:
                break
            time.sleep(0.05)  # polling another process's start-up, bounded by start_timeout
        log.error("the fence guard did not start (exit status %s)", self._child.poll())
        self._failed_at = time.monotonic()
        return False

    def _hold_watch_lock(self) -> bool:
        if self._watch_lock is not None:
            return True
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.directory / WATCH_LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        self._watch_lock = descriptor
        return True


class FenceGuard:
    """The guard's loop (``wazo-ha fence-guard``): read the file every ``poll`` s, stop telephony when due."""

    def __init__(
        self,
        directory: Path,
        stop: Callable[[], object],
        poll: float,
        clock: Callable[[], float] = boot_clock,
        on_fenced: Callable[[int, float], None] | None = None,
    ):
        self.file = FenceFile(directory)
        self.directory = directory
        self.stop = stop
        self.poll = poll
        self.clock = clock
        self.on_fenced = on_fenced
        self.fenced: tuple | None = None
        self.boot = boot_id()
        self._lock_descriptor: int | None = None

    def lock(self) -> bool:
        """Take the one-guard-per-node lock and write our PID in it; ``False`` if another guard holds it."""
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(descriptor)
            return False
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        self._lock_descriptor = descriptor
        return True

    def check(self) -> str | None:
        """One poll: stop telephony if due. ``"stopped"``, ``"failed"`` (retried), or ``None`` (nothing due)."""
        arming = self.file.read()
        now = self.clock()
        if not due(arming, now, self.boot, self.fenced):
            return None
        late = now - arming.fence_at
        log.warning("fence guard: the watch did not push its deadline (token %s, %.1f s late): stopping telephony",
                    arming.token, late)  # fmt: skip
        try:
            self.stop()
        except Exception as exc:  # a failed stop is retried: nothing else may end the guard
            log.error("fence guard: stopping telephony failed: %s (retried)", exc)
            return "failed"
        self.fenced = (arming.token, arming.fence_at)
        try:  # tells a watch that was only late (not frozen) that its telephony is down: it starts it again
            FenceFile(self.directory, FENCED_FILE).arm(arming.token, arming.fence_at)
        except OSError as exc:
            log.error("fence guard: cannot record the stop in %s: %s", FENCED_FILE, exc)
        log.warning("fence guard: telephony stopped (token %s) %.1f s after the deadline", arming.token,
                    self.clock() - arming.fence_at)  # fmt: skip
        if self.on_fenced is not None:  # journaled in a thread: a slow store must not delay the next look
            late = self.clock() - arming.fence_at
            threading.Thread(target=self._record, args=(arming.token, late), daemon=True).start()
        return "stopped"

    def _record(self, token: int, late: float) -> None:
        try:
            self.on_fenced(token, late)
        except Exception:
            log.exception("fence guard: recording the stop failed")

    def run(self, stop: threading.Event) -> None:
        """Poll until ``stop`` is set, or until no watch runs and nothing is left to fence."""
        while not stop.is_set():
            failed = self.check() == "failed"
            if finished(self.file.read(), self.boot, self.fenced, _held(self.directory / WATCH_LOCK_FILE)):
                log.warning("fence guard: no watch runs and nothing is armed: exiting")
                return
            stop.wait(RETRY_AFTER_FAILED_STOP if failed else self.poll)
