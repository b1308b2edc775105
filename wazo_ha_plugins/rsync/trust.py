"""The trust between master and slave: the sync key and its authorized_keys line.

Pure helpers (no network): build and edit the text of ``authorized_keys``,
generate the key, read the init password. The plugin does the I/O on the
slave through paramiko; the pinned host key is :mod:`.hostkeys`.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import re
import socket
import subprocess
import tempfile
from pathlib import Path

from wazo_ha_core import PluginError

#: Comment of the key line on the slave; lines carrying it are ours to replace.
KEY_COMMENT = "wazo-ha-file-sync"
#: Characters allowed in anything written into the forced command (no quoting needed). Always used
#: with ``fullmatch``: ``match`` with ``$`` would accept a trailing newline and split the key line.
SAFE_ARGUMENT = re.compile(r"[A-Za-z0-9._/@+:-]+")
#: An OpenSSH key type and base64 blob, as read from our public key file.
KEY_TYPE = re.compile(r"[a-z0-9@.-]+")
KEY_BLOB = re.compile(r"[A-Za-z0-9+/]+={0,3}")
#: The forced command as :func:`forced_command` builds it: safe words separated by single spaces.
COMMAND = re.compile(r"[A-Za-z0-9._/@+:-]+( [A-Za-z0-9._/@+:-]+)*")


def shown(value: object, limit: int = 80) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def from_address(value: object) -> str:
    """An address or network for ``from="…"``, as sshd reads it; PluginError naming the setting otherwise.

    IPv4 or IPv6, a single address or a CIDR network without host bits; no host names, no
    wildcards, no IPv6 zone (``%eth0``): sshd matches the connection's address against it.
    """
    problem = "an IP address or a CIDR network (e.g. 10.0.0.1 or 10.0.0.0/24)"
    if not isinstance(value, str) or not re.fullmatch(r"[0-9A-Fa-f.:/]+", value):
        raise PluginError(f"plugin_config.rsync.from_addresses: {shown(value)} is not {problem}")
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise PluginError(f"plugin_config.rsync.from_addresses: {shown(value)} is not {problem}: {exc}") from None
    return str(network.network_address) if "/" not in value else str(network)


def host_pattern(host: str, port: int) -> str:
    """How OpenSSH names a host in known_hosts: ``host`` on port 22, ``[host]:port`` otherwise."""
    return host if port == 22 else f"[{host}]:{port}"


def generate_key(path: Path, comment: str) -> None:
    """Write a new passphrase-less ed25519 key pair at ``path`` (0600) and ``path.pub``, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".wazo-ha-keygen-") as scratch:
        scratch_key = Path(scratch) / "key"
        result = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(scratch_key)],
            capture_output=True,
            text=True,
            timeout=30,
            stdin=subprocess.DEVNULL,
        )
        if result.returncode != 0:
            raise PluginError(f"ssh-keygen failed to create the sync key: {result.stderr.strip()}")
        os.chmod(scratch_key, 0o600)
        os.replace(scratch_key.with_suffix(".pub"), path.with_name(path.name + ".pub"))
        os.replace(scratch_key, path)


def public_key(path: Path) -> tuple[str, str]:
    """``(type, base64 blob)`` of the public half of the key at ``path``."""
    pub = path.with_name(path.name + ".pub")
    try:
        fields = pub.read_text().split()
    except OSError as exc:
        raise PluginError(f"cannot read the public sync key {pub}: {exc.strerror}") from None
    if len(fields) < 2:
        raise PluginError(f"{pub} is not an OpenSSH public key")
    return fields[0], fields[1]


def forced_command(
    python: str,
    receiver: str,
    root: str,
    allow: list[str],
    allow_tree: list[str],
    protect: list[str],
    send: list[str] = (),
    send_in_tree: list[str] = (),
):
    """The ``command="…"`` of the key line; every word is checked to need no quoting.

    ``send``/``send_in_tree``: the copy-back directories the master may read (pull) with the same key.
    """
    words = [python, "-I", "-S", receiver, "--root", root]
    words += [word for directory in allow for word in ("--allow", directory)]
    words += [word for directory in allow_tree for word in ("--allow-tree", directory)]
    words += [word for name in protect for word in ("--protect", name)]
    words += [word for directory in send for word in ("--send", directory)]
    words += [word for name in send_in_tree for word in ("--send-in-tree", name)]
    for word in words:
        if not isinstance(word, str) or not SAFE_ARGUMENT.fullmatch(word):
            raise PluginError(
                f"{shown(word)} cannot go into the slave's forced command: "
                "only letters, digits and . _ / @ + : - are allowed in sync paths and names "
                "(file_sync.directories, file_sync.tenant_sounds_dir, file_sync.tenant_sounds_excluded, "
                "copy_back.voicemail_dir, copy_back.directories, copy_back.tenant_sounds_names, "
                "plugin_config.rsync.remote_python, receiver_path, remote_root)"
            )
    return " ".join(words)


