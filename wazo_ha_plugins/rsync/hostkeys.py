"""The slave's sshd host keys: read, fingerprint, parse what an operator pastes, pin in our known_hosts.

Pure helpers (no network). A fingerprint is what ``ssh-keygen -lf`` prints:
``SHA256:`` and the unpadded base64 of the SHA-256 of the key blob. Every
line written to known_hosts is rebuilt from checked parts (a known key type,
strict base64 that paramiko parses as that type, a host pattern without
spaces), so no input can add a line or a malformed one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from wazo_ha_core import PluginError

from .trust import write_private

#: Host key types sshd offers and paramiko checks (ssh-dss is obsolete and refused).
KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "ssh-rsa")
FINGERPRINT = re.compile(r"SHA256:[A-Za-z0-9+/]{43}")
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
HOST_PATTERN = re.compile(r"(\[[A-Za-z0-9.:_-]+\]:[0-9]{1,5}|[A-Za-z0-9.:_-]+)")
#: More than this on stdin is not the output of ``host-key show``.
MAX_TEXT = 64 * 1024


@dataclass(frozen=True)
class HostKey:
    key_type: str
    blob: bytes

    @property
    def base64(self) -> str:
        return base64.b64encode(self.blob).decode()

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.blob)

    def known_hosts_line(self, pattern: str) -> str:
        return f"{pattern} {self.key_type} {self.base64}"

    def __str__(self) -> str:
        return f"{self.fingerprint} ({self.key_type})"


def fingerprint(blob: bytes) -> str:
    """``SHA256:…`` as OpenSSH prints it."""
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def shorten(value: object, limit: int = 80) -> str:
    """``repr`` of a bad value, cut to ``limit`` characters for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + "…" + text[-4:]


def parse_fingerprint(value: str, field: str = "--host-key-fingerprint") -> str:
    """A ``SHA256:…`` fingerprint (surrounding blanks ignored), or a clear error naming the value."""
    text = value.strip() if isinstance(value, str) else value
    if not isinstance(text, str) or not FINGERPRINT.fullmatch(text):
        raise PluginError(
            f"{field}: {shorten(value)} is not a SHA256 fingerprint "
            "(SHA256: and 43 base64 characters, as `ssh-keygen -lf` and `wazo-ha sync host-key show` print it)"
        )
    return text


def parse_key(key_type: str, encoded: str, where: str) -> HostKey:
    """One public key from its type and base64 blob; the blob must really be a key of that type."""
    if key_type not in KEY_TYPES:
        raise PluginError(f"{where}: {shorten(key_type)} is not a host key type ({', '.join(KEY_TYPES)})")
    if not BASE64.fullmatch(encoded):
        raise PluginError(f"{where}: {shorten(encoded)} is not a base64 key")
    import paramiko  # heavy (cryptography): only where a key is parsed, not for every sync

    try:
        blob = base64.b64decode(encoded, validate=True)
        (length,) = struct.unpack(">I", blob[:4])
        if blob[4 : 4 + length] != key_type.encode():
            raise ValueError("type mismatch")
        paramiko.PKey.from_type_string(key_type, blob)
    except (binascii.Error, struct.error, ValueError, paramiko.SSHException, TypeError, IndexError):
        raise PluginError(f"{where}: {shorten(encoded)} is not a valid {key_type} key") from None
    return HostKey(key_type, blob)


def parse_key_text(text: str, source: str) -> list[HostKey]:
    """Host keys from OpenSSH public key lines (``type base64 [comment]``), e.g. ``host-key show``'s output.

    Blank lines and ``#`` comments are skipped. A ``SHA256:…`` word in a
    line's comment must be that key's fingerprint (a cut or altered copy is
    refused). Anything else is an error naming the line; nothing is returned
    partially.
    """
    if len(text) > MAX_TEXT:
        raise PluginError(f"{source}: more than {MAX_TEXT} characters, not the output of `wazo-ha sync host-key show`")
    keys: list[HostKey] = []
    for number, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        where = f"{source} line {number}"
        if len(words) == 1 and FINGERPRINT.fullmatch(words[0]):
            raise PluginError(
                f"{where}: a fingerprint alone cannot be pinned (the key itself is needed): "
                "pass it to `wazo-ha sync init --host-key-fingerprint` instead"
            )
        if len(words) < 2:
            raise PluginError(f"{where}: {shorten(line)} is not an OpenSSH public key line (type base64 [comment])")
        key = parse_key(words[0], words[1], where)
        claimed = [word for word in words[2:] if word.startswith("SHA256:")]
        if any(word != key.fingerprint for word in claimed):
            raise PluginError(
                f"{where}: the key's fingerprint is {key.fingerprint}, not {shorten(claimed[0])}: "
                "the text was altered or cut"
            )
        if key not in keys:
            keys.append(key)
    if not keys:
        raise PluginError(f"{source}: no host key found (expected the output of `wazo-ha sync host-key show`)")
    return keys


def read_host_key_files(paths: list[Path]) -> list[tuple[Path, HostKey]]:
    """The keys of the ``.pub`` files that exist (missing ones skipped); an unreadable one is an error."""
    found = []
    for path in paths:
        try:
            text = path.read_text(encoding="ascii")
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise PluginError(f"cannot read the host key {path}: {getattr(exc, 'strerror', None) or exc}") from None
        found += [(path, key) for key in parse_key_text(text, str(path))]
    return found


def show_text(found: list[tuple[Path, HostKey]], hostname: str) -> str:
    """What ``wazo-ha sync host-key show`` prints: comments, then one ``type base64 SHA256:…`` line per key."""
    lines = [
        f"# sshd host keys of {hostname}, for `wazo-ha sync host-key pin` on the master",
        "# (check the fingerprints with `ssh-keygen -lf` on this node if the text went through other hands)",
    ]
    lines += [f"{key.key_type} {key.base64} {key.fingerprint}" for _, key in found]
    return "\n".join(lines) + "\n"


def check_pattern(pattern: str) -> str:
    if not HOST_PATTERN.fullmatch(pattern):
        raise PluginError(f"{shorten(pattern)} cannot be written to known_hosts as a host name")
    return pattern


def pinned_keys(known_hosts: Path, pattern: str) -> list[HostKey]:
    """The keys pinned for ``pattern`` in our known_hosts (none when the file is missing)."""
    try:
        lines = known_hosts.read_text().splitlines()
    except FileNotFoundError:
        return []
    keys = []
    for number, line in enumerate(lines, 1):
        words = line.split()
        if len(words) >= 3 and pattern in words[0].split(","):
            keys.append(parse_key(words[1], words[2], f"{known_hosts} line {number}"))
    return keys


def pin_keys(known_hosts: Path, pattern: str, keys: list[HostKey]) -> bool:
    """Make ``keys`` the only keys pinned for ``pattern`` (other hosts' lines kept); False when already so.

    Written atomically, mode 0644 (public keys; OpenSSH reads the file).
    """
    check_pattern(pattern)
    try:
        lines = known_hosts.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    ours = [line for line in lines if line.split() and pattern in line.split()[0].split(",")]
    others = [line for line in lines if line not in ours]
    new_lines = [key.known_hosts_line(pattern) for key in keys]
    if ours == new_lines:
        return False
    write_private(known_hosts, "\n".join([*others, *new_lines]) + "\n", 0o644)
    return True


def describe(keys: list[HostKey]) -> str:
    return ", ".join(str(key) for key in keys) if keys else "none"
