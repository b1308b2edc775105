"""Two-way voicemail: a three-way merge of the master's and the slave's spools against a base (pure, no I/O).

The **base** (:class:`Base`) is what both nodes held the last time they
agreed: written by the master after each mirror of the spool to the slave
and after each complete copy-back. Against it, every message (known by its
identity, whatever its number) and every greeting is *unchanged*, *new*,
*moved* or *deleted* on each side, and :func:`merge` decides the one result
both nodes end with (docs/voicemail.rst, "Two-way rules"):

===========================  =====================================================
case                         result on both nodes
===========================  =====================================================
new on one side              kept, copied to the other side
deleted on one side          deleted on both (never resurrected by the other side)
moved on one side (read →    moved on both
``Old``, saved to ``Work``…)
moved on both, differently   the master's folder (counted in ``conflicts``)
deleted on one, moved on     deleted on both: the owner's deletion wins
the other
greeting re-recorded or      the changed side's version on both
deleted on one side
greeting changed on both     the master's version (counted in ``conflicts``)
===========================  =====================================================

Without a base (never synced), nothing counts as deleted: whatever either
side holds is kept, and a greeting differing on the two sides is a conflict
(the master's kept). A message's bytes are never merged: when both sides
hold it, the master's files are the ones kept.

**Numbering**: in the result each folder is numbered ``msg0000`` upwards
without gaps: the messages the side already holds in that folder keep their
order, the ones arriving follow, oldest first (``origtime``). :func:`side_plan`
turns the result into ordered message operations for one side, each of which
leaves every message visible under at least one number at every moment
(files are linked to the new number, sound files first and ``.txt`` last,
before the old number is unlinked, ``.txt`` first): a run interrupted
anywhere leaves nothing lost, at worst a message under two numbers, which the
next plan removes (the duplicate rule: the copy not at its place goes).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .layout import (
    _MESSAGE_FILE,
    DEFAULT_MAX_MESSAGES,
    FOLDERS,
    Mailbox,
    Message,
    Spool,
    message_identity,
    parse_metadata,
    short,
)

MailboxKey = tuple[str, str]
Identity = tuple[str, ...]
Slot = tuple[str, int]  # (folder, number)
BASE_VERSION = 1


@dataclass
class Base:
    """The last agreed state: per mailbox, each message identity's folder and each greeting's files."""

    messages: dict[MailboxKey, dict[Identity, str]] = field(default_factory=dict)
    greetings: dict[MailboxKey, dict[str, dict[str, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, spool: Spool) -> Base:
        base = cls()
        for key, box in spool.mailboxes.items():
            base.messages[key] = {m.identity: m.folder for m in _located(box).values()}
            base.greetings[key] = {name: dict(files) for name, files in box.greetings.items() if files}
        return base

    def to_json(self) -> str:
        boxes = sorted(set(self.messages) | set(self.greetings))
        return json.dumps(
            {
                "version": BASE_VERSION,
                "mailboxes": [
                    {
                        "context": context,
                        "mailbox": number,
                        "messages": sorted([list(i), f] for i, f in self.messages.get((context, number), {}).items()),
                        "greetings": self.greetings.get((context, number), {}),
                    }
                    for context, number in boxes
                ],
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> Base:
        """ValueError naming what is wrong (the caller then has no base: nothing counts as deleted)."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"voicemail base is not JSON: {short(str(exc))}") from None
        if not isinstance(data, dict) or data.get("version") != BASE_VERSION:
            version = data.get("version") if isinstance(data, dict) else data
            raise ValueError(f"voicemail base: unknown version {short(version)}")
        base = cls()
        try:
            for box in data["mailboxes"]:
                key = (str(box["context"]), str(box["mailbox"]))
                base.messages[key] = {}
                for identity, folder in box["messages"]:
                    if folder not in FOLDERS:
                        raise ValueError(f"folder {short(folder)}")
                    base.messages[key][tuple(str(part) for part in identity)] = folder
                base.greetings[key] = {
                    str(name): {str(ext): str(digest) for ext, digest in files.items()}
                    for name, files in box["greetings"].items()
                }
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError(f"voicemail base is malformed: {short(str(exc))}") from None
        return base


