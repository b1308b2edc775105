"""Opening the two PostgreSQL connections: credentials, timeouts, session settings.

Passwords come from a 0600 file (``*_password_file``) or a libpq passfile
(``passfile``); they are handed to libpq in-process, never on a command line,
in the environment of a child, or in a message. The slave's endpoint carries
the TLS settings (:mod:`.tls`), given to libpq the same way.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import psycopg2.extensions

from wazo_ha_core import PeerUnreachable, PreflightError

from .files import file_mode_problem
from .tls import TlsSettings

APPLICATION_NAME = "wazo-ha pg_dump replication"

# Both sides must print values identically: the checksums hash each row's text.
SESSION_OPTIONS = {
    "DateStyle": "ISO, YMD",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    "client_encoding": "UTF8",
}


@dataclass(frozen=True)
class Endpoint:
    """Where one side's database is, and how we authenticate there (no secret held here)."""

    role: str  # "master" or "slave", for messages
    host: str
    port: int
    user: str
    database: str
    password_file: Path | None
    passfile: Path | None
    tls: TlsSettings | None = None  # None: libpq's defaults (the master, over its local socket)

    def describe(self) -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("/") else self.host
        return f"{self.role} PostgreSQL {self.user}@{host}:{self.port}/{self.database}"


def read_password_file(path: Path) -> str:
    """The first line of a private file; refuses a file others may read."""
    problem = file_mode_problem(path, 0o077, "readable by group or others", "chmod 600")
    if problem:
        raise PreflightError(f"password file {path}{problem}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PreflightError(f"password file {path}: cannot read it ({type(exc).__name__})") from None
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise PreflightError(f"password file {path} is empty")
    return lines[0]


def connect(
    endpoint: Endpoint,
    connect_timeout: float,
    statement_timeout: float,
    *,
    require_password: bool = False,
) -> psycopg2.extensions.connection:
    """Open a connection with bounded connect time, keepalives and our session settings.

    Raises :class:`PeerUnreachable` when the server cannot be reached or refuses us,
    :class:`PreflightError` when it let us in without a password and one is required, or when
    TLS failed (a certificate that does not verify, a slave without TLS under ``require``…)
    or a TLS file is missing.
    """
    kwargs: dict[str, object] = {
        "host": endpoint.host,
        "port": endpoint.port,
        "user": endpoint.user,
        "dbname": endpoint.database,
        "connect_timeout": max(2, math.ceil(connect_timeout)),  # libpq's minimum is 2 s
        "application_name": APPLICATION_NAME,
        # A cut link must end the run instead of hanging: probe an idle socket,
        # and give up on unacknowledged data after the same delay.
        "keepalives": 1,
        "keepalives_idle": max(1, math.ceil(connect_timeout)),
        "keepalives_interval": max(1, math.ceil(connect_timeout / 3)),
        "keepalives_count": 3,
        "tcp_user_timeout": int(max(1.0, connect_timeout * 3) * 1000),
        "options": " ".join(f"-c {key}={value.replace(' ', '')}" for key, value in SESSION_OPTIONS.items())
        + f" -c statement_timeout={int(statement_timeout * 1000)}"
        + f" -c idle_in_transaction_session_timeout={int(statement_timeout * 1000)}",
    }
    if endpoint.tls is not None:
        kwargs.update(endpoint.tls.libpq_parameters())  # checks the TLS files first
    if endpoint.password_file is not None:
        kwargs["password"] = read_password_file(endpoint.password_file)
    if endpoint.passfile is not None:
        kwargs["passfile"] = str(endpoint.passfile)
    try:
        connection = psycopg2.connect(**kwargs)
    except psycopg2.OperationalError as exc:
        tls_failure = endpoint.tls.failure(endpoint.describe(), str(exc)) if endpoint.tls else None
        if tls_failure is not None:
            raise tls_failure from None
        raise PeerUnreachable(f"cannot connect to the {endpoint.describe()}: {first_line(exc)}") from None
    finally:
        kwargs.pop("password", None)
    if require_password and not connection.info.used_password:
        connection.close()
        raise PreflightError(
            f"the {endpoint.describe()} let us in without a password (trust authentication); "
            "require scram-sha-256 for this host in its pg_hba.conf"
        )
    return connection


def first_line(exc: BaseException) -> str:
    """The first line of a libpq/psycopg2 error: it never carries the password."""
    text = str(getattr(exc, "pgerror", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def close_quietly(connection) -> None:
    if connection is None:
        return
    with contextlib.suppress(Exception):  # closing a broken connection may fail; nothing to keep anyway
        connection.close()
