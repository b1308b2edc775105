"""Throwaway PostgreSQL clusters, run as the ``postgres`` user (initdb refuses root).

Each :class:`PgCluster` lives in its own directory under /tmp, listens on a
free TCP port on the given address (loopback by default, or a namespace
host's address) and on a Unix socket inside its directory. Local socket
connections are trusted (the test harness runs as root); TCP connections
require a scram-sha-256 password, as a real Wazo node should.

TLS is off unless asked for: ``PgCluster.start(tls=certificate)`` or, on a
running cluster, ``cluster.use_tls(certificate)`` / ``cluster.use_tls(None)``
(a restart: the server then serves exactly that certificate). Certificates
come from :mod:`wazo_ha_rig.certificates`.

Usage in tests: the ``pg_cluster_factory`` fixture (see ``fixtures.py``) or::

    with PgCluster.start() as cluster:
        cluster.create_database("asterisk")
        cluster.psql("asterisk", "SELECT 1")
"""

from __future__ import annotations

import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .certificates import ServerCertificate
from .waiting import wait_for

PG_USER = "postgres"
SUPERUSER_PASSWORD = "rig-superuser-password"  # test-only cluster, loopback or namespace only


def pg_bindir() -> Path:
    """The newest installed server binaries (Debian: /usr/lib/postgresql/<major>/bin)."""
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
    return candidates[-1].parent


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def as_postgres(argv: list[str], netns: str | None = None, **kwargs) -> subprocess.CompletedProcess:
    """Run ``argv`` as the postgres user (optionally inside a network namespace)."""
    prefix = ["ip", "netns", "exec", netns] if netns else []
    return subprocess.run(
        [*prefix, "runuser", "-u", PG_USER, "--", *argv],
        check=True,
        capture_output=True,
        text=True,
        timeout=kwargs.pop("timeout", 120),
        **kwargs,
    )


