"""Copy-back of files on the master: what was pulled from the slave (a staging tree) merged into the live tree.

No network here: a :class:`~wazo_ha_core.extensions.FileSyncBackend` pulls
the slave's directories into a staging directory on the master
(:meth:`~wazo_ha_core.extensions.FileSyncBackend.pull`); this module merges
that copy into the master's directories. Rules:

* **Never delete on the master, never overwrite a master file that differs.**
  A file is written under a temporary name in its target directory, read back
  and checked against the slave's SHA-256, then linked to its final name with
  ``link(2)``, which fails if the name exists: a file that appeared meanwhile
  (Asterisk recording into the same folder) is never replaced. A target that
  already holds the same bytes counts as copied. A greeting the plan allows to
  replace is swapped by ``rename(2)`` only if it still has the digest the plan
  saw.
* **Voicemail** goes through :func:`~wazo_ha_core.voicemail.plan_copy_back`:
  a message whose number is taken on the master is renumbered, all its files
  under the new number, sound files first and the ``.txt`` last (app_voicemail
  ignores a number without its ``.txt``, so a half-copied message is
  invisible); when one of its files cannot be written, the files this attempt
  linked are taken back, and after a crash the rerun completes the message
  under the same number.
* **Exactly once across runs**: a ledger (one JSON line per item, appended and
  fsynced after the item is verified on the master) records each message
  identity and each plain file copied, so a message the owner has deleted on
  the master since does not come back from the slave's copy at the next run.
* **The slave is never changed** by copy-back: its spool and recordings stay as
  they are (nothing there is removed at all, so nothing is removed before the
  master holds a verified copy).

Problems (unreadable or odd entries, names that are not UTF-8, a mailbox that
is a file, a full disk) are reported per item; the items before stay done and
verified, the rerun continues from there.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..voicemail import FileInfo, Plan, parse_tree, plan_copy_back
from ..voicemail.changed import from_plan as changed_from_plan
from ..voicemail.changed import from_side_plan as changed_from_side_plan
from ..voicemail.layout import Spool, short

TEMP_PREFIX = ".wazo-ha-copy-back."
CHUNK = 1 << 20


class CopyBackError(Exception):
    """One item could not be merged (its path and the reason are in the message); nothing of it was written."""


@dataclass
class FilesReport:
    files: int = 0
    bytes: int = 0
    already: int = 0
    messages: int = 0
    renumbered: int = 0
    conflicts: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    would_copy: list[str] = field(default_factory=list)  # dry-run: what would move (master-relative)
    voicemail: dict[str, int] = field(default_factory=dict)  # two-way merge: messages_copied, _deleted, _moved…
    changed_mailboxes: set[tuple[str, str]] = field(default_factory=set)  # (context, mailbox) whose folders changed

    def figures(self) -> dict:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "files_already": self.already,
            "messages": self.messages,
            "messages_renumbered": self.renumbered,
            "conflicts": len(self.conflicts),
            "problems": len(self.problems),
            **{f"voicemail_{key}": value for key, value in self.voicemail.items()},
        }


# --- reading a tree -----------------------------------------------------------------------------


def digest_of(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(CHUNK):
            sha.update(block)
    return sha.hexdigest()


def listing(root: Path, problems: list[str], *, metadata_suffix: str | None = ".txt") -> dict[str, FileInfo]:
    """Every regular file under ``root`` (relative path → digest, and text for metadata files).

    Symlinks, devices and sockets are skipped; names that are not UTF-8,
    unreadable directories and files are reported in ``problems`` and skipped.
    A missing ``root`` is an empty listing (nothing recorded there); a
    ``root`` that is not a directory is a problem.
    """
    found: dict[str, FileInfo] = {}
    if not root.exists():
        return found
    if not root.is_dir() or root.is_symlink():
        problems.append(f"{root}: not a directory")
        return found
    _walk(root, "", found, problems, metadata_suffix)
    return found


def _walk(directory: Path, prefix: str, found: dict, problems: list[str], metadata_suffix: str | None) -> None:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as exc:
        problems.append(f"{directory}: cannot list it ({exc.strerror})")
        return
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX):
            continue
        try:
            entry.name.encode("utf-8")
        except UnicodeEncodeError:
            raw = os.fsencode(entry.name)
            problems.append(f"{directory}: name is not UTF-8, skipped: {short(raw)}")
            continue
        relative = f"{prefix}{entry.name}"
        try:
            if entry.is_dir(follow_symlinks=False):
                _walk(Path(entry.path), relative + "/", found, problems, metadata_suffix)
            elif entry.is_file(follow_symlinks=False):
                path = Path(entry.path)
                text = None
                if metadata_suffix and entry.name.endswith(metadata_suffix):
                    raw_text = path.read_bytes()
                    text = raw_text.decode("utf-8", errors="replace")
                found[relative] = FileInfo(digest_of(path), text)
            else:
                problems.append(f"{entry.path}: not a regular file or directory, skipped")
        except OSError as exc:
            problems.append(f"{entry.path}: cannot read it ({exc.strerror})")
    return


# --- writing one file -------------------------------------------------------------------------


def install_file(src: Path, dst: Path, digest: str, *, replace_digest: str | None = None) -> int:
    """Copy ``src`` to ``dst`` verified; return the bytes written (0 when ``dst`` already holds them).

    Without ``replace_digest``, never replaces an existing ``dst``: same bytes →
    0, other bytes → :class:`CopyBackError`. With it, ``dst`` is swapped only if
    it still has that digest. Mode and owner follow ``src``. On any failure
    (a full disk, a directory that is a file) the temporary file is removed and
    :class:`CopyBackError` names ``dst`` and the reason; ``dst`` is unchanged.
    """
    try:
        if dst.exists() or dst.is_symlink():
            current = digest_of(dst) if dst.is_file() and not dst.is_symlink() else None
            if current == digest:
                return 0
            if replace_digest is None or current != replace_digest:
                raise CopyBackError(f"{dst}: exists on the master with other content; left as it is")
        dst.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CopyBackError(f"{dst}: cannot prepare it ({_reason(exc)})") from None
    temp = dst.parent / f"{TEMP_PREFIX}{dst.name}.{os.getpid()}"
    try:
        size = _copy_synced(src, temp)
        if digest_of(temp) != digest:
            raise CopyBackError(f"{dst}: the copy does not match the slave's checksum (source changed?)")
        source_stat = os.stat(src)
        os.chmod(temp, stat.S_IMODE(source_stat.st_mode) & 0o777)
        os.chown(temp, source_stat.st_uid, source_stat.st_gid)
        if replace_digest is None:
            os.link(temp, dst)  # fails if dst appeared meanwhile: never overwrite
            os.unlink(temp)
        else:
            os.replace(temp, dst)
        _fsync_directory(dst.parent)
        return size
    except FileExistsError:
        raise CopyBackError(f"{dst}: appeared on the master during the copy; left as it is") from None
    except OSError as exc:
        raise CopyBackError(f"{dst}: cannot write it ({_reason(exc)}); nothing of it was kept") from None
    finally:
        _remove_quietly(temp)


def _copy_synced(src: Path, dst: Path) -> int:
    size = 0
    with open(src, "rb") as source, open(dst, "xb") as target:
        while block := source.read(CHUNK):
            target.write(block)
            size += len(block)
        target.flush()
        os.fsync(target.fileno())
    return size


def _fsync_directory(directory: Path) -> None:
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError:
        pass  # reported by the caller's error already; a leftover temp name is skipped by listing()


def _reason(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "no space left on the master's disk"
    if exc.errno in (errno.ENOTDIR, errno.EEXIST):
        return f"a path component is not a directory: {exc.strerror}"
    return exc.strerror or type(exc).__name__


# --- the ledger -------------------------------------------------------------------------------


class Ledger:
    """Append-only record of what copy-back has put on the master (one JSON object per line, fsynced).

    A line cut by a crash is ignored: its item is then found on the master by
    its identity or content and recorded again.
    """

    def __init__(self, path: Path):
        self.path = path
        self.entries: set[tuple[str, ...]] = set()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        for line in lines:
            try:
                self.entries.add(tuple(json.loads(line)))
            except (ValueError, TypeError):
                continue

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self.entries

    def add(self, keys: Iterable[tuple[str, ...]]) -> None:
        new = [key for key in keys if key not in self.entries]
        if not new:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, "".join(json.dumps(list(key)) + "\n" for key in new).encode("utf-8"))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        self.entries.update(new)


def message_key(mailbox: str, identity: tuple[str, ...]) -> tuple[str, ...]:
    return ("voicemail", mailbox, *identity)


# --- voicemail --------------------------------------------------------------------------------


def merge_voicemail(
    staged: Path,
    master: Path,
    ledger: Ledger,
    report: FilesReport,
    *,
    dry_run: bool = False,
    max_messages: int = 100,
    base_path: Path | None = None,
    unreadable: Iterable[str] = (),
) -> Plan | None:
    """Bring the staged slave spool's new messages and greetings into the master spool ``master``.

    With a voicemail base at ``base_path`` (written by the master→slave sync,
    :mod:`wazo_ha_core.voicemail.apply`) the merge is two-way
    (:func:`merge_voicemail_two_way`): deletions and moves the owners made on
    the slave are carried too. Without one, only additions (the plan returned).

    ``unreadable``: spool-relative paths the slave could not send (permission
    denied; ``"."`` for the spool itself). Each mailbox under or above one is
    left out on both sides and reported: its staged copy is incomplete, and a
    message missing there must not be taken as deleted by its owner. The base
    is then not saved, so the next complete run merges it.
    """
    slave_listing = listing(staged, report.problems)
    master_problems: list[str] = []
    master_listing = listing(master, master_problems)
    report.problems.extend(f"master spool: {problem}" for problem in master_problems)
    unreadable = sorted(set(unreadable))
    if "." in unreadable:
        report.problems.append("voicemail: the slave's spool could not be read: nothing of it merged")
        return None
    if unreadable:
        _leave_out_unreadable(unreadable, slave_listing, master_listing, report=report)
    slave_spool, master_spool = parse_tree(slave_listing), parse_tree(master_listing)
    if base_path is not None:
        from ..voicemail.apply import load_base

        base = load_base(base_path, report.problems)
        if base is not None:
            merge_voicemail_two_way(
                staged,
                master,
                slave_listing,
                master_listing,
                base,
                ledger,
                report,
                dry_run,
                max_messages,
                base_path,
                complete=not unreadable,
            )
            return None
    _forget_copied(slave_spool, master_spool, ledger, report, dry_run)
    plan = plan_copy_back(master_spool, slave_spool, max_messages=max_messages)
    report.problems.extend(f"slave spool: {problem}" for problem in plan.problems)
    report.conflicts.extend(f"voicemail {c.mailbox} greeting {c.greeting}: {c.reason}" for c in plan.conflicts)
    report.conflicts.extend(
        f"voicemail {o.mailbox}/{o.folder}: slave message {o.slave_number:04d} not copied, folder full "
        f"({o.max_messages} messages)"
        for o in plan.overflow
    )
    by_destination = {copy.dst: copy for copy in plan.copies}
    for move in plan.messages:
        prefix = f"{move.mailbox}/{move.folder}/msg{move.master_number:04d}."
        copies = sorted(
            (copy for dst, copy in by_destination.items() if dst.startswith(prefix)),
            key=lambda copy: copy.dst.endswith(".txt"),  # sound files first, the .txt last
        )
        if dry_run:
            report.would_copy.extend(f"voicemail/{copy.dst}" for copy in copies)
            report.messages += 1
            report.renumbered += move.slave_number != move.master_number
            continue
        written: list[int] = []
        try:
            for copy in copies:
                written.append(install_file(staged / copy.src, master / copy.dst, copy.digest))
        except CopyBackError as exc:
            # Take back the files this attempt linked (without their .txt nobody saw them): the message
            # is all there or not there; the rerun copies it whole.
            for copy, size in zip(copies, written, strict=False):
                if size:
                    _remove_quietly(master / copy.dst)
            report.problems.append(f"voicemail {move.mailbox}/{move.folder} message {move.slave_number:04d}: {exc}")
            continue
        slave_message = _slave_message(slave_spool, move)
        ledger.add([message_key(move.mailbox, slave_message.identity)])
        report.changed_mailboxes |= changed_from_plan(plan, [(move.mailbox, move.folder, move.slave_number)])
        report.messages += 1
        report.renumbered += move.slave_number != move.master_number
        report.files += sum(1 for size in written if size)
        report.bytes += sum(written)
    for copy in plan.copies:
        if copy.dst.count("/") != 2:  # context/mailbox/<greeting>.<ext>; messages were done above
            continue
        if dry_run:
            report.would_copy.append(f"voicemail/{copy.dst}")
            continue
        try:
            size = install_file(staged / copy.src, master / copy.dst, copy.digest, replace_digest=copy.expected_digest)
        except CopyBackError as exc:
            report.problems.append(f"voicemail greeting: {exc}")
            continue
        report.files += bool(size)
        report.bytes += size
    return plan


def merge_voicemail_two_way(
    staged: Path,
    master: Path,
    slave_listing: dict[str, FileInfo],
    master_listing: dict[str, FileInfo],
    base,
    ledger: Ledger,
    report: FilesReport,
    dry_run: bool,
    max_messages: int,
    base_path: Path,
    *,
    complete: bool = True,
) -> None:
    """The three-way merge (:mod:`wazo_ha_core.voicemail.threeway`) carried out on the master.

    Leftovers of an interrupted run are removed first; messages this ledger
    says were copied before count as known to the base (so one the owner has
    deleted on the master since is not brought back). After a complete run
    (no problem, no overflow, ``complete``: no mailbox left out) the base becomes the slave's spool: what the
    master now holds of it, so the next sync may mirror the spool again.
    """
    from ..voicemail.apply import VoicemailApplyError, apply_side_plan, save_base
    from ..voicemail.threeway import Base, leftovers, merge, real_problems

    slave_spool = parse_tree(slave_listing)
    for (context, number), box in slave_spool.mailboxes.items():
        known = base.messages.setdefault((context, number), {})
        for folder in box.folders.values():
            for message in folder.messages.values():
                if message.identity not in known and message_key(box.path, message.identity) in ledger:
                    known[message.identity] = message.folder
    master_spool = parse_tree(master_listing)
    if not dry_run:
        for relative in leftovers(master_listing, master_spool, base, slave_spool):
            _remove_quietly(master / relative)
            del master_listing[relative]
        master_spool = parse_tree(master_listing)
    merged = merge(master_spool, slave_spool, base, max_messages=max_messages)
    problems_before = len(report.problems)
    # A mirror master -> slave cut short leaves the master's own files half there: not the slave's data.
    cut_short = leftovers(slave_listing, slave_spool, base, master_spool)
    report.problems.extend(f"slave spool: {problem}" for problem in real_problems(slave_spool, cut_short))
    report.conflicts.extend(f"voicemail {conflict}" for conflict in merged.conflicts)
    report.conflicts.extend(f"voicemail {item} not copied, folder full ({max_messages})" for item in merged.overflow)
    figures = merged.master.figures("messages")
    report.voicemail = figures
    if dry_run:
        for op in merged.master.messages:
            if op.kind == "copy":
                report.would_copy.append(f"voicemail/{op.mailbox}/{op.dst[0]}/msg{op.dst[1]:04d}")
            elif op.kind == "delete":
                report.would_copy.append(f"voicemail/{op.mailbox}/{op.src[0]}/msg{op.src[1]:04d} (delete)")
        report.messages += figures["messages_copied"]
        return

    def copied(op) -> None:
        ledger.add([message_key(op.mailbox, op.identity)])

    try:
        applied = apply_side_plan(master, staged, master_listing, slave_listing, merged.master, copied)
    except VoicemailApplyError as exc:
        report.problems.append(f"voicemail: {exc}")
        # Some steps may be done: a recount of a mailbox that did not change costs Asterisk one scan.
        report.changed_mailboxes |= changed_from_side_plan(merged.master)
        return
    report.changed_mailboxes |= changed_from_side_plan(merged.master)
    report.messages += figures["messages_copied"]
    # Renumbered: the master's own messages shifted in their folder, and the slave's placed under another number.
    report.renumbered += figures["messages_renumbered"] + sum(
        1 for op in merged.master.messages if op.kind == "copy" and op.src != op.dst
    )
    report.files += sum(len(op.files) for op in merged.master.messages if op.kind == "copy")
    report.bytes += applied.bytes
    if complete and len(report.problems) == problems_before and not merged.overflow:
        save_base(base_path, Base.of(slave_spool))


def _leave_out_unreadable(unreadable: list[str], *listings: dict[str, FileInfo], report: FilesReport) -> None:
    """Drop from ``listings`` every mailbox an unreadable path (spool-relative) reaches; one problem per path."""
    for path in unreadable:
        parts = path.split("/")
        prefix = "/".join(parts[:2]) + "/"  # the mailbox (context/number/), or a whole context
        for found in listings:
            for name in [name for name in found if name.startswith(prefix)]:
                del found[name]
        what = f"mailbox {'/'.join(parts[:2])}" if len(parts) >= 2 else f"context {parts[0]}"
        report.problems.append(
            f"voicemail {what}: not merged, the slave's {path} could not be read (permission denied); "
            "the next run merges it once readable"
        )


def _slave_message(spool: Spool, move):
    context, number = move.mailbox.split("/", 1)
    return spool.mailboxes[(context, number)].folders[move.folder].messages[move.slave_number]


def _forget_copied(slave: Spool, master: Spool, ledger: Ledger, report: FilesReport, dry_run: bool) -> None:
    """Drop from the slave's model every message copied before (ledger) or already on the master (recorded now)."""
    found_on_master = []
    for key, mailbox in slave.mailboxes.items():
        on_master = master.mailboxes[key].identities() if key in master.mailboxes else set()
        for folder in mailbox.folders.values():
            for number, message in list(folder.messages.items()):
                ledger_key = message_key(mailbox.path, message.identity)
                if ledger_key in ledger:
                    del folder.messages[number]
                    report.already += 1
                elif message.identity in on_master:
                    found_on_master.append(ledger_key)
                    del folder.messages[number]
                    report.already += 1
    if not dry_run:
        ledger.add(found_on_master)


# --- plain files (recordings, the configured list) ----------------------------------------------


def merge_plain(
    staged: Path, master: Path, label: str, ledger: Ledger, report: FilesReport, *, dry_run: bool = False
) -> None:
    """Every staged file missing on the master is copied (verified); a differing one is a conflict, kept."""
    for relative, info in sorted(listing(staged, report.problems, metadata_suffix=None).items()):
        key = ("file", label, relative, info.digest)
        if key in ledger:
            report.already += 1
            continue
        target = master / relative
        if dry_run:
            if not (target.is_file() and digest_of(target) == info.digest):
                report.would_copy.append(f"{label}/{relative}")
            continue
        try:
            size = install_file(staged / relative, target, info.digest)
        except CopyBackError as exc:
            (report.conflicts if "other content" in str(exc) else report.problems).append(f"{label}: {exc}")
            continue
        ledger.add([key])
        if size:
            report.files += 1
            report.bytes += size
        else:
            report.already += 1
