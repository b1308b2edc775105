"""A throwaway OpenSSH server on loopback (or in a namespace), run as root for the tests.

Each :class:`Sshd` has its own directory under /tmp with its host key,
``sshd_config``, an ``authorized_keys`` file the test owns (``AuthorizedKeysFile``
points at it), a port of its own and a log. ``root`` may log in with a password
that exists only for this server: sshd runs in a private mount namespace where a
one-line ``/etc/shadow`` holding that password's hash is bind-mounted over the
real file, so the machine's own root password is neither read nor changed.

Usage in tests: the ``sshd_factory`` fixture (see ``fixtures.py``) or::

    with Sshd.start() as server:
        server.authorized_keys.write_text(...)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import psutil

from .postgres import free_port
from .waiting import wait_for

SSHD = "/usr/sbin/sshd"
ROOT_PASSWORD = "rig-sshd-root-password"  # test-only server, loopback or namespace only


class Sshd:
    def __init__(self, directory: Path, host: str, port: int, netns: str | None = None):
        self.directory = directory
        self.host = host
        self.port = port
        self.netns = netns
        self.host_key = directory / "ssh_host_ed25519_key"
        self.config = directory / "sshd_config"
        self.authorized_keys = directory / "authorized_keys"
        self.shadow = directory / "shadow"
        self.log_file = directory / "sshd.log"
        self.process: subprocess.Popen | None = None
        self._listened_before = 0

    @classmethod
    def start(
        cls, host: str = "127.0.0.1", port: int | None = None, netns: str | None = None, directory: Path | None = None
    ) -> Sshd:
        """A running server in ``directory`` (created; default a fresh one under /tmp)."""
        if not Path(SSHD).exists():
            raise RuntimeError("sshd not found: apt-get install openssh-server")
        if directory is None:
            directory = Path(tempfile.mkdtemp(prefix="wazo-ha-sshd-"))
        else:
            directory.mkdir(mode=0o700, parents=True)
        server = cls(directory, host, port or (free_port(host) if netns is None else 22), netns)
        try:
            server.new_host_key()
            server._write_config()
            server.authorized_keys.touch(mode=0o600)
            server._write_shadow()
            server.run()
        except BaseException:
            server.stop()
            raise
        return server

    def new_host_key(self) -> None:
        """Give the server a fresh host key (takes effect at the next :meth:`run`)."""
        self.host_key.unlink(missing_ok=True)
        self.host_key.with_suffix(".pub").unlink(missing_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.host_key)],
            check=True,
            capture_output=True,
            timeout=30,
        )

    @property
    def host_public_key(self) -> tuple[str, str]:
        key_type, blob = self.host_key.with_suffix(".pub").read_text().split()[:2]
        return key_type, blob

    def _write_config(self) -> None:
        self.config.write_text(
            f"Port {self.port}\n"
            f"ListenAddress {self.host}\n"
            f"HostKey {self.host_key}\n"
            f"PidFile {self.directory}/sshd.pid\n"
            f"AuthorizedKeysFile {self.authorized_keys}\n"
            "StrictModes no\n"  # the test files live under /tmp (world-writable)
            "PermitRootLogin yes\n"
            "PasswordAuthentication yes\n"
            "KbdInteractiveAuthentication no\n"
            "UsePAM no\n"
            "PubkeyAuthentication yes\n"
            "Subsystem sftp internal-sftp\n"
            "LogLevel VERBOSE\n"
            "MaxStartups 50\n"
            "UseDNS no\n"
        )

    def _write_shadow(self) -> None:
        hashed = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"],
            input=ROOT_PASSWORD,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout.strip()
        descriptor = os.open(self.shadow, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(f"root:{hashed}:19000:0:99999:7:::\n")

    def run(self) -> None:
        """Start (or restart after :meth:`kill`) the server and wait until it accepts connections."""
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        subprocess.run([SSHD, "-t", "-f", str(self.config)], check=True, capture_output=True, timeout=30)
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        script = f'mount --bind "{self.shadow}" /etc/shadow && exec {SSHD} -D -e -f "{self.config}"'
        log = open(self.log_file, "ab")
        self._listened_before = self._listen_lines()  # a restart must not be fooled by the previous run's line
        self.process = subprocess.Popen(
            [*prefix, "unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        wait_for(self._listening, 30, f"sshd on {self.host}:{self.port} listening")

    def _listening(self) -> bool:
        if self.process and self.process.poll() is not None:
            raise RuntimeError(f"sshd exited with {self.process.returncode}: {self.log()[-2000:]}")
        return self._listen_lines() > self._listened_before

    def _listen_lines(self) -> int:
        return self.log().count(f"Server listening on {self.host} port {self.port}")

    def log(self) -> str:
        try:
            return self.log_file.read_text(errors="replace")
        except OSError:
            return ""

    def sessions(self) -> list[psutil.Process]:
        """The per-connection processes of this server (children of the sshd we started)."""
        if not self.process or self.process.poll() is not None:
            return []
        try:
            return psutil.Process(self.process.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []

    def kill(self) -> None:
        """Cut every connection at once: SIGKILL the server and its sessions (our PIDs only)."""
        victims = self.sessions()
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        for process in victims:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(victims, timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> Sshd:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
