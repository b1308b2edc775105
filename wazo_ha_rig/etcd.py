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

import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

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

    @property
    def client_url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://{HOST}:{self.peer_port}"

    def healthy(self) -> bool:
        with urllib.request.urlopen(f"{self.client_url}/health", timeout=1) as answer:  # noqa: S310 - http only
            return b'"health":"true"' in answer.read()


class EtcdCluster:
    def __init__(self, directory: Path, members: list[Member]):
        self.directory = directory
        self.members = members

    @classmethod
    def start(cls, members: int = 1) -> EtcdCluster:
        if not Path(ETCD).exists():
            raise RuntimeError("etcd not found: apt-get install etcd-server (see wazo_ha_rig/apt-packages.txt)")
        directory = Path(tempfile.mkdtemp(prefix="wazo-ha-etcd-"))
        shutil.chown(directory, ETCD_USER, ETCD_USER)
        cluster = cls(
            directory,
            [Member(f"m{i}", free_port(HOST), free_port(HOST), directory / f"m{i}") for i in range(members)],
        )
        try:
            for member in cluster.members:
                cluster._run(member)
            for member in cluster.members:
                wait_for(member.healthy, 30, f"etcd member {member.name} healthy")
        except BaseException:
            cluster.stop()
            raise
        return cluster

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
        log = open(self.directory / f"{member.name}.log", "ab")
        member.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        log.close()

    def tooz_url(self, member: int = 0) -> str:
        return f"etcd3+http://{HOST}:{self.members[member].client_port}"

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