@dataclass(frozen=True)
class MessageOp:
    """One message operation on one side, in mailbox ``mailbox`` (``context/number``).

    ``delete``: remove the message at ``src``. ``move``: link its files at ``dst``
    then remove them at ``src`` (same side). ``copy``: bring it from the other
    side's ``src`` to this side's ``dst``. ``files``: extension → digest.
    """

    kind: str
    mailbox: str
    identity: Identity
    src: Slot
    dst: Slot | None
    files: Mapping[str, str]


@dataclass(frozen=True)
class GreetingOp:
    """Make greeting ``name`` of ``mailbox`` hold ``files`` (empty: deleted); ``current`` is what it holds now."""

    mailbox: str
    name: str
    files: Mapping[str, str]
    current: Mapping[str, str]


@dataclass
class SidePlan:
    messages: list[MessageOp] = field(default_factory=list)
    greetings: list[GreetingOp] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for op in self.messages if op.kind == kind)

    @property
    def empty(self) -> bool:
        return not self.messages and not self.greetings

    def figures(self, prefix: str) -> dict[str, int]:
        copied = self.count("copy")
        deleted = self.count("delete")
        moves = [op for op in self.messages if op.kind == "move"]
        return {
            f"{prefix}_copied": copied,
            f"{prefix}_deleted": deleted,
            f"{prefix}_moved": sum(1 for op in moves if op.src[0] != op.dst[0]),
            f"{prefix}_renumbered": sum(1 for op in moves if op.src[0] == op.dst[0]),
            f"{prefix}_greetings": len(self.greetings),
        }


@dataclass
class Merged:
    """The result: per mailbox and folder the identities in number order, per greeting the files kept."""

    folders: dict[MailboxKey, dict[str, list[Identity]]] = field(default_factory=dict)
    greetings: dict[MailboxKey, dict[str, dict[str, str]]] = field(default_factory=dict)
    conflicts: list[str] = field(default_factory=list)
    overflow: list[str] = field(default_factory=list)  # slave messages not taken: folder full on the master
    master: SidePlan = field(default_factory=SidePlan)
    slave: SidePlan = field(default_factory=SidePlan)


def merge(master: Spool, slave: Spool, base: Base | None, max_messages: int = DEFAULT_MAX_MESSAGES) -> Merged:
    """The merged spool and each side's plan to reach it (see the module docstring for the rules).

    ``max_messages`` (app_voicemail's ``maxmsg``) bounds only what arrives from
    the slave into a master folder: the messages beyond are listed in
    ``overflow`` and left out (they stay on the slave; the master's plan does
    not delete them there because the master never changes the slave while a
    copy-back is owed).
    """
    merged = Merged()
    for key in sorted(set(master.mailboxes) | set(slave.mailboxes)):
        m_box = master.mailboxes.get(key) or Mailbox(*key)
        s_box = slave.mailboxes.get(key) or Mailbox(*key)
        b_msgs = base.messages.get(key, {}) if base is not None else {}
        b_greets = base.greetings.get(key, {}) if base is not None else None
        _merge_mailbox(merged, key, m_box, s_box, b_msgs, max_messages)
        _merge_greetings(merged, key, m_box, s_box, b_greets)
    return merged


def _located(box: Mailbox) -> dict[Identity, Message]:
    """Each identity's one message on this side: the first in folder order, then number (duplicates aside)."""
    found: dict[Identity, Message] = {}
    for folder in FOLDERS:
        for _, message in sorted(_messages(box, folder).items()):
            found.setdefault(message.identity, message)
    return found


def _messages(box: Mailbox, folder: str) -> dict[int, Message]:
    """The messages of one folder by number (empty when the folder does not exist)."""
    found = box.folders.get(folder)
    return found.messages if found is not None else {}


def _origtime(message: Message) -> int:
    value = message.metadata.get("origtime", "").strip()
    return int(value) if value.isdigit() else 0


