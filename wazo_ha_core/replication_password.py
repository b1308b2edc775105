"""The replication role's password: generated once, kept 0600, the same on both nodes.

The master's replication logs in to the slave's configuration database as a
dedicated role with this password (read from the file, or given to libpq as a
passfile). The slave stores only a SCRAM-SHA-256 *verifier* of it on the role,
computed here in Python (RFC 5802 / RFC 7677, as PostgreSQL stores it), so the
plaintext is never sent to the server and cannot appear in its logs.

How the same password reaches both nodes (docs/enabling.rst): the master
generates it when it becomes master; the operator copies it once with
``wazo-ha replication-password show`` on the master piped or pasted into
``wazo-ha replication-password import`` on the slave (stdin, never argv).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from .errors import EditStepError
from .managed_files import replace_file

SCRAM_ITERATIONS = 4096
ALLOWED = frozenset(chr(code) for code in range(0x21, 0x7F))  # printable ASCII, no space: SASLprep is a no-op


def generate() -> str:
    return secrets.token_urlsafe(32)


def check(password: str) -> str:
    """The password, or EditStepError saying what is wrong with it (never quoting it)."""
    if not 16 <= len(password) <= 200:
        raise EditStepError(f"the replication password must be 16 to 200 characters long, got {len(password)}")
    if not set(password) <= ALLOWED:
        raise EditStepError("the replication password must be printable ASCII without spaces")
    return password


def read(path: Path) -> str | None:
    """The password in ``path``, ``None`` when the file does not exist. Refuses a file others can read."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise EditStepError(f"{path} is accessible to others (mode {mode & 0o777:04o}): chmod 600 {path}")
    try:
        return check(path.read_bytes().decode("ascii").strip())
    except UnicodeDecodeError:
        raise EditStepError(f"{path} does not hold a printable ASCII password") from None


def write(path: Path, password: str) -> bool:
    """Store ``password`` in ``path`` (0600, owner: us); return whether the file changed."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    return replace_file(path, (check(password) + "\n").encode(), 0o600, owner=(os.geteuid(), os.getegid()))


def scram_verifier(password: str, salt: bytes | None = None, iterations: int = SCRAM_ITERATIONS) -> str:
    """``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>``, as PostgreSQL stores passwords."""
    salt = salt if salt is not None else secrets.token_bytes(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def verifier_matches(verifier: str | None, password: str) -> bool:
    """Whether a stored SCRAM verifier was made from ``password``."""
    try:
        method, rest = verifier.split("$", 1)
        params, _keys = rest.split("$", 1)
        iterations, salt = params.split(":", 1)
        if method != "SCRAM-SHA-256":
            return False
        expected = scram_verifier(password, base64.b64decode(salt), int(iterations))
    except (AttributeError, ValueError):
        return False
    return hmac.compare_digest(expected, verifier)
