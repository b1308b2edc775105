"""Copy-back plan: what the slave recorded while serving, merged into the master's spool (pure).

:func:`plan_copy_back` compares two (optionally three) :class:`~.layout.Spool`
models and returns a :class:`Plan`; it reads and writes nothing. Contract of
the plan, which whoever applies it must keep:

- ``directories`` are created (with parents) if missing;
- each :class:`CopyFile` with ``expected_digest=None`` creates ``dst`` from the
  slave's ``src`` and must fail rather than overwrite an existing ``dst``;
- a :class:`CopyFile` with ``expected_digest`` set (a greeting) replaces ``dst``
  only if it still has that digest (compare, then swap by rename);
- nothing is ever deleted on the master.

Rules (docs/voicemail.rst): a slave message whose identity already exists in
the same master mailbox (any folder) is not copied; a new one goes into the
lowest free numbers of the same folder on the master, all its files under one
number; a folder already at ``max_messages`` gets an ``overflow`` entry instead.
A greeting re-recorded on the slave is copied when the master's is absent or
unchanged since the take-over, otherwise kept as a ``conflict``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .layout import DEFAULT_MAX_MESSAGES, FOLDERS, MAX_MESSAGES_LIMIT, FileInfo, Mailbox, Message, Spool, short


@dataclass(frozen=True)
class CopyFile:
    """Copy slave ``src`` to master ``dst`` (spool-relative); replace only if ``dst`` has ``expected_digest``."""

    src: str
    dst: str
    digest: str
    expected_digest: str | None = None


@dataclass(frozen=True)
class MessageMove:
    """One slave message going to the master, for the journal and ``--dry-run``."""

    mailbox: str
    folder: str
    slave_number: int
    master_number: int


@dataclass(frozen=True)
class Overflow:
    mailbox: str
    folder: str
    slave_number: int
    max_messages: int


@dataclass(frozen=True)
class Conflict:
    mailbox: str
    greeting: str
    reason: str


@dataclass
class Plan:
    directories: list[str] = field(default_factory=list)
    copies: list[CopyFile] = field(default_factory=list)
    messages: list[MessageMove] = field(default_factory=list)
    already_on_master: int = 0
    overflow: list[Overflow] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # slave files not understood: left on the slave

    @property
    def renumbered(self) -> int:
        return sum(1 for m in self.messages if m.slave_number != m.master_number)


def plan_copy_back(
    master: Spool,
    slave: Spool,
    taken_over: Spool | None = None,
    max_messages: int = DEFAULT_MAX_MESSAGES,
    max_messages_by_mailbox: Mapping[tuple[str, str], int] | None = None,
) -> Plan:
    """The file operations that bring the slave's new messages and greetings to the master.

    ``taken_over`` is the slave's spool when it took over (what the master had
    synced to it); without it, a greeting differing on both sides is a conflict.
    ``max_messages`` (app_voicemail's ``maxmsg``, 1..9999) applies per folder,
    overridable per (context, mailbox). ValueError naming the bad value.
    """
    limits = dict(max_messages_by_mailbox or {})
    for where, value in [("max_messages", max_messages)] + [(f"max_messages[{k!r}]", v) for k, v in limits.items()]:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_MESSAGES_LIMIT:
            raise ValueError(f"{where} must be an integer from 1 to {MAX_MESSAGES_LIMIT}, got {short(value)}")
    plan = Plan(problems=list(slave.problems))
    for key, slave_box in sorted(slave.mailboxes.items()):
        plan.problems.extend(slave_box.problems)
        master_box = master.mailboxes.get(key) or Mailbox(*key)
        before = taken_over.mailboxes.get(key) if taken_over is not None else None
        _plan_messages(plan, master_box, slave_box, limits.get(key, max_messages))
        _plan_greetings(plan, master_box, slave_box, before, taken_over is not None)
    return plan


def _plan_messages(plan: Plan, master_box: Mailbox, slave_box: Mailbox, max_messages: int) -> None:
    known = master_box.identities()
    for folder_name in FOLDERS:
        slave_folder = slave_box.folders.get(folder_name)
        if slave_folder is None:
            continue
        new: list[Message] = []
        for message in sorted(slave_folder.messages.values(), key=_chronological):
            if message.identity in known:
                plan.already_on_master += 1
                continue
            known.add(message.identity)
            new.append(message)
        if not new:
            continue
        master_folder = master_box.folders.get(folder_name)
        if master_folder is None:
            plan.directories.append(f"{master_box.path}/{folder_name}")
            free = list(range(min(len(new), max_messages)))
        else:
            free = master_folder.free_numbers(len(new), max_messages)
        for message, number in zip(new, free, strict=False):
            plan.messages.append(MessageMove(master_box.path, folder_name, message.number, number))
            for ext, digest in sorted(message.files.items()):
                src = f"{slave_box.path}/{folder_name}/{message.file_name(ext)}"
                plan.copies.append(
                    CopyFile(src, f"{master_box.path}/{folder_name}/{message.file_name(ext, number)}", digest)
                )
        for message in new[len(free) :]:
            plan.overflow.append(Overflow(master_box.path, folder_name, message.number, max_messages))


def _chronological(message: Message) -> tuple[int, int]:
    """Order in which new messages take the free numbers: by origtime, then slave number."""
    origtime = message.metadata.get("origtime", "")
    return (int(origtime) if origtime.isdigit() else 0, message.number)


def _plan_greetings(
    plan: Plan, master_box: Mailbox, slave_box: Mailbox, before: Mailbox | None, have_before: bool
) -> None:
    for name, slave_files in sorted(slave_box.greetings.items()):
        master_files = master_box.greetings.get(name, {})
        if slave_files == master_files:
            continue
        before_files = before.greetings.get(name, {}) if before is not None else None
        if have_before and slave_files == before_files:
            continue  # not re-recorded on the slave: the master's is the one to keep
        if master_files and (not have_before or master_files != before_files):
            plan.conflicts.append(Conflict(master_box.path, name, "changed on the master and on the slave"))
            continue
        extra = sorted(set(master_files) - set(slave_files))
        if extra:
            reason = f"the master also has formats {', '.join(extra)} the slave did not record"
            plan.conflicts.append(Conflict(master_box.path, name, reason))
            continue
        for ext, digest in sorted(slave_files.items()):
            if master_files.get(ext) == digest:
                continue
            path = f"{name}.{ext}"
            copy = CopyFile(f"{slave_box.path}/{path}", f"{master_box.path}/{path}", digest, master_files.get(ext))
            plan.copies.append(copy)


def apply_to_listing(master: Mapping[str, FileInfo], slave: Mapping[str, FileInfo], plan: Plan) -> dict[str, FileInfo]:
    """The master's listing after the plan, applied with the contract above (for dry-runs and tests).

    ValueError if a copy would overwrite a file it must not (a stale plan).
    """
    result = dict(master)
    for copy in plan.copies:
        current = result.get(copy.dst)
        if current is not None and (copy.expected_digest is None or current.digest != copy.expected_digest):
            raise ValueError(f"refusing to overwrite {short(copy.dst)}: it changed since the plan was made")
        if current is None and copy.expected_digest is not None:
            raise ValueError(f"refusing to replace {short(copy.dst)}: it disappeared since the plan was made")
        result[copy.dst] = slave[copy.src]
    return result
