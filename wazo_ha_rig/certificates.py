"""Throwaway X.509 certificates made with ``openssl``, for PostgreSQL clusters with TLS on.

A :class:`CertificateAuthority` lives in its own 0700 directory; it issues
:class:`ServerCertificate`\\ s whose subjectAltName is the address a client
connects to (``IP:127.0.0.1``), so libpq's ``verify-full`` can check them. A
*wrong* certificate is one from another authority
(:func:`certificate_from_another_authority`) or one naming another address
(``authority.issue("IP:192.0.2.1")``). Private keys are 0600 and belong to
``postgres`` (the server refuses a key others may read); certificates are
0644. Test-only material: keys are never protected by a passphrase.

Usage::

    authority = CertificateAuthority.create("right")
    cluster.use_tls(authority.issue("IP:127.0.0.1"))
    psycopg2.connect(..., sslmode="verify-full", sslrootcert=str(authority.certificate))
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_USER = "postgres"
DAYS = "2"  # long enough for any test run, short enough to be harmless if left behind
NEW_EC_KEY = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"  # unencrypted: test-only keys


def _openssl(*argv: str, cwd: Path) -> None:
    subprocess.run(["openssl", *argv], cwd=cwd, check=True, capture_output=True, text=True, timeout=60)


def _give_to_postgres(path: Path, mode: int) -> None:
    os.chmod(path, mode)
    owner = pwd.getpwnam(PG_USER)
    os.chown(path, owner.pw_uid, owner.pw_gid)


@contextlib.contextmanager
def _fresh_directory(prefix: str, parent: Path | None = None):
    """A new 0700 directory (no window on the keys made in it), removed again if making its contents fails."""
    directory = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield directory
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


def san_host(subject_alt_name: str) -> str:
    """The host a client names to match ``IP:…`` or ``DNS:…`` (libpq's ``host``)."""
    kind, _, value = subject_alt_name.partition(":")
    if kind == "IP":
        return str(ipaddress.ip_address(value))
    if kind == "DNS" and value:
        return value
    raise ValueError(f"subjectAltName must be IP:<address> or DNS:<name>, got {subject_alt_name!r}")


@dataclass(frozen=True)
class ServerCertificate:
    """A server's certificate and key (PEM files), and the authority file that verifies it."""

    name: str
    certificate: Path
    key: Path
    authority_certificate: Path
    subject_alt_name: str  # e.g. "IP:127.0.0.1"

    @property
    def host(self) -> str:
        return san_host(self.subject_alt_name)


@dataclass(frozen=True)
class CertificateAuthority:
    name: str
    directory: Path

    @property
    def certificate(self) -> Path:
        """The root certificate clients trust (libpq's ``sslrootcert``)."""
        return self.directory / "ca.crt"

    @property
    def key(self) -> Path:
        return self.directory / "ca.key"

    @classmethod
    def create(cls, name: str, parent: Path | None = None) -> CertificateAuthority:
        """A new self-signed authority (EC P-256) in a fresh 0700 directory."""
        with _fresh_directory(f"wazo-ha-ca-{name}-", parent) as directory:
            _openssl(
                *f"req -x509 -new {NEW_EC_KEY} -keyout ca.key -out ca.crt -days {DAYS}".split(),
                *("-subj", f"/CN=wazo-ha rig CA {name}"),
                *("-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"),
                cwd=directory,
            )
            authority = cls(name, directory)
            _give_to_postgres(authority.key, 0o600)
            _give_to_postgres(authority.certificate, 0o644)
        return authority

    def issue(self, subject_alt_name: str, name: str | None = None) -> ServerCertificate:
        """A server certificate for ``subject_alt_name`` (``IP:…`` or ``DNS:…``) signed by this authority."""
        host = san_host(subject_alt_name)
        name = name or f"{self.name}-{host}"
        extensions = self.directory / f"{name}.ext"
        extensions.write_text(
            f"subjectAltName = {subject_alt_name}\n"
            "basicConstraints = critical, CA:FALSE\n"
            "keyUsage = critical, digitalSignature\n"
            "extendedKeyUsage = serverAuth\n"
        )
        key, request, certificate = (f"{name}.key", f"{name}.csr", f"{name}.crt")
        _openssl(
            *f"req -new {NEW_EC_KEY} -keyout {key} -out {request}".split(), "-subj", f"/CN={host}", cwd=self.directory
        )
        _openssl(
            *f"x509 -req -in {request} -CA ca.crt -CAkey ca.key -CAcreateserial -days {DAYS}".split(),
            *("-extfile", extensions.name, "-out", certificate),
            cwd=self.directory,
        )
        _give_to_postgres(self.directory / key, 0o600)
        _give_to_postgres(self.directory / certificate, 0o644)
        return ServerCertificate(
            name, self.directory / certificate, self.directory / key, self.certificate, subject_alt_name
        )

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def certificate_from_another_authority(subject_alt_name: str) -> tuple[ServerCertificate, CertificateAuthority]:
    """A certificate naming the right address but signed by a fresh authority no client trusts.

    Returns the certificate and its authority (remove it when done).
    """
    impostor = CertificateAuthority.create("impostor")
    return impostor.issue(subject_alt_name), impostor


def self_signed_certificate(subject_alt_name: str) -> ServerCertificate:
    """A self-signed certificate naming ``subject_alt_name``, made by the one command the docs give.

    It is its own authority certificate. Its directory is ``certificate.certificate.parent``.
    """
    with _fresh_directory("wazo-ha-self-signed-") as directory:
        _openssl(
            *f"req -x509 {NEW_EC_KEY} -days {DAYS} -subj /CN=wazo-ha-slave".split(),
            *("-addext", f"subjectAltName={subject_alt_name}", "-keyout", "server.key", "-out", "server.crt"),
            cwd=directory,
        )
        _give_to_postgres(directory / "server.key", 0o600)
        _give_to_postgres(directory / "server.crt", 0o644)
    certificate = directory / "server.crt"
    return ServerCertificate("self-signed", certificate, directory / "server.key", certificate, subject_alt_name)


def debian_snakeoil_certificate(host_name: str = "wazo-slave.example") -> ServerCertificate:
    """A certificate made as Debian's ``ssl-cert`` makes ``ssl-cert-snakeoil.pem``.

    ``make-ssl-cert``'s own template and openssl command (without the script, which
    takes debconf's lock and fails while apt runs): self-signed, RSA 2048, ``CA:FALSE``,
    naming a host name (not an address); it is its own authority certificate. Its
    directory is ``certificate.certificate.parent`` (remove it when done).
    """
    template = Path("/usr/share/ssl-cert/ssleay.cnf").read_text()
    san = f"DNS:{host_name}"
    with _fresh_directory("wazo-ha-snakeoil-") as directory:
        config = directory / "snakeoil.cnf"
        config.write_text(template.replace("@HostName@", host_name).replace("@SubjectAltName@", san))
        _openssl(
            *f"req -config snakeoil.cnf -new -x509 -days {DAYS} -nodes -sha256".split(),
            *("-out", "snakeoil.crt", "-keyout", "snakeoil.key"),
            cwd=directory,
        )
        _give_to_postgres(directory / "snakeoil.key", 0o600)
        _give_to_postgres(directory / "snakeoil.crt", 0o644)
    certificate = directory / "snakeoil.crt"
    return ServerCertificate("snakeoil", certificate, directory / "snakeoil.key", certificate, san)