def authorized_line(key_type: str, blob: str, from_addresses: list[str], command: str) -> str:
    """Our one ``authorized_keys`` line; PluginError if any part could break out of it.

    Every part is checked whole (no newline, quote or separator can get in), so the result
    is exactly one line or nothing.
    """
    if not isinstance(key_type, str) or not KEY_TYPE.fullmatch(key_type):
        raise PluginError(f"the sync key's type {shown(key_type)} is not an OpenSSH key type")
    if not isinstance(blob, str) or not KEY_BLOB.fullmatch(blob):
        raise PluginError("the sync key's public half is not base64: run `wazo-ha sync init --rotate`")
    if not isinstance(command, str) or not COMMAND.fullmatch(command):
        raise PluginError(f"the forced command {shown(command)} holds characters sshd would misread")
    if not from_addresses:
        raise PluginError("plugin_config.rsync.from_addresses: no address to accept the key from")
    sources = ",".join(from_address(address) for address in from_addresses)
    return f'from="{sources}",restrict,command="{command}" {key_type} {blob} {KEY_COMMENT}'


def lines_of(text):
    """``text`` (str or bytes) cut after each ``\\n`` only, as sshd reads it; joined back it is ``text``."""
    pattern = r"[^\n]*\n|[^\n]+"
    return re.findall(pattern.encode() if isinstance(text, bytes) else pattern, text)


def merge_authorized_keys(text: str, new_line: str, retired_blobs: set[str]) -> str:
    """``text`` with our previous lines (our comment, or a retired key) replaced by ``new_line``.

    Every other line is kept as it was, byte for byte, in order. Our line goes
    where the first of our previous lines was, or at the end.
    """
    kept: list[str] = []
    position = None
    for line in lines_of(text):
        if is_our_line(line, retired_blobs):
            if position is None:
                position = len(kept)
            continue
        kept.append(line)
    if position is None:
        position = len(kept)
        if kept and not kept[-1].endswith("\n"):
            kept[-1] += "\n"
    kept.insert(position, new_line + "\n")
    return "".join(kept)


def is_our_line(line: str, retired_blobs: set[str] = frozenset()) -> bool:
    """A key line of ours: our comment last, or one of ``retired_blobs``; never a comment line."""
    words = line.split()
    return (
        bool(words)
        and not line.lstrip().startswith("#")
        and (words[-1] == KEY_COMMENT or any(blob in words for blob in retired_blobs))
    )


def without_our_lines(content: bytes) -> tuple[bytes, int]:
    """``content`` (an authorized_keys file) without our key lines, every other byte kept; and how many went."""
    kept, removed = [], 0
    for line in lines_of(content):
        if is_our_line(line.decode("utf-8", errors="replace")):
            removed += 1
        else:
            kept.append(line)
    return b"".join(kept), removed


def without_pins(content: bytes, pattern: str) -> tuple[bytes, int]:
    """``content`` (a known_hosts file) without the lines pinning ``pattern``, every other byte kept."""
    kept, removed = [], 0
    for line in lines_of(content):
        fields = line.decode("utf-8", errors="replace").split()
        if len(fields) >= 3 and pattern in fields[0].split(","):
            removed += 1
        else:
            kept.append(line)
    return b"".join(kept), removed


def write_private(path: Path, text: str | bytes, mode: int = 0o600, owner: tuple[int, int] | None = None) -> None:
    """Write ``text`` to ``path`` atomically with ``mode`` (and ``owner``), creating parents 0700."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    descriptor, scratch = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(descriptor, mode)
        if owner is not None:
            os.fchown(descriptor, *owner)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text.encode() if isinstance(text, str) else text)
        os.replace(scratch, path)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise


def source_address(peer: str, port: int) -> str:
    """The local address this node uses to reach ``peer`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect((peer, port))
        except OSError as exc:
            raise PluginError(f"no route to the slave {peer}: {exc.strerror}") from None
        return probe.getsockname()[0]


def read_password(config: dict, user: str, peer: str) -> str:
    """The slave's password for the one-time set-up: environment, file, or terminal prompt.

    Never from the command line. A password file readable by group or others is refused.
    """
    variable = config.get("password_env")
    if variable:
        value = os.environ.get(variable)
        if value:
            return value
        raise PluginError(f"plugin_config.rsync.password_env names {variable!r}, but that variable is empty or unset")
    password_file = config.get("password_file")
    if password_file:
        path = Path(password_file)
        try:
            mode = path.stat().st_mode
            if mode & 0o077:
                raise PluginError(
                    f"plugin_config.rsync.password_file {path} is readable by others "
                    f"(mode {mode & 0o777:o}): chmod 600 it"
                )
            return path.read_text().rstrip("\n")
        except OSError as exc:
            raise PluginError(f"cannot read plugin_config.rsync.password_file {path}: {exc.strerror}") from None
    try:
        with open("/dev/tty"):
            pass
    except OSError:
        raise PluginError(
            "the slave's password is needed once: run on a terminal, or set plugin_config.rsync.password_file "
            "or plugin_config.rsync.password_env"
        ) from None
    return getpass.getpass(f"password of {user}@{peer} (used once, to install the sync key): ")
