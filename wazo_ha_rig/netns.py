"""Hosts as Linux network namespaces, joined by veth pairs to one bridge.

    with TestNetwork("10.203.5.0/24", "w5") as net:
        master, slave = net.add_host("master"), net.add_host("slave")
        master.popen(["sipp", ...])            # runs inside the namespace; killed at teardown
        net.link_down(master)                  # unplug the master's cable

The network rule of the house: every test address lives in ``subnet``, which
exists only inside the namespaces created here. Before creating any namespace
an ``unreachable`` route for the subnet is added in the root namespace (and
removed at teardown, only if this network added it), so a test that targets a
test address from outside a namespace fails locally instead of leaving the
machine. Teardown runs on failure too and ends only the processes started
through :meth:`Host.popen`, by PID.
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .lifecycle import StartStop

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True)


@dataclass
class Host:
    network: TestNetwork
    name: str
    netns: str
    address: str
    switch_port: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def command(self, args: list[str]) -> list[str]:
        """``args`` wrapped to run inside this host's namespace."""
        return ["ip", "netns", "exec", self.netns, *args]

    def run(self, args: list[str], check: bool = True, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        return subprocess.run(self.command(args), check=check, timeout=timeout, **kwargs)

    def popen(self, args: list[str], **kwargs) -> subprocess.Popen:
        """Start a process in the namespace (``ip netns exec`` execs it: the PID is the process's)."""
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        process = subprocess.Popen(self.command(args), **kwargs)
        self.processes.append(process)
        return process

    @contextmanager
    def entered(self) -> Iterator[None]:
        """Run the enclosed code of this thread inside the namespace (sockets opened there stay there)."""
        original = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/run/netns/{self.netns}", os.O_RDONLY)
        try:
            _setns(target)
            try:
                yield
            finally:
                _setns(original)
        finally:
            os.close(target)
            os.close(original)

    def stop(self, process: subprocess.Popen, timeout: float = 5) -> None:
        """End one process this host started: SIGTERM, then SIGKILL after ``timeout``."""
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout)

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            self.stop(process)


class TestNetwork(StartStop):
    """A private switched network of namespaces in ``subnet``; ``tag`` keeps names unique."""

    __test__ = False  # not a pytest class

    def __init__(self, subnet: str, tag: str):
        self.subnet = ipaddress.ip_network(subnet)
        self.tag = f"{tag}{os.getpid() % 100000}"
        self.switch = f"{self.tag}-sw"
        self.hosts: dict[str, Host] = {}
        self._addresses = self.subnet.hosts()
        self._added_route = False
        self._namespaces: list[str] = []

    def start(self) -> None:
        if os.geteuid() != 0:
            raise PermissionError("network namespaces need root: run the tests as root")
        added = ip("route", "add", "unreachable", str(self.subnet), check=False)
        if added.returncode == 0:
            self._added_route = True
        elif "File exists" not in added.stderr:
            raise RuntimeError(f"cannot add the unreachable route for {self.subnet}: {added.stderr.strip()}")
        self._add_namespace(self.switch)
        ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        ip("-n", self.switch, "link", "set", "br0", "up")

    def add_host(self, name: str) -> Host:
        netns = f"{self.tag}-{name}"
        address = str(next(self._addresses))
        port = f"p-{name}"[:15]
        self._add_namespace(netns)
        ip("link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", port, "netns", self.switch)
        ip("-n", self.switch, "link", "set", port, "master", "br0", "up")
        ip("-n", netns, "addr", "add", f"{address}/{self.subnet.prefixlen}", "dev", "eth0")
        ip("-n", netns, "link", "set", "eth0", "up")
        host = Host(self, name, netns, address, port)
        self.hosts[name] = host
        return host

    def link_down(self, host: Host) -> None:
        """Unplug ``host``'s cable at the switch (the host itself still sees its interface up)."""
        ip("-n", self.switch, "link", "set", host.switch_port, "down")

    def link_up(self, host: Host) -> None:
        ip("-n", self.switch, "link", "set", host.switch_port, "up")

    def close(self) -> None:
        for host in reversed(list(self.hosts.values())):
            host.stop_all()
        for netns in reversed(self._namespaces):
            ip("netns", "del", netns, check=False)
        self._namespaces.clear()
        if self._added_route:
            ip("route", "del", "unreachable", str(self.subnet), check=False)
            self._added_route = False

    def _add_namespace(self, netns: str) -> None:
        ip("netns", "add", netns)
        self._namespaces.append(netns)
        ip("-n", netns, "link", "set", "lo", "up")


@contextmanager
def prober_and_target(subnet: str = "10.203.5.128/25", tag: str = "p5") -> Iterator[tuple[TestNetwork, Host, Host]]:
    """Two hosts for a plugin's tests: ``prober`` (where the plugin runs) and ``target``."""
    with TestNetwork(subnet, tag) as network:
        yield network, network.add_host("prober"), network.add_host("target")