class PgCluster:
    def __init__(self, directory: Path, host: str, port: int, netns: str | None = None):
        self.directory = directory
        self.data = directory / "data"
        self.socket_dir = directory / "socket"
        self.host = host
        self.port = port
        self.netns = netns
        self.bindir = pg_bindir()
        self.process: subprocess.Popen | None = None

    @classmethod
    def start(
        cls,
        host: str = "127.0.0.1",
        port: int | None = None,
        netns: str | None = None,
        settings: dict[str, str] | None = None,
        directory: Path | None = None,
        tls: ServerCertificate | None = None,
    ) -> PgCluster:
        """A running cluster in ``directory`` (created; default a fresh one under /tmp), owned by postgres.

        With ``tls``, the server has ``ssl = on`` and serves that certificate.
        """
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="wazo-ha-pg-"))
        else:
            directory.mkdir(mode=0o700, parents=True)
        pw = pwd.getpwnam(PG_USER)
        os.chown(directory, pw.pw_uid, pw.pw_gid)
        cluster = cls(directory, host, port or (free_port(host) if netns is None else 5432), netns)
        try:
            cluster._initdb(settings or {})
            if tls is not None:
                cluster._write_settings(cluster._install_certificate(tls))
            cluster._run()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _initdb(self, settings: dict[str, str]) -> None:
        for sub in (self.data, self.socket_dir):
            as_postgres(["mkdir", "-p", "-m", "0700", str(sub)])
        pwfile = self.directory / "pwfile"
        as_postgres(["sh", "-c", f"umask 077; printf %s '{SUPERUSER_PASSWORD}' > {pwfile}"])
        as_postgres(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.data),
                "-U",
                PG_USER,
                "--pwfile",
                str(pwfile),
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ]
        )
        conf = {
            "listen_addresses": f"'{self.host}'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
            "fsync": "off",  # throwaway cluster: speed over durability
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "shared_buffers": "64MB",
            "max_connections": "50",
            **settings,
        }
        self._write_settings(conf)
        hba = "local all all trust\nhost all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n"
        as_postgres(["sh", "-c", f"cat > {self.data}/pg_hba.conf"], input=hba)

    def _write_settings(self, conf: dict[str, str]) -> None:
        lines = "".join(f"{key} = {value}\n" for key, value in conf.items())
        as_postgres(["sh", "-c", f"cat >> {self.data}/postgresql.auto.conf"], input=lines)

    def _install_certificate(self, tls: ServerCertificate) -> dict[str, str]:
        """Copy the certificate and its key (0600, postgres's) into the data directory; the settings to serve it."""
        files = {}
        for setting, source, mode in (("ssl_cert_file", tls.certificate, 0o644), ("ssl_key_file", tls.key, 0o600)):
            target = self.data / f"tls-{tls.name}{source.suffix}"
            quoted = shlex.quote(str(target))
            as_postgres(["sh", "-c", f"umask 077; cat > {quoted}; chmod {mode:o} {quoted}"], input=source.read_text())
            files[setting] = f"'{target}'"
        return {"ssl": "on", **files}

    def use_tls(self, tls: ServerCertificate | None) -> None:
        """Serve ``tls`` (or turn TLS off with None), then restart: no old TLS context survives."""
        if tls is None:
            self.psql("postgres", "ALTER SYSTEM SET ssl = off")
        else:
            for key, value in self._install_certificate(tls).items():
                self.psql("postgres", f"ALTER SYSTEM SET {key} = {value}")
        self.restart()

    def restart(self) -> None:
        """Stop the postmaster this rig started and start it again, same data, same port."""
        if self.process is None:
            raise RuntimeError("restart: this cluster's postmaster was not started by the rig")
        # Fast shutdown: a client a test left open must not hold it up (smart shutdown would wait for it).
        self.pg_ctl("stop", "-m", "fast")
        self.process.wait(timeout=30)
        self._run()

    def _run(self) -> None:
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        log = open(self.directory / "server.log", "ab")
        self.process = subprocess.Popen(
            [*prefix, "runuser", "-u", PG_USER, "--", str(self.bindir / "postgres"), "-D", str(self.data)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(self._ready, 30, f"PostgreSQL at {self.host}:{self.port} ready")

    def _ready(self) -> bool:
        if self.process and self.process.poll() is not None:
            raise RuntimeError(f"postgres exited with {self.process.returncode}: {self.server_log()[-2000:]}")
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", str(self.socket_dir), "-p", str(self.port)],
            capture_output=True,
            timeout=10,
        )
        return result.returncode == 0

    def server_log(self) -> str:
        text = ""
        for name in ("server.log", "pg_ctl.log"):
            try:
                text += (self.directory / name).read_text(errors="replace")
            except OSError:
                pass
        return text

    # --- using it -------------------------------------------------------------------

    def socket_url(self, database: str = "postgres") -> str:
        """SQLAlchemy URL over the trusted Unix socket (harness access)."""
        return f"postgresql://{PG_USER}@/{database}?host={self.socket_dir}&port={self.port}"

    def tcp_url(self, database: str, user: str = PG_USER, password: str = SUPERUSER_PASSWORD) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{user}:{password}@{host}:{self.port}/{database}"

    def psql_argv(self, database: str, *options: str) -> list[str]:
        """psql as the superuser over the trusted socket, stopping at the first error."""
        socket = ["-h", str(self.socket_dir), "-p", str(self.port), "-U", PG_USER, "-d", database]
        return ["psql", "-X", "-v", "ON_ERROR_STOP=1", *socket, *options]

    def psql(self, database: str, sql: str, *, check: bool = True) -> str:
        """Run SQL through psql over the socket; returns unaligned tuples-only output."""
        result = subprocess.run(self.psql_argv(database, "-At"), input=sql, capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise RuntimeError(f"psql failed on {database}: {result.stderr.strip()}")
        return result.stdout

    def psql_file(self, database: str, path: str | os.PathLike) -> None:
        subprocess.run(
            self.psql_argv(database, "-q", "-f", str(path)), check=True, capture_output=True, text=True, timeout=600
        )

    def create_database(self, name: str, encoding: str = "UTF8") -> None:
        self.psql("postgres", f"CREATE DATABASE \"{name}\" ENCODING '{encoding}' TEMPLATE template0")

    def stop(self) -> None:
        self._terminate()
        if (self.data / "postmaster.pid").exists():
            # Restarted with pg_ctl (e.g. by a restart_command): the postmaster of this data directory.
            self.pg_ctl("stop", "-m", "immediate", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _terminate(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()  # SIGTERM (runuser passes it on): smart shutdown
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def pg_ctl_command(self, action: str, *options: str) -> list[str]:
        """``pg_ctl <action>`` on this cluster as postgres (what a reload/restart command runs)."""
        # server.log belongs to root (the rig opened it): a postmaster pg_ctl starts logs beside it.
        log = ["-l", str(self.directory / "pg_ctl.log")] if action in ("start", "restart") else []
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        return [
            *prefix,
            "runuser",
            "-u",
            PG_USER,
            "--",
            str(self.bindir / "pg_ctl"),
            action,
            "-D",
            str(self.data),
            "-w",
            *log,
            *options,
        ]

    def pg_ctl(self, action: str, *options: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.pg_ctl_command(action, *options), check=check, capture_output=True, text=True, timeout=60
        )

    def __enter__(self) -> PgCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
