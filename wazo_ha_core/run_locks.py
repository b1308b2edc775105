"""One run at a time per node: an exclusive ``flock`` on a file in ``paths.run_dir``.

The lock is taken without waiting: a second run fails at once with
:class:`~wazo_ha_core.errors.AlreadyRunning` naming what runs and the lock
file. Closing the file releases it, so a killed process never leaves a stale
lock behind. The replication lock file holds the holder's PID, for an operator
who looks; the edit lock is left unwritten, so that re-applying the settings in
force rewrites no file at all.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import AlreadyRunning


@contextlib.contextmanager
def exclusive(run_dir: Path, name: str, what: str, *, record_pid: bool = True) -> Iterator[None]:
    """Hold ``run_dir/name`` exclusively, or raise AlreadyRunning("<what> already running …") at once."""
    run_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    path = run_dir / name
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(f"{what} already running (lock {path} is held by another run)") from None
        if record_pid:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)
