"""Files an edit step rewrites and may have to put back exactly.

:class:`ExactSnapshot` keeps a file's bytes, mode and owner (or its absence);
:func:`replace_file` writes atomically, keeping the owner of the file it
replaces (``pg_hba.conf`` belongs to ``postgres``, not to us) and skipping the
write when the content is already right — so a repeated edit rewrites nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .compat import write_atomically


@dataclass(frozen=True)
class ExactSnapshot:
    """A file as it was: content (``None``: absent), permission bits and owner."""

    path: Path
    content: bytes | None
    mode: int = 0o644
    uid: int = -1
    gid: int = -1

    @classmethod
    def take(cls, path: Path) -> ExactSnapshot:
        try:
            stat = path.stat()
            return cls(path, path.read_bytes(), stat.st_mode & 0o7777, stat.st_uid, stat.st_gid)
        except FileNotFoundError:
            return cls(path, None)

    def restore(self) -> None:
        """Put the file back as it was; a no-op when it already is."""
        if self.content is None:
            self.path.unlink(missing_ok=True)
        else:
            replace_file(self.path, self.content, self.mode, owner=(self.uid, self.gid))


def replace_file(path: Path, content: bytes, mode: int, owner: tuple[int, int] | None = None) -> bool:
    """Make ``path`` hold ``content``; return whether anything was written.

    Readers see the old or the new file, never half. ``owner`` defaults to the
    owner of the file replaced, or of the directory for a new file.
    """
    try:
        stat = path.stat()
    except FileNotFoundError:
        stat = None
    if stat is not None and stat.st_mode & 0o7777 == mode and path.read_bytes() == content:
        if owner is None or (stat.st_uid, stat.st_gid) == owner or owner == (-1, -1):
            return False
    path.parent.mkdir(parents=True, exist_ok=True)
    if owner is None or owner == (-1, -1):
        reference = stat or path.parent.stat()
        owner = (reference.st_uid, reference.st_gid)
    write_atomically(path, content, mode, owner=owner)
    return True


def remove_file(path: Path) -> bool:
    """Remove ``path``; return whether it existed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