def _merge_mailbox(
    merged: Merged, key: MailboxKey, m_box: Mailbox, s_box: Mailbox, b_msgs: Mapping[Identity, str], max_messages: int
) -> None:
    m_at, s_at = _located(m_box), _located(s_box)
    target_folder: dict[Identity, str] = {}
    where = f"{key[0]}/{key[1]}"
    for identity in sorted(set(m_at) | set(s_at)):
        m, s = m_at.get(identity), s_at.get(identity)
        b = b_msgs.get(identity)
        if b is not None and (m is None or s is None):
            continue  # deleted by its owner on one side: deleted on both
        if m is not None and s is not None:
            if b is None or m.folder != b:
                folder = m.folder
                if s.folder != m.folder and (b is None or s.folder != b):
                    merged.conflicts.append(f"{where}: message {short(identity[-1])} moved on both sides")
            else:
                folder = s.folder
        else:
            folder = (m or s).folder
        target_folder[identity] = folder
    folders: dict[str, list[Identity]] = {}
    for folder in FOLDERS:
        members = [i for i, f in target_folder.items() if f == folder]
        if not members:
            continue
        staying = sorted((i for i in members if i in m_at and m_at[i].folder == folder), key=lambda i: m_at[i].number)
        arriving = sorted(
            (i for i in members if i not in staying),
            key=lambda i: (_origtime(m_at.get(i) or s_at[i]), (m_at.get(i) or s_at[i]).number, i),
        )
        ordered = staying[:]
        for identity in arriving:
            if identity not in m_at and len(ordered) >= max_messages:
                merged.overflow.append(f"{where}/{folder}: slave message msg{s_at[identity].number:04d}")
                continue
            ordered.append(identity)
        folders[folder] = ordered
    merged.folders[key] = folders
    merged.master.messages += _side_ops(where, m_box, m_at, s_at, folders)
    merged.slave.messages += _side_ops(where, s_box, s_at, m_at, folders)


def _side_ops(
    where: str,
    box: Mailbox,
    here: Mapping[Identity, Message],
    there: Mapping[Identity, Message],
    folders: Mapping[str, list[Identity]],
) -> list[MessageOp]:
    """Ordered operations taking one side's mailbox to ``folders`` (the invariant in the module docstring)."""
    target: dict[Identity, Slot] = {i: (f, n) for f, ids in folders.items() for n, i in enumerate(ids)}
    occupied: dict[Slot, Identity] = {}
    ops: list[MessageOp] = []
    # 1. Deletions: messages not kept, and every extra copy of a message (a copy at its target is the one kept).
    keepers: dict[Identity, Slot] = {}
    for identity, slot in target.items():
        if identity in here:
            copies = _slots_of(box, identity)
            keepers[identity] = slot if slot in copies else (here[identity].folder, here[identity].number)
    for folder in FOLDERS:
        for number, message in sorted(_messages(box, folder).items()):
            if keepers.get(message.identity) == (folder, number):
                occupied[(folder, number)] = message.identity
            else:
                ops.append(MessageOp("delete", where, message.identity, (folder, number), None, message.files))
    current: dict[Identity, Slot] = {i: s for s, i in occupied.items()}
    kept_files = {i: box.folders[f].messages[n].files for i, (f, n) in current.items()}
    # 2. Moves into free target slots, in target order (compaction needs no detour); the rest parked.
    pending = sorted(
        (i for i in current if current[i] != target[i]), key=lambda i: (FOLDERS.index(target[i][0]), target[i][1])
    )
    parked: list[Identity] = []
    for identity in pending:
        destination = target[identity]
        if destination not in occupied:
            _move(ops, where, identity, current, occupied, destination, kept_files[identity])
        else:
            parked.append(identity)
    for identity in parked:
        folder = target[identity][0]
        spare = max([n for (f, n) in occupied if f == folder] + [len(folders.get(folder, [])) - 1]) + 1
        _move(ops, where, identity, current, occupied, (folder, spare), kept_files[identity])
    for identity in parked:
        _move(ops, where, identity, current, occupied, target[identity], kept_files[identity])
    # 3. Arrivals from the other side, into their (now free) target slots.
    for identity, slot in sorted(target.items(), key=lambda item: (FOLDERS.index(item[1][0]), item[1][1])):
        if identity not in current:
            message = there[identity]
            ops.append(MessageOp("copy", where, identity, (message.folder, message.number), slot, message.files))
            occupied[slot] = identity
    return ops


def _slots_of(box: Mailbox, identity: Identity) -> list[Slot]:
    return [
        (folder, number)
        for folder in FOLDERS
        for number, message in _messages(box, folder).items()
        if message.identity == identity
    ]


