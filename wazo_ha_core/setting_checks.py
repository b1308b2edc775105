"""Checks on setting values that end up in a file, a command line, SQL, ``pg_hba.conf``, cron or a unit.

Every check matches the whole string (``re.fullmatch``: a trailing newline is
never accepted) and returns ``None`` or a short reason that names the value,
truncated by :func:`shown` so a huge value never floods a message. The
settings loader runs :func:`tree_problem` over the merged settings (the
configuration is refused); the steps that write a value run the same check
again as a backstop.
"""

from __future__ import annotations

import os
import posixpath
import re
import reprlib
import stat
from pathlib import Path
from typing import Any

# C0 and C1 control characters and the Unicode line/paragraph separators: anything
# that may end a line in a file, a header or a command line somewhere.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# A PostgreSQL database or role name we write unquoted (or double-quoted, for '-')
# into SQL and pg_hba.conf: 63 bytes at most, nothing to escape.
SQL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
# Words pg_hba.conf reads as keywords ('all' matches every database), or SQL's PUBLIC.
HBA_KEYWORDS = frozenset({"all", "sameuser", "samerole", "samegroup", "replication", "public", "none"})
# One directory name (no '/'): tenant sound directories excluded from the sync.
FILE_NAME = re.compile(r"[A-Za-z0-9_@+:.-]+")
# A listen_addresses entry: a host name, an IP address (IPv6 zone included) or '*'.
LISTEN_ADDRESS = re.compile(r"[A-Za-z0-9_.:%*-]+")

# A path the rsync forced command takes as one word (wazo_ha_plugins.rsync.trust.SAFE_ARGUMENT's characters).
SYNC_PATH = re.compile(r"(/[A-Za-z0-9_@+:.-]+)+")
# The state stores switchover.peer_store_url may name: SQLite by absolute path, or PostgreSQL (libpq, psycopg2).
SQLITE_URL = re.compile(r"sqlite:///(/[^?#\s]+)")
POSTGRES_URL = re.compile(
    r"postgresql(\+psycopg2)?://([^/?#@\s]*@)?[A-Za-z0-9_.:\[\]%-]*(/[A-Za-z0-9_-]+)?(\?[^#\s]*)?"
)

SHOWN_MAX = 80


def shown(value: Any, limit: int = SHOWN_MAX) -> str:
    """``repr(value)`` cut to ``limit`` characters; never raises, never builds a huge text first.

    Long strings and containers are abridged by :mod:`reprlib` (a 10 MB string
    is not copied whole, a deeply nested list is cut at a few levels); an
    integer too large to print or an object whose ``repr`` fails is described
    by its type.
    """
    abridge = reprlib.Repr()
    abridge.maxlevel, abridge.maxstring, abridge.maxother = 3, limit, limit
    try:
        text = abridge.repr(value)
    except Exception:  # e.g. ValueError: an int beyond sys.get_int_max_str_digits()
        text = f"<{type(value).__name__} that cannot be shown>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def control_problem(value: str) -> str | None:
    if CONTROL.search(value):
        return f"must not contain a newline or another control character, got {shown(value)}"
    return None


def sql_name_problem(value: Any) -> str | None:
    """A database or role name: letters, digits, '_' and '-', 63 at most, not a pg_hba keyword."""
    if not isinstance(value, str) or not SQL_NAME.fullmatch(value):
        return (
            "must be a PostgreSQL name (a letter or '_', then letters, digits, '_' or '-'; "
            f"63 characters at most), got {shown(value)}"
        )
    if value.lower() in HBA_KEYWORDS:
        return f"must not be a pg_hba.conf or SQL keyword ({', '.join(sorted(HBA_KEYWORDS))}), got {shown(value)}"
    return None


def file_name_problem(value: Any) -> str | None:
    """One directory name: letters, digits and ``_@+:.-``, never ``.`` or ``..`` (so never a '/')."""
    if not isinstance(value, str) or not FILE_NAME.fullmatch(value) or value in (".", ".."):
        return f"must be a directory name (letters, digits, '_@+:.-'; no '/'), got {shown(value)}"
    return None


