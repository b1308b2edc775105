"""One run at a time per node: an exclusive ``flock`` on a file in ``paths.run_dir``.

By default the lock is taken without waiting: a second run fails at once with
:class:`~wazo_ha_core.errors.AlreadyRunning` naming what runs, the lock file
and the holder's PID. With ``wait`` (an operator's ``wazo-ha replicate``
meeting the follower's run) it retries every 0.1 s for up to ``wait``
seconds, telling ``waiting`` once, then fails the same way. Closing the file
releases it, so a killed process never leaves a stale lock behind. A lock
file holds the holder's PID, for an operator who looks, and, when the lock is
shared by two operations (the file-sync lock: a file sync or a copy-back),
what holds it, so the refusal names the operation that runs; the edit lock is
left unwritten, so that re-applying the settings in force rewrites no file at
all.

Ordering rule (no deadlock): a run that needs two locks takes them in the
order of :data:`ORDER` and never waits for an earlier one while holding a
later one. Today only the copy-back holds two (``copy-back.lock``, then
``file-sync.lock``).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import AlreadyRunning

#: How often a waiting run retries the lock (flock has no timeout of its own).
RETRY_SECONDS = 0.1

#: The order in which a run that holds several locks takes them.
ORDER = ("copy-back.lock", "file-sync.lock")


@contextlib.contextmanager
def exclusive(
    run_dir: Path,
    name: str,
    what: str,
    *,
    record_pid: bool = True,
    wait: float = 0.0,
    waiting: Callable[[str], None] | None = None,
    holder: str | None = None,
) -> Iterator[None]:
    """Hold ``run_dir/name`` exclusively, or raise AlreadyRunning("<what> already running …").

    At once by default; with ``wait`` > 0, after trying for ``wait`` seconds (``waiting(message)`` is called
    once, when the first try finds the lock held). ``holder``: the operation recorded beside the PID in a
    lock that several operations share; a run that finds it held by another operation says which
    ("file sync: a copy-back is running …").
    """
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    path = run_dir / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid, other = _holder(path)
                running = f"{what}: a {other} is running" if other and other != what else f"{what} already running"
                if time.monotonic() >= deadline:
                    waited = f"; waited {wait:g} s" if wait > 0 else ""
                    raise AlreadyRunning(f"{running} (lock {path} is held by another run{pid}{waited})") from None
                if waiting is not None:
                    waiting(f"{running} (lock {path} held{pid}): waiting up to {wait:g} s for it to end")
                    waiting = None
                time.sleep(RETRY_SECONDS)  # polling the lock: flock cannot wait with a deadline
        if record_pid:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}{' ' + holder if holder else ''}\n".encode())
        yield
    finally:
        os.close(fd)


def _holder(path: Path) -> tuple[str, str]:
    """``(", PID n", operation)`` from the lock file (``"n"`` or ``"n operation"``); empty strings when unwritten."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return "", ""
    pid, _, other = text.partition(" ")
    return (f", PID {pid}", other) if pid.isdigit() else ("", "")
