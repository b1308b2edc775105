"""Throwaway etcd members (Debian's ``etcd-server``), run as the ``etcd`` user on loopback.

:class:`EtcdCluster` starts one member or a cluster of several, each with its
own data directory under /tmp and its own client and peer ports from
:func:`free_port`; :meth:`EtcdCluster.kill` ends one member's process (by its
PID) to simulate losing it, :meth:`EtcdCluster.stop` ends all and removes the
directories. Debian runs etcd as the ``etcd`` user; so does the rig.

    with EtcdCluster.start(members=3) as cluster:
        url = cluster.tooz_url()          # etcd3+http://127.0.0.1:<port of member 0>
"""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .postgres import free_port
from .waiting import wait_for

ETCD = "/usr/bin/etcd"
ETCD_USER = "etcd"
HOST = "127.0.0.1"


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data: Path
    process: subprocess.Popen | None = None
    tls_ca: Path | None = None  # clients are served over https, verified with this CA
    host: Any = None  # a wazo_ha_rig.netns.Host: the member runs in that namespace, on its address

    @property
    def address(self) -> str:
        return self.host.address if self.host is not None else HOST

    @property
    def client_url(self) -> str:
        scheme = "https" if self.tls_ca else "http"
        return f"{scheme}://{self.address}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{self.address}:{self.peer_port}"

    def healthy(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.tls_ca)) if self.tls_ca else None
        with self.host.entered() if self.host is not None else contextlib.nullcontext():
            with urllib.request.urlopen(f"{self.client_url}/health", timeout=1, context=context) as answer:  # noqa: S310
                return b'"health":"true"' in answer.read()


class EtcdCluster:
    def __init__(self, directory: Path, members: list[Member]):
        self.directory = directory
        self.members = members
        self.tls_files: tuple[Path, Path] | None = None

    @classmethod
    def start(cls, members: int = 1, tls=None, hosts=None) -> EtcdCluster:
        """``tls``: a :class:`~wazo_ha_rig.certificates.ServerCertificate` for ``IP:127.0.0.1``; clients then
        speak https to the members (server TLS; peers stay on loopback http). ``hosts``: one network
        namespace host (:class:`wazo_ha_rig.netns.Host`) per member, each member on its host's address
        with the standard ports 2379/2380 (the e2e rig); default: all on loopback, free ports."""
        if not Path(ETCD).exists():
            raise RuntimeError("etcd not found: apt-get install etcd-server (see wazo_ha_rig/apt-packages.txt)")
        directory = Path(tempfile.mkdtemp(prefix="wazo-ha-etcd-"))
        shutil.chown(directory, ETCD_USER, ETCD_USER)
        cluster = cls(
            directory,
            [
                Member(f"m{i}", free_port(HOST), free_port(HOST), directory / f"m{i}")
                if hosts is None
                else Member(f"m{i}", 2379, 2380, directory / f"m{i}", host=hosts[i])
                for i in range(members)
            ],
        )
        if tls is not None:
            cluster.tls_files = cluster._install_tls(tls)
            for member in cluster.members:
                member.tls_ca = tls.authority_certificate
        try:
            for member in cluster.members:
                cluster._run(member)
            for member in cluster.members:
                wait_for(member.healthy, 30, f"etcd member {member.name} healthy")
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _install_tls(self, tls) -> tuple[Path, Path]:
        """Copies of the certificate and its key that the etcd user may read (the key 0600, etcd's)."""
        directory = self.directory / "tls"
        directory.mkdir(mode=0o700)
        shutil.chown(directory, ETCD_USER, ETCD_USER)
        files = []
        for source, name, mode in ((tls.certificate, "server.crt", 0o644), (tls.key, "server.key", 0o600)):
            target = directory / name
            shutil.copyfile(source, target)
            target.chmod(mode)
            shutil.chown(target, ETCD_USER, ETCD_USER)
            files.append(target)
        return files[0], files[1]

    def _run(self, member: Member) -> None:
        initial = ",".join(f"{m.name}={m.peer_url}" for m in self.members)
        argv = [
            # setpriv execs etcd itself (runuser would fork), so the PID we kill is etcd's
            "setpriv", "--reuid", ETCD_USER, "--regid", ETCD_USER, "--init-groups", ETCD,
            "--name", member.name,
            "--data-dir", str(member.data),
            "--listen-client-urls", member.client_url,
            "--advertise-client-urls", member.client_url,
            "--listen-peer-urls", member.peer_url,
            "--initial-advertise-peer-urls", member.peer_url,
            "--initial-cluster", initial,
            "--initial-cluster-state", "new",
            "--initial-cluster-token", self.directory.name,
            "--heartbeat-interval", "50",  # a quick re-election when a test kills the leader
            "--election-timeout", "500",
        ]  # fmt: skip
        if self.tls_files is not None:
            argv += ["--cert-file", str(self.tls_files[0]), "--key-file", str(self.tls_files[1])]
        log = open(self.directory / f"{member.name}.log", "ab")
        if member.host is not None:
            member.process = member.host.popen(argv, stdout=log, stderr=subprocess.STDOUT)
        else:
            member.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def tooz_url(self, member: int = 0) -> str:
        return f"etcd3+{self.members[member].client_url}"

    def endpoints(self) -> list[str]:
        """The members' client URLs, as ``coordination.endpoints`` takes them."""
        return [member.client_url for member in self.members]

    def kill(self, index: int) -> None:
        """End one member's process now (SIGKILL, by PID), as a crashed or cut-off member."""
        process = self.members[index].process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    def stop(self) -> None:
        for index in range(len(self.members)):
            self.kill(index)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