def absolute_path_problem(value: Any) -> str | None:
    """An absolute path with no control character and no ``..`` component."""
    if not isinstance(value, str) or not value.startswith("/"):
        return f"must be an absolute path, got {shown(value)}"
    problem = control_problem(value)
    if problem:
        return problem
    if ".." in value.split("/"):
        return f"must not contain a '..' component, got {shown(value)}"
    return None


def listen_address_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not LISTEN_ADDRESS.fullmatch(value):
        return f"must be a host name, an IP address or '*', got {shown(value)}"
    return None


def executable_problem(value: Any) -> str | None:
    """The program the schedules run: an absolute path systemd takes as an executable.

    systemd refuses quotes and backslashes in an executable's name and does not
    substitute ``$`` variables in it (only in the arguments), so none of them.
    """
    problem = absolute_path_problem(value)
    if problem:
        return problem
    if any(char in value for char in "$\"'\\"):
        return f"must be an absolute path without quotes, '\\' or '$', got {shown(value)}"
    return None


def peer_address_problem(value: Any) -> str | None:
    """A standby's address: an IP address of another host, as ``remote_address`` takes it."""
    from .config import normalise_address  # config imports this module

    try:
        normalise_address(value)
    except (ValueError, TypeError) as exc:
        return str(exc)
    return None


def sync_path_problem(value: Any) -> str | None:
    """A directory the master pulls from the slave: absolute, no ``..``, letters, digits and ``_@+:.-`` only."""
    problem = absolute_path_problem(value)
    if problem:
        return problem
    if not SYNC_PATH.fullmatch(value.rstrip("/") or "/"):
        return (
            "must be an absolute directory path of letters, digits and '_@+:.-' (it goes into the slave's "
            f"forced rsync command), not '/', got {shown(value)}"
        )
    return None


def copy_back_directories_problem(tree: dict[str, Any]) -> str | None:
    """``copy_back.directories``: each a sync path, none twice, none inside another copy-back directory,
    and none overlapping what the master mirrors to the slave (``file_sync.directories``, which deletes on
    the slave what the master lacks: it would remove what the slave recorded before it is copied back),
    nor the staging directory."""
    copy_back = tree["copy_back"]
    directories = copy_back["directories"]
    for value in directories:
        problem = sync_path_problem(value)
        if problem:
            return problem
    others = [
        ("copy_back.voicemail_dir", copy_back["voicemail_dir"]),
        ("copy_back.staging_dir", copy_back["staging_dir"]),
    ]
    others += [("file_sync.directories", path) for path in tree["file_sync"]["directories"]]
    seen: list[str] = []
    for value in directories:
        path = value.rstrip("/")
        for key, other in [("copy_back.directories", p) for p in seen] + others:
            if _overlap(path, str(other).rstrip("/")):
                return f"{shown(value)} overlaps {key} {shown(other)}: each directory is copied back on its own"
        seen.append(path)
    return None


def _overlap(one: str, other: str) -> bool:
    return one == other or one.startswith(other + "/") or other.startswith(one + "/")


def peer_store_url_problem(value: Any) -> str | None:
    """``switchover.peer_store_url``: ``sqlite:////absolute/path`` or a ``postgresql://`` URL without a password.

    Anything else would load another SQLAlchemy dialect (a plugin of its own), open a relative file
    wherever the schedule runs, or put a secret in the settings file and in every message that names
    the store: the password goes in ``~/.pgpass`` (or ``PGPASSFILE``), as libpq reads it.
    """
    if not isinstance(value, str):
        return f"must be a SQLAlchemy URL, got {shown(value)}"
    if SQLITE_URL.fullmatch(value):
        return None if ".." not in value.split("/") else f"must not contain a '..' component, got {shown(value)}"
    match = POSTGRES_URL.fullmatch(value)
    if match:
        if (match.group(2) and ":" in match.group(2)) or "password=" in (match.group(4) or "").lower():
            return (
                "must not hold a password (it would be shown wherever the URL is: put it in ~/.pgpass), "
                f"got {shown(_redacted(value))}"
            )
        return None
    return (
        "must be sqlite:////<absolute path> or postgresql://[user@]host[:port]/database[?options], "
        f"got {shown(_redacted(value))}"
    )


