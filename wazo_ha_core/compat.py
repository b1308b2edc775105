"""The files the rest of Wazo reads: ``/etc/xivo/ha.conf`` and the role sentinels.

They are written from the store after every successful edit, and ``ha.conf``
is read once, to import a node's settings when the store has none yet (the
upgrade path from Wazo's own HA). Paths come from settings, so they resolve
under ``root``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .config import HASettings, validate_ha_body
from .errors import ValidationError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileSnapshot:
    """A file's content (``None``: absent), to put back when an edit is undone."""

    path: Path
    content: bytes | None
    mode: int | None

    @classmethod
    def take(cls, path: Path) -> FileSnapshot:
        try:
            return cls(path, path.read_bytes(), path.stat().st_mode & 0o7777)
        except FileNotFoundError:
            return cls(path, None, None)

    def restore(self) -> None:
        if self.content is None:
            self.path.unlink(missing_ok=True)
        else:
            write_atomically(self.path, self.content, self.mode or 0o644)


class CompatFiles:
    def __init__(self, ha_conf: Path, primary_sentinel: Path, secondary_sentinel: Path):
        self.ha_conf = ha_conf
        self.primary_sentinel = primary_sentinel
        self.secondary_sentinel = secondary_sentinel

    @classmethod
    def from_settings(cls, settings) -> CompatFiles:
        return cls(settings.path("ha_conf"), settings.path("primary_sentinel"), settings.path("secondary_sentinel"))

    def snapshot(self) -> list[FileSnapshot]:
        return [FileSnapshot.take(path) for path in (self.ha_conf, self.primary_sentinel, self.secondary_sentinel)]

    def write(self, ha: HASettings) -> None:
        """Write ``ha.conf`` (atomically) and make exactly the sentinel of the role exist."""
        body = json.dumps({"node_type": ha.node_type, "remote_address": ha.remote_address}) + "\n"
        write_atomically(self.ha_conf, body.encode(), 0o644)
        wanted = {"master": self.primary_sentinel, "slave": self.secondary_sentinel}.get(ha.node_type)
        for sentinel in (self.primary_sentinel, self.secondary_sentinel):
            if sentinel == wanted:
                if not sentinel.exists():
                    write_atomically(sentinel, b"", 0o644)
            else:
                sentinel.unlink(missing_ok=True)

    def is_current(self, ha: HASettings) -> bool:
        """Whether the files already say exactly ``ha`` (then an edit rewrites nothing)."""
        try:
            on_disk = json.loads(self.ha_conf.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        if on_disk != {"node_type": ha.node_type, "remote_address": ha.remote_address}:
            return False
        return self.primary_sentinel.exists() == (ha.node_type == "master") and self.secondary_sentinel.exists() == (
            ha.node_type == "slave"
        )

    def read_legacy(self) -> HASettings | None:
        """The settings in an existing ``ha.conf``, or ``None`` if absent or unusable."""
        try:
            body = json.loads(self.ha_conf.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable %s: %s", self.ha_conf, exc)
            return None
        if isinstance(body, dict) and body.get("remote_address") is None:
            body = {**body, "remote_address": ""}
        try:
            return validate_ha_body(body)
        except ValidationError as exc:
            log.warning("ignoring %s, it holds invalid settings: %s", self.ha_conf, exc)
            return None


def write_atomically(path: Path, content: bytes, mode: int, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` with ``content`` so that readers see the old or the new file, never half.

    ``owner`` (uid, gid) is applied when running as root; otherwise the file is ours.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(temporary, *owner)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
