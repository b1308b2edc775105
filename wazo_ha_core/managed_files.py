"""Files an edit step rewrites and may have to put back exactly.

:class:`ExactSnapshot` keeps a file's bytes, mode and owner (or its absence),
and whether it was a symbolic link (and to what); :func:`replace_file` writes
atomically, keeping the owner of the file it replaces (``pg_hba.conf`` belongs
to ``postgres``, not to us) and skipping the write when the content is already
right — so a repeated edit rewrites nothing. :func:`edit_marked_block` edits
our marked block inside a file someone else owns, on bytes, keeping the file's
own line endings and encoding, and refuses when the markers are not exactly one
begin line followed by one end line.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from .compat import write_atomically
from .errors import EditStepError


@dataclass(frozen=True)
class ExactSnapshot:
    """A file as it was: content (``None``: absent), permission bits, owner and symlink target.

    For a symbolic link, ``link`` is the link's text (``os.readlink``) and
    content, mode and owner are those of the file it points to.
    """

    path: Path
    content: bytes | None
    mode: int = 0o644
    uid: int = -1
    gid: int = -1
    link: str | None = None

    @classmethod
    def take(cls, path: Path) -> ExactSnapshot:
        link = os.readlink(path) if path.is_symlink() else None
        try:
            stat = path.stat()
            return cls(path, path.read_bytes(), stat.st_mode & 0o7777, stat.st_uid, stat.st_gid, link)
        except FileNotFoundError:
            return cls(path, None, link=link)

    def restore(self) -> None:
        """Put the file back as it was (a link as the same link); a no-op when it already is."""
        if self.link is not None:
            if not (self.path.is_symlink() and os.readlink(self.path) == self.link):
                _replace_with_symlink(self.path, self.link)
            if self.content is not None:
                replace_file(self.path, self.content, self.mode, owner=(self.uid, self.gid), follow_symlink=True)
        elif self.content is None:
            self.path.unlink(missing_ok=True)
        else:
            replace_file(self.path, self.content, self.mode, owner=(self.uid, self.gid))


def replace_file(
    path: Path, content: bytes, mode: int, owner: tuple[int, int] | None = None, follow_symlink: bool = False
) -> bool:
    """Make ``path`` hold ``content``; return whether anything was written.

    Readers see the old or the new file, never half. ``owner`` defaults to the
    owner of the file replaced, or of the directory for a new file. With
    ``follow_symlink``, a symbolic link at ``path`` stays a link and the file it
    points to is replaced (atomically, beside itself); otherwise the link is
    replaced by a regular file.
    """
    if follow_symlink and path.is_symlink():
        path = Path(os.path.realpath(path))
    if path.is_symlink():
        stat = None
    else:
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


def _replace_with_symlink(path: Path, target: str) -> None:
    """Make ``path`` a symbolic link to ``target``, atomically (a new link renamed over the path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{secrets.token_hex(8)}"
    os.symlink(target, temporary)
    try:
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_file(path: Path) -> bool:
    """Remove ``path``; return whether it existed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True


# --- a marked block in someone else's file ---------------------------------------------


def line_ending(content: bytes) -> bytes:
    """The file's own line ending (that of its first line): ``\\r\\n``, ``\\r`` or ``\\n`` (the default)."""
    for line in content.splitlines(keepends=True):
        body = line.rstrip(b"\r\n")
        return line[len(body) :] or b"\n"
    return b"\n"


def edit_marked_block(path: Path, content: bytes, begin: str, end: str, lines: list[str] | None) -> bytes:
    """``content`` with our block removed, then (``lines`` given) put first, between ``begin`` and ``end``.

    Works on bytes, so whatever the rest of the file holds (Latin-1, CRLF, CR,
    no final newline) comes back byte for byte; the block's lines use the
    file's own line ending. A marker line is the marker text alone on its line.
    Raises :class:`EditStepError` naming ``path`` unless the file holds either
    no marker at all or exactly one ``begin`` line followed later by one
    ``end`` line (then the operator must mend the file: we would not know
    where our block ends).
    """
    begin_mark, end_mark = begin.encode(), end.encode()
    kept: list[bytes] = []
    begins, ends = [], []
    for number, line in enumerate(content.splitlines(keepends=True), start=1):
        text = line.rstrip(b"\r\n")
        if text == begin_mark:
            begins.append(number)
        elif text == end_mark:
            ends.append(number)
        elif not begins or ends:
            kept.append(line)  # outside the block (inside: dropped; a malformed file is refused below)
    problem = _marker_problem(begins, ends)
    if problem:
        raise EditStepError(
            f"{path}: {problem}; wazo-ha edits only a block between a line {begin!r} and a line {end!r}. "
            "Nothing was changed: mend the file by hand (remove both markers and the lines between, "
            "or put the missing one back), then retry"
        )
    rest = b"".join(kept)
    if lines is None:
        return rest
    newline = line_ending(content)
    block = b"".join(line.encode() + newline for line in (begin, *lines, end))
    return block + rest


def _marker_problem(begins: list[int], ends: list[int]) -> str | None:
    if not begins and not ends:
        return None
    if len(begins) == 1 and len(ends) == 1 and begins[0] < ends[0]:
        return None
    if not ends:
        return f"begin marker on line {begins[0]} without an end marker"
    if not begins:
        return f"end marker on line {ends[0]} without a begin marker"
    if len(begins) > 1 or len(ends) > 1:
        return f"marker lines repeated (begin on lines {begins}, end on lines {ends})"
    return f"end marker (line {ends[0]}) before the begin marker (line {begins[0]})"