def _redacted(url: str) -> str:
    """``url`` with whatever stands before an ``@`` (user and password) replaced: never a secret in a message."""
    url = re.sub(r"(://)[^/?#]*@", r"\1…@", url)
    return re.sub(r"(?i)(password=)[^&#]*", r"\1…", url)


def _each(check):
    def problem(values: Any) -> str | None:
        for value in values or ():
            reason = check(value)
            if reason:
                return reason
        return None

    return problem


# Setting key → check of its value (the type was checked before: lists are lists of strings).
CHECKS = {
    "slave_db.database": sql_name_problem,
    "slave_db.role": sql_name_problem,
    "slave_db.grant_roles": _each(sql_name_problem),
    "slave_db.listen_addresses": _each(listen_address_problem),
    "file_sync.directories": _each(absolute_path_problem),
    "file_sync.tenant_sounds_excluded": _each(file_name_problem),
    "schedules.command": executable_problem,
    "switchover.peer_store_url": peer_store_url_problem,
    "standbys": _each(peer_address_problem),
}


# Argument lists run without a shell (subprocess argv): any text is passed as one argument, as written.
ARGV_KEYS = frozenset({"slave_db.reload_command", "slave_db.restart_command", "schedules.systemctl"})


def value_problem(kind: str, value: Any) -> str | None:
    """Any text setting (str, path, names, paths): no control character anywhere; paths: no '..'."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if isinstance(item, str):
            reason = control_problem(item)
            if reason:
                return reason
            if kind.startswith("path") and ".." in item.split("/"):
                return f"must not contain a '..' component, got {shown(item)}"
    return None


def tree_problem(tree: dict[str, Any], options) -> tuple[str, str] | None:
    """The first ``(key, reason)`` wrong in the merged settings ``tree``, or ``None``."""
    problem = _tree_value_problem(tree, options)
    if problem:
        return problem
    reason = copy_back_directories_problem(tree)
    return ("copy_back.directories", reason) if reason else None


def _tree_value_problem(tree: dict[str, Any], options) -> tuple[str, str] | None:
    for option in options:
        node: Any = tree
        for part in option.key.split("."):
            node = node[part]
        if option.kind == "mapping" or node is None or option.key in ARGV_KEYS:
            continue
        reason = value_problem(option.kind, node)
        if not reason and option.key in CHECKS:
            reason = CHECKS[option.key](node)
        if reason:
            return option.key, reason
    return None


def normalised_under(root: str, absolute: str) -> str | None:
    """``absolute`` (a node path) joined under ``root`` with ``..`` resolved lexically; ``None`` if it leaves root."""
    base = posixpath.normpath(root)
    joined = posixpath.normpath(posixpath.join(base, absolute.lstrip("/")))
    if joined == base or joined.startswith(base.rstrip("/") + "/"):
        return joined
    return None


# --- the configuration files themselves --------------------------------------------------


def trusted_owners() -> tuple[int, ...]:
    """Who may own a configuration file or its directory: root, and the user running us."""
    return (0, os.geteuid())


def config_file_problem(path: Path) -> str | None:
    """Why the configuration file ``path`` must not be read, or ``None``.

    It must be a regular file (a symbolic link is followed: the file it points
    to, and the directory holding that file, must pass), owned by root or by
    the running user, and neither group- nor world-writable — anyone else who
    can write it could make us run commands as root (the cron lines, the
    reload commands).
    """
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    problem = _owner_mode_problem(info, "file")
    if problem is None and path.is_symlink():
        target = Path(os.path.realpath(path))
        problem = config_dir_problem(target.parent)
        if problem:
            problem = f"links to {target}, whose {problem}"
    return problem


def config_dir_problem(path: Path) -> str | None:
    """Why a directory holding configuration files must not be trusted (same owners; not group/world-writable)."""
    try:
        info = path.stat()
    except OSError as exc:
        return f"cannot stat: {exc.strerror}"
    return _owner_mode_problem(info, "directory")


def _owner_mode_problem(info: os.stat_result, what: str) -> str | None:
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in trusted_owners():
        return f"{what} owned by uid {info.st_uid}, not by root or by the running user (uid {os.geteuid()})"
    if mode & 0o022:
        return f"{what} is group- or world-writable (mode {mode:04o}); chmod go-w it"
    return None