def _move(ops, where, identity, current, occupied, destination, files) -> None:
    source = current[identity]
    if source == destination:
        return
    assert destination not in occupied, (destination, occupied)
    ops.append(MessageOp("move", where, identity, source, destination, files))
    del occupied[source]
    occupied[destination] = identity
    current[identity] = destination


def _merge_greetings(
    merged: Merged,
    key: MailboxKey,
    m_box: Mailbox,
    s_box: Mailbox,
    b_greets: Mapping[str, Mapping[str, str]] | None,
) -> None:
    where = f"{key[0]}/{key[1]}"
    result: dict[str, dict[str, str]] = {}
    for name in sorted(set(m_box.greetings) | set(s_box.greetings) | set(b_greets or {})):
        m = dict(m_box.greetings.get(name, {}))
        s = dict(s_box.greetings.get(name, {}))
        b = dict(b_greets.get(name, {})) if b_greets is not None else None
        conflict = False
        if m == s:
            chosen = m
        elif b is None:  # never synced: whatever one side alone has is new there
            chosen, conflict = (s, False) if not m else (m, bool(s))
        elif s == b:
            chosen = m
        elif m == b:
            chosen = s
        else:
            chosen, conflict = m, True
        if conflict:
            merged.conflicts.append(f"{where}: greeting {name} differs on both sides; the master's kept")
        if chosen:
            result[name] = chosen
        if chosen != m:
            merged.master.greetings.append(GreetingOp(where, name, chosen, m))
        if chosen != s:
            merged.slave.greetings.append(GreetingOp(where, name, chosen, s))
    merged.greetings[key] = result


def message_files(op: MessageOp, ext_order: Iterable[str] | None = None) -> list[str]:
    """The extensions of a message in write order: sound files first, the ``.txt`` last (it makes it visible)."""
    exts = sorted(op.files if ext_order is None else ext_order)
    return [e for e in exts if e != "txt"] + (["txt"] if "txt" in exts else [])


def file_steps(op: MessageOp) -> list[tuple[str, str, str | None, str | None]]:
    """One operation as file steps ``(action, path, source, digest)`` relative to the spool root.

    Actions: ``link`` (``source`` on this side → ``path``), ``fetch`` (``source``
    on the other side → ``path``, verified against ``digest``), ``unlink``.
    The order keeps the message visible at every step (module docstring).
    """

    def name(slot: Slot, ext: str) -> str:
        return f"{op.mailbox}/{slot[0]}/msg{slot[1]:04d}.{ext}"

    writes = message_files(op)
    if op.kind == "delete":  # sounds first: interrupted, the .txt left alone is a leftover (see leftovers())
        return [("unlink", name(op.src, ext), None, op.files[ext]) for ext in writes]
    removes = list(reversed(writes))  # the .txt first: the old number stops showing before its sounds go
    if op.kind == "copy":
        return [("fetch", name(op.dst, ext), name(op.src, ext), op.files[ext]) for ext in writes]
    steps = [("link", name(op.dst, ext), name(op.src, ext), op.files[ext]) for ext in writes]
    return steps + [("unlink", name(op.src, ext), None, op.files[ext]) for ext in removes]


def apply_plan(listing: Mapping[str, object], other: Mapping[str, object], plan: SidePlan) -> dict[str, object]:
    """The listing of one side after ``plan`` (file steps in order), for dry-runs and tests.

    ``other`` is the other side's listing (where ``fetch`` and greeting copies
    read). ValueError when a step finds the tree not as planned (a stale plan).
    """
    result = dict(listing)
    for op in plan.messages:
        for action, path, source, _digest in file_steps(op):
            if action == "unlink":
                result.pop(path, None)  # already gone: an interrupted run did it
                continue
            wanted = (result if action == "link" else other).get(source, result.get(path))
            if path in result and result[path] != wanted:
                raise ValueError(f"stale plan: {short(path)} exists with other content")
            if wanted is None:
                raise ValueError(f"stale plan: {short(source)} is gone")
            result[path] = wanted
    for op in plan.greetings:
        for ext in op.current:
            if ext not in op.files:
                del result[f"{op.mailbox}/{op.name}.{ext}"]
        for ext in op.files:
            result[f"{op.mailbox}/{op.name}.{ext}"] = other[f"{op.mailbox}/{op.name}.{ext}"]
    return result


