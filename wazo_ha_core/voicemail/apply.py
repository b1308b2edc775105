"""Two-way voicemail on disk: the base file, and one side's plan carried out on a live spool.

The **base** (:class:`~.threeway.Base`) lives on the master, one file per
standby (``<copy_back.staging_dir>/voicemail-base-<peer>.json``, mode 0600):
the master→slave sync writes it after each complete mirror of the spool, the
copy-back after each complete merge. A missing or unreadable base means "no
base": nothing is then taken as deleted (the safe side).

:func:`apply_side_plan` carries out a :class:`~.threeway.SidePlan` on this
node's live spool, reading the other side's files from a staged copy. It is
checked first against the listing it was planned from (:func:`~.threeway.apply_plan`):
a plan that would overwrite anything is refused with nothing changed. Then
each step keeps every message visible (see :mod:`.threeway`); steps found
already done (an interrupted run) are skipped; the first step that fails
stops the run with :class:`VoicemailApplyError` naming the file and the
reason, and the next run plans again from what is on disk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from .layout import FileInfo, short
from .threeway import Base, MessageOp, SidePlan, apply_plan, file_steps

_PEER_NAME = re.compile(r"[0-9A-Za-z.:_-]{1,100}")


class VoicemailApplyError(Exception):
    """A step could not be done (path and reason in the message); the steps before stay done."""


def base_file(staging_dir: Path, peer: str) -> Path:
    """Where the base for ``peer`` is kept; ValueError for a peer that is not an address."""
    if not _PEER_NAME.fullmatch(peer):
        raise ValueError(f"peer {short(peer)} is not an address")
    return staging_dir / f"voicemail-base-{peer.replace(':', '_')}.json"


def load_base(path: Path, problems: list[str]) -> Base | None:
    """The base in ``path``; ``None`` when absent, or unreadable (then said in ``problems``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot read the voicemail base ({exc}); working without one")
        return None
    try:
        return Base.from_json(text)
    except ValueError as exc:
        problems.append(f"{path}: {exc}; working without one")
        return None


def save_base(path: Path, base: Base) -> None:
    """Write the base atomically (temporary file, fsync, rename), mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}")
    descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(descriptor, base.to_json().encode("utf-8"))
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temp, path)


@dataclass
class Applied:
    steps: int = 0
    skipped: int = 0
    bytes: int = 0


def apply_side_plan(
    live: Path,
    staged: Path,
    listing: Mapping[str, FileInfo],
    other: Mapping[str, FileInfo],
    plan: SidePlan,
    on_copied: Callable[[MessageOp], None] = lambda op: None,
) -> Applied:
    """Carry out ``plan`` on ``live`` (this side's spool); ``staged`` holds the other side's files.

    ``listing``/``other``: what the plan was made from. Raises
    :class:`VoicemailApplyError` before any change when the plan does not fit
    the listing, and at the first failing step otherwise. ``on_copied`` is
    called after each message fully copied from the other side (for a ledger).
    """
    from ..copy_back.files import CopyBackError, install_file

    try:
        apply_plan(listing, other, plan)
    except (ValueError, KeyError) as exc:
        raise VoicemailApplyError(f"voicemail plan refused, nothing changed: {exc}") from None
    done = Applied()
    for op in plan.messages:
        for action, path, source, digest in file_steps(op):
            target = live / path
            try:
                if action == "unlink":
                    done.skipped += not _unlink(target)
                elif action == "link":
                    done.skipped += not _link(live / str(source), target, digest)
                else:
                    _ensure_directory(target.parent)
                    size = install_file(staged / str(source), target, str(digest))
                    done.bytes += size
                    done.skipped += size == 0
            except CopyBackError as exc:
                raise VoicemailApplyError(str(exc)) from None
            except OSError as exc:
                raise VoicemailApplyError(f"{target}: cannot {action} it ({exc.strerror})") from None
            done.steps += 1
        if op.kind == "copy":
            on_copied(op)
    for greeting in plan.greetings:
        for ext in sorted(greeting.current):
            if ext not in greeting.files:
                _unlink(live / f"{greeting.mailbox}/{greeting.name}.{ext}")
                done.steps += 1
        for ext, digest in sorted(greeting.files.items()):
            relative = f"{greeting.mailbox}/{greeting.name}.{ext}"
            _ensure_directory((live / relative).parent)
            try:
                done.bytes += install_file(
                    staged / relative, live / relative, digest, replace_digest=greeting.current.get(ext)
                )
            except CopyBackError as exc:
                raise VoicemailApplyError(str(exc)) from None
            done.steps += 1
    return done


def _unlink(path: Path) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    return True


def _link(source: Path, target: Path, digest: str | None) -> bool:
    """Hard-link ``source`` at ``target``; False when already there (an interrupted run linked it)."""
    from ..copy_back.files import digest_of

    if target.exists():
        if digest is not None and digest_of(target) == digest:
            return False
        raise VoicemailApplyError(f"{target}: exists with other content; left as it is")
    _ensure_directory(target.parent)
    try:
        os.link(source, target)
    except FileExistsError:
        raise VoicemailApplyError(f"{target}: appeared during the run; left as it is") from None
    return True


def _ensure_directory(directory: Path) -> None:
    """Create a folder directory like its parent (owner and mode), as app_voicemail would."""
    if directory.is_dir():
        return
    _ensure_directory(directory.parent)
    info = directory.parent.stat()
    directory.mkdir(mode=info.st_mode & 0o7777)
    os.chown(directory, info.st_uid, info.st_gid)
