"""``wazo-ha doctor``'s disk space check: the filesystems HA writes to on this node.

Which directories: the synced ones (``file_sync.directories`` and
``file_sync.tenant_sounds_dir``: the master reads them, the slave receives
them), ``doctor.spool_dirs`` (a serving slave records voicemail there), the
state store's and the log's directories. Each is checked on the filesystem
that holds it (its nearest existing parent), once per filesystem.

On the master the size of the synced directories is added to the detail:
the slave needs that much room, which cannot be measured from the master
(the sync key runs nothing but the receiver, and PostgreSQL does not tell
free disk space); ``wazo-ha doctor --as slave`` measures it on the slave.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from .doctor import CheckResult

MIB = 1024 * 1024
#: Counting the synced directories' size stops after this many seconds (the figure is then a lower bound).
SIZE_WALK_SECONDS = 5.0


def disk_space(settings, role: str) -> CheckResult:
    """PASS/WARN/FAIL on the least free filesystem, against ``doctor.disk_free_warn_mb``/``_fail_mb``."""
    warn_mb = float(settings.get("doctor.disk_free_warn_mb"))
    fail_mb = float(settings.get("doctor.disk_free_fail_mb"))
    synced = synced_directories(settings)
    wanted = {
        **{path: "synced" for path in synced},
        **{settings.resolve(path, key="doctor.spool_dirs"): "spool" for path in settings.get("doctor.spool_dirs")},
        settings.path("state_db").parent: "state",
        settings.path("log_file").parent: "log",
    }
    filesystems: dict[int, tuple[Path, list[str], float]] = {}  # st_dev → (a path on it, what, free MiB)
    for path, what in wanted.items():
        existing = _nearest_existing(path)
        try:
            info = os.statvfs(existing)
            device = os.stat(existing).st_dev
        except OSError as exc:
            return CheckResult.fail(f"cannot measure {path}: {exc.strerror}", "check the path and permissions")
        if device in filesystems:
            kinds = filesystems[device][1]
            if what not in kinds:
                kinds.append(what)
            continue
        filesystems[device] = (existing, [what], info.f_bavail * info.f_frsize / MIB)
    parts = [f"{path}: {free:,.0f} MiB free ({', '.join(kinds)})" for path, kinds, free in filesystems.values()]
    detail = "; ".join(parts)
    if role == "master" and synced:
        size, complete = directories_size(synced)
        bound = "" if complete else "at least "
        detail += (
            f"; the synced directories hold {bound}{size / MIB:,.0f} MiB: the slave needs that much room "
            "(not measurable from here; `wazo-ha doctor --as slave` measures the slave's free space)"
        )
    short = [(path, free) for path, _, free in filesystems.values() if free < warn_mb]
    if not short:
        return CheckResult.passed(detail)
    fix = (
        f"free space on {', '.join(str(path) for path, _ in short)} (old recordings, logs, backups), or grow "
        "the filesystem; a slave that fills its disk while serving loses voicemail"
    )
    if any(free < fail_mb for _, free in short):
        return CheckResult.fail(f"{detail}; below {fail_mb:g} MiB (doctor.disk_free_fail_mb)", fix)
    return CheckResult.warn(f"{detail}; below {warn_mb:g} MiB (doctor.disk_free_warn_mb)", fix)


def synced_directories(settings) -> list[Path]:
    paths = [settings.resolve(path, key="file_sync.directories") for path in settings.get("file_sync.directories")]
    tenants = settings.get("file_sync.tenant_sounds_dir")
    if tenants:
        paths.append(settings.resolve(tenants, key="file_sync.tenant_sounds_dir"))
    return paths


def directories_size(paths: list[Path], seconds: float = SIZE_WALK_SECONDS) -> tuple[int, bool]:
    """Bytes in the regular files below ``paths`` (symlinks not followed); False when cut short by ``seconds``."""
    deadline = time.monotonic() + seconds
    total = 0
    stack = [str(path) for path in paths]
    while stack:
        if time.monotonic() > deadline:
            return total, False
        directory = stack.pop()
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total, True


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