def leftovers(listing: Mapping[str, object], spool: Spool, base: Base | None, other: Spool | None = None) -> list[str]:
    """Files an interrupted plan left behind, safe to remove before planning again (pure).

    * a sound file without its ``.txt`` holding the same bytes as a file of a
      message shown in the same mailbox, here or on the ``other`` side (the old
      or new number of an interrupted move, a copy from the other side cut
      short);
    * a ``.txt`` without any sound file whose message is shown under another
      number in the mailbox or is in the base (an interrupted deletion), or
      that is byte for byte the ``.txt`` of a message shown on the ``other``
      side (a mirror from that side cut short).

    Anything else without metadata is bad input: reported by the layout, never removed here.
    """
    shown: dict[str, set[str]] = {}
    shown_ids: dict[str, set[Identity]] = {}
    for box in [*spool.mailboxes.values(), *(other.mailboxes.values() if other is not None else [])]:
        digests = {d for f in box.folders.values() for m in f.messages.values() for d in m.files.values()}
        shown.setdefault(box.path, set()).update(digests)
    for box in spool.mailboxes.values():
        shown_ids[box.path] = box.identities()
    slots: dict[str, dict[str, object]] = {}
    for path, info in listing.items():
        parts = path.split("/")
        if len(parts) == 4 and (found := _MESSAGE_FILE.fullmatch(parts[3])):
            slots.setdefault("/".join(parts[:3]) + f"/msg{found[1]}", {})[found[2]] = info
    found_paths = []
    for slot, files in sorted(slots.items()):
        context, number, folder, msg = slot.split("/")
        box = spool.mailboxes.get((context, number))
        if box is not None and int(msg[3:]) in _messages(box, folder):
            continue  # a shown message
        mailbox = f"{context}/{number}"
        if "txt" not in files:
            found_paths += [f"{slot}.{e}" for e, i in files.items() if i.digest in shown.get(mailbox, set())]
        elif len(files) == 1:
            try:
                identity = message_identity(parse_metadata(files["txt"].text or ""))
            except ValueError:
                continue
            in_base = base is not None and identity in base.messages.get((context, number), {})
            copied = files["txt"].digest in shown.get(mailbox, set())
            if in_base or copied or identity in shown_ids.get(mailbox, set()):
                found_paths.append(f"{slot}.txt")
    return found_paths


def real_problems(spool: Spool, leftover_paths: list[str]) -> list[str]:
    """``spool``'s problems, but those about the files in ``leftover_paths`` (see :func:`leftovers`)."""
    slots = {path.rsplit(".", 1)[0] for path in leftover_paths}
    problems = [*spool.problems, *(problem for box in spool.mailboxes.values() for problem in box.problems)]
    return [problem for problem in problems if problem.split(": ", 1)[0].removesuffix(".txt") not in slots]


def changes_for(spool: Spool, merged: Merged) -> list[str]:
    """What the merge would change in ``spool``'s content (numbering aside), in words; [] when nothing.

    On the master this lists what the slave holds that the master does not
    (new, deleted or moved there, greetings): the copy-back owed. Empty means a
    mirror master → slave erases nothing the slave recorded.
    """
    changes: list[str] = []
    for key in sorted(set(merged.folders) | set(spool.mailboxes)):
        where = f"{key[0]}/{key[1]}"
        box = spool.mailboxes.get(key) or Mailbox(*key)
        now = {identity: message.folder for identity, message in _located(box).items()}
        after = {identity: folder for folder, ids in merged.folders.get(key, {}).items() for identity in ids}
        for identity in sorted(set(now) | set(after)):
            label = short(identity[-1], 40)
            if identity not in now:
                changes.append(f"{where}: message {label} to add ({after[identity]})")
            elif identity not in after:
                changes.append(f"{where}: message {label} to delete ({now[identity]})")
            elif now[identity] != after[identity]:
                changes.append(f"{where}: message {label} to move {now[identity]} -> {after[identity]}")
        greetings = {name: files for name, files in box.greetings.items() if files}
        for name in sorted(set(greetings) | set(merged.greetings.get(key, {}))):
            if greetings.get(name, {}) != merged.greetings.get(key, {}).get(name, {}):
                changes.append(f"{where}: greeting {name} to change")
    return changes
