"""TLS of the replication connection to the slave: the settings, what libpq is told, what the link turned out to be.

Settings (``plugin_config.pg_dump``): ``sslmode`` (libpq's, default
``prefer``), ``sslrootcert`` (the CA certificate, or the slave's own
self-signed one, that ``verify-ca``/``verify-full`` check the slave against)
and ``sslcrl``. They go to libpq as connection parameters, in-process; every
run, doctor check and preflight that talks to the slave uses them.

A link is one of :data:`LINK_KINDS`: ``clear`` (no TLS), ``encrypted`` (TLS,
but the slave's certificate was not checked: a man in the middle can read
it) or ``verified`` (TLS with ``verify-ca``/``verify-full``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from wazo_ha_core import PluginError, PreflightError

from .files import file_mode_problem

SSLMODES = {
    "disable": "never TLS: the data crosses the network in clear",
    "allow": "clear unless the slave insists on TLS",
    "prefer": "TLS when the slave offers it, without checking its certificate; clear otherwise",
    "require": "TLS or no connection; the slave's certificate is not checked",
    "verify-ca": "TLS, the slave's certificate signed by sslrootcert",
    "verify-full": "TLS, the slave's certificate signed by sslrootcert and naming the slave's address",
}
VERIFYING_MODES = ("verify-ca", "verify-full")
TLS_KEYS = ("sslmode", "sslrootcert", "sslcrl")
DEFAULTS = {"sslmode": "prefer", "sslrootcert": None, "sslcrl": None}

#: No control character: libpq's connection string cannot carry a NUL, a message should not carry a newline.
_ABSOLUTE_PATH = re.compile(r"/[^\x00-\x1f\x7f]*")

CLEAR, ENCRYPTED, VERIFIED = "clear", "encrypted", "verified"
LINK_KINDS = (CLEAR, ENCRYPTED, VERIFIED)

#: libpq's words for a failure of the TLS layer (handshake, certificate, a slave without TLS).
_TLS_LAYER = re.compile(r"SSL error|SSL SYSCALL|does not support SSL|SSL connection|certificate", re.IGNORECASE)
#: A slave whose pg_hba.conf accepts us only over TLS (hostssl), met without TLS.
_CLEAR_REFUSED = re.compile(r"no pg_hba\.conf entry .*, no encryption")

SETUP_HINT = (
    "see docs/plugins/pg_dump.rst, 'TLS': ssl = on on the slave's PostgreSQL, then sslmode: verify-full "
    "and sslrootcert: the slave's CA (or its own certificate)"
)


class TlsRefused(PreflightError):
    """The connection to the slave failed in its TLS layer, or a TLS file is missing; nothing was changed."""


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"


def validate(config: dict, section: str) -> None:
    """Refuse a bad TLS setting with the key and the value (``section`` is ``plugin_config.<name>``)."""
    mode = config["sslmode"]
    if not isinstance(mode, str) or mode not in SSLMODES:
        raise PluginError(f"{section}.sslmode must be one of {', '.join(SSLMODES)}, got {_shown(mode)}")
    for key in ("sslrootcert", "sslcrl"):
        value = config[key]
        if value is not None and not (isinstance(value, str) and _ABSOLUTE_PATH.fullmatch(value)):
            raise PluginError(f"{section}.{key} must be an absolute path or null, got {_shown(value)}")
    if mode in VERIFYING_MODES and config["sslrootcert"] is None:
        # libpq would fall back on ~/.postgresql/root.crt of whoever runs us: name the file instead.
        raise PluginError(
            f"{section}.sslmode {mode!r} needs {section}.sslrootcert (the CA certificate that signed the "
            "slave's, or the slave's own certificate), got null"
        )


@dataclass(frozen=True)
class TlsSettings:
    """The TLS part of the connection to the slave (paths already resolved under ``root``)."""

    section: str  # "plugin_config.pg_dump", for messages
    sslmode: str = "prefer"
    sslrootcert: Path | None = None
    sslcrl: Path | None = None

    @property
    def verifying(self) -> bool:
        return self.sslmode in VERIFYING_MODES

    def libpq_parameters(self) -> dict[str, str]:
        """Connection parameters for libpq; the files are checked first (:class:`PreflightError` naming the key)."""
        parameters = {"sslmode": self.sslmode}  # always given: PGSSLMODE in our environment must not decide
        for key in ("sslrootcert", "sslcrl"):
            path = getattr(self, key)
            if path is not None:
                self._check_file(key, path)
                parameters[key] = str(path)
        return parameters

    def _check_file(self, key: str, path: Path) -> None:
        # Whoever can rewrite the trusted certificate can pose as the slave.
        problem = file_mode_problem(path, 0o022, "writable by group or others", "chmod go-w")
        if problem:
            raise TlsRefused(f"{self.section}.{key} {_shown(str(path))}{problem}")

    def describe(self) -> str:
        shown = f"sslmode={self.sslmode}"
        if self.sslrootcert is not None:
            shown += f", sslrootcert={self.sslrootcert}"
        return shown

    def failure(self, what: str, libpq_message: str) -> TlsRefused | None:
        """A :class:`TlsRefused` naming TLS when libpq's message is about TLS, else None."""
        clear_refused = self.sslmode in ("disable", "allow") and _CLEAR_REFUSED.search(libpq_message)
        if not (_TLS_LAYER.search(libpq_message) or clear_refused):
            return None
        first = libpq_message.strip().splitlines()[0] if libpq_message.strip() else "TLS failure"
        return TlsRefused(
            f"TLS to the {what} refused ({self.describe()}): {first}; nothing was changed on the slave. "
            f"Check {self.section}.sslmode and .sslrootcert against the slave's certificate ({SETUP_HINT})"
        )

    def link_kind(self, connection) -> str:
        """What this open connection is: ``clear``, ``encrypted`` or ``verified`` (libpq's own view)."""
        if not connection.info.ssl_in_use:
            return CLEAR
        return VERIFIED if self.verifying else ENCRYPTED
