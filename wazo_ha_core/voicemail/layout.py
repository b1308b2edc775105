"""Asterisk app_voicemail file storage, as a model built from a listing (pure, no I/O).

The spool (``/var/spool/asterisk/voicemail``) holds ``<context>/<mailbox>/`` per
mailbox; in it one directory per folder with messages ``msgNNNN.<ext>`` (one
``.txt`` metadata file plus one sound file per recorded format), and greetings
(``unavail``, ``busy``, ``greet``, ``temp``, one file per format) in the mailbox
directory itself. See docs/voicemail.rst for the sources.

A listing maps paths relative to the spool root (``default/1001/INBOX/msg0000.txt``)
to a :class:`FileInfo` (a digest of the content, and the text of ``.txt`` files).
Whoever reads the disk builds the listing; this module only interprets it.
Anything it cannot interpret is kept in ``Mailbox.problems``/``Spool.problems``
with the path and the reason, never silently dropped and never guessed.
"""

from __future__ import annotations

import configparser
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

# VoiceMailMain's folder numbers 0-9 (INBOX, Old, Work, Family, Friends, Cust1-5) plus
# Urgent, which app_voicemail keeps for messages left with the urgent flag.
FOLDERS = ("INBOX", "Old", "Urgent", "Work", "Family", "Friends", "Cust1", "Cust2", "Cust3", "Cust4", "Cust5")
GREETINGS = ("unavail", "busy", "greet", "temp")
# app_voicemail's limit on maxmsg (voicemail.conf); its default maxmsg is 100.
MAX_MESSAGES_LIMIT = 9999
DEFAULT_MAX_MESSAGES = 100

_SEGMENT = re.compile(r"[A-Za-z0-9_.@+-]{1,80}")
_MESSAGE_FILE = re.compile(r"msg(\d{4})\.([A-Za-z0-9]{1,16})")
_GREETING_FILE = re.compile(r"(" + "|".join(GREETINGS) + r")\.([A-Za-z0-9]{1,16})")
# Fields of the [message] section used for the fallback identity, when msg_id is absent.
IDENTITY_FIELDS = ("origmailbox", "origtime", "callerid", "duration")


def short(value: object, limit: int = 80) -> str:
    """repr() of a value, truncated, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class FileInfo:
    """One file of a listing: a digest of its bytes; the text too for ``.txt`` metadata."""

    digest: str
    text: str | None = None


@dataclass(frozen=True)
class Message:
    """One message: its number in its folder, its files by extension, its identity."""

    folder: str
    number: int
    files: Mapping[str, str]  # extension (case kept: "wav" and "WAV" differ) -> digest
    metadata: Mapping[str, str]
    identity: tuple[str, ...]

    def file_name(self, ext: str, number: int | None = None) -> str:
        return f"msg{self.number if number is None else number:04d}.{ext}"


@dataclass
class Folder:
    name: str
    messages: dict[int, Message] = field(default_factory=dict)

    def free_numbers(self, count: int, max_messages: int) -> list[int]:
        """The ``count`` lowest unused numbers below ``max_messages`` (fewer if the folder is full)."""
        free = [n for n in range(max_messages) if n not in self.messages]
        return free[:count]


@dataclass
class Mailbox:
    context: str
    number: str
    folders: dict[str, Folder] = field(default_factory=dict)
    greetings: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> {ext: digest}
    problems: list[str] = field(default_factory=list)

    @property
    def path(self) -> str:
        return f"{self.context}/{self.number}"

    def identities(self) -> set[tuple[str, ...]]:
        return {m.identity for f in self.folders.values() for m in f.messages.values()}


@dataclass
class Spool:
    mailboxes: dict[tuple[str, str], Mailbox] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def parse_metadata(text: str) -> dict[str, str]:
    """The ``[message]`` section of a ``msgNNNN.txt``; ValueError naming what is wrong."""
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",))
    try:
        parser.read_string(text)
    except configparser.Error as exc:
        raise ValueError(f"metadata is not INI text: {short(str(exc))}") from None
    if not parser.has_section("message"):
        raise ValueError("metadata has no [message] section")
    return dict(parser.items("message"))


def message_identity(metadata: Mapping[str, str]) -> tuple[str, ...]:
    """What makes a message the same on both nodes, whatever its number or folder.

    ``msg_id`` when app_voicemail wrote one (unique per message); otherwise the
    origin mailbox, time, caller id and duration together. ValueError when
    neither is usable (no way to tell the message from another one).
    """
    msg_id = metadata.get("msg_id", "").strip()
    if msg_id:
        return ("msg_id", msg_id)
    values = tuple(metadata.get(name, "").strip() for name in IDENTITY_FIELDS)
    if not values[1]:
        raise ValueError("metadata has neither msg_id nor origtime")
    return ("fields", *values)


def parse_tree(listing: Mapping[str, FileInfo]) -> Spool:
    """Build the model of a spool from its listing (see the module docstring)."""
    spool = Spool()
    message_files: dict[tuple[str, str, str, int], dict[str, FileInfo]] = {}
    for path in sorted(listing):
        parts = path.split("/")
        if not all(_SEGMENT.fullmatch(p) and p not in (".", "..") for p in parts):
            spool.problems.append(f"unexpected path {short(path)}")
            continue
        if len(parts) < 3:
            spool.problems.append(f"not inside a mailbox: {short(path)}")
            continue
        context, number = parts[0], parts[1]
        mailbox = spool.mailboxes.get((context, number))
        if mailbox is None:
            mailbox = spool.mailboxes[(context, number)] = Mailbox(context, number)
        rest = parts[2:]
        if len(rest) == 1 and (greeting := _GREETING_FILE.fullmatch(rest[0])):
            mailbox.greetings.setdefault(greeting[1], {})[greeting[2]] = listing[path].digest
        elif len(rest) == 2 and rest[0] in FOLDERS and (msg := _MESSAGE_FILE.fullmatch(rest[1])):
            message_files.setdefault((context, number, rest[0], int(msg[1])), {})[msg[2]] = listing[path]
        else:
            mailbox.problems.append(f"ignored {short(path)}: not a message or greeting file")
    for (context, number, folder_name, msg_number), files in sorted(message_files.items()):
        mailbox = spool.mailboxes[(context, number)]
        where = f"{context}/{number}/{folder_name}/msg{msg_number:04d}"
        message = _message(folder_name, msg_number, files, where, mailbox.problems)
        if message is not None:
            mailbox.folders.setdefault(folder_name, Folder(folder_name)).messages[msg_number] = message
    return spool


def _message(folder: str, number: int, files: dict[str, FileInfo], where: str, problems: list[str]) -> Message | None:
    meta = files.get("txt")
    if meta is None or meta.text is None:
        problems.append(f"{where}: sound file(s) without metadata (.txt): skipped")
        return None
    if len(files) < 2:
        problems.append(f"{where}: metadata without a sound file: skipped")
        return None
    try:
        metadata = parse_metadata(meta.text)
        identity = message_identity(metadata)
    except ValueError as exc:
        problems.append(f"{where}.txt: {exc}: skipped")
        return None
    return Message(folder, number, {ext: info.digest for ext, info in files.items()}, metadata, identity)
