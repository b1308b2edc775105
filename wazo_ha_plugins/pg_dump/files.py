"""Files the plugin trusts (a password, a root certificate): one check of their type and mode."""

from __future__ import annotations

import stat
from pathlib import Path


def file_mode_problem(path: Path, forbidden: int, must_not: str, fix: str) -> str | None:
    """Why ``path`` may not be trusted (missing, not a regular file, a ``forbidden`` mode bit set); else None.

    The text starts after the file's name: the caller names the file as its setting does.
    """
    try:
        info = path.stat()
    except OSError as exc:
        return f": {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return " is not a regular file"
    if info.st_mode & forbidden:
        return f" has mode {stat.S_IMODE(info.st_mode):04o}; it must not be {must_not}: {fix} {path}"
    return None
