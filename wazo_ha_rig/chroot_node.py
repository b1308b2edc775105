"""Debian 12 nodes as chroots: where the .deb is installed with apt as an operator would.

    image = ensure_image()                        # debootstrap once, then the cached tarball
    with ChrootNode.unpacked(image, "master", host=net.add_host("master")) as node:
        node.install_deb(deb)                     # apt-get install ./wazo-ha_*.deb inside
        node.start_postgresql(); node.start_sshd()
        node.run(["wazo-ha", "status"])           # chroot + the host's network namespace

The image is a minimal bookworm (``debootstrap --variant=minbase``) with what a
Wazo node brings that wazo-ha needs (PostgreSQL 15, sshd, rsync, python3,
logrotate), built once and cached as a tarball under :data:`CACHE_DIR`
(``$WAZO_HA_RIG_CACHE``, default ``/var/cache/wazo-ha-rig``); the file name
carries a hash of the package list, so a changed list builds a new image.
Delete the directory to rebuild. Building needs Debian's mirror
(``$WAZO_HA_RIG_MIRROR``); a cached image needs nothing.

No systemd runs in a chroot: PostgreSQL and sshd are started by hand
(``pg_ctlcluster``, ``sshd -D``) and ``/usr/sbin/policy-rc.d`` keeps package
scripts from starting services. Every mount of a node is made under a private
bind mount of its own directory, so nothing propagates to the host; teardown
(also on failure and Ctrl-C) stops what the node started, unmounts everything
below the directory, checks that nothing is mounted there any more, and only
then removes it (``rm --one-file-system``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .netns import Host

CACHE_DIR = Path(os.environ.get("WAZO_HA_RIG_CACHE", "/var/cache/wazo-ha-rig"))
MIRROR = os.environ.get("WAZO_HA_RIG_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
#: What a Wazo node has that wazo-ha uses, plus the package's own dependencies (so that installing the
#: .deb needs no download, its Recommends included), logrotate (its file is checked with ``logrotate -d``).
IMAGE_PACKAGES = (
    "postgresql",
    "postgresql-client",
    "openssh-server",
    "openssh-client",
    "rsync",
    "python3",
    "libpq5",
    "logrotate",
    "cron",
    "procps",
    "iproute2",
)
ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "DEBIAN_FRONTEND": "noninteractive",
}
PG_VERSION, PG_CLUSTER = "15", "main"


def image_path(cache_dir: Path = CACHE_DIR) -> Path:
    key = hashlib.sha256(" ".join((SUITE, MIRROR, *IMAGE_PACKAGES)).encode()).hexdigest()[:12]
    return cache_dir / f"{SUITE}-minbase-{key}.tar"


def ensure_image(cache_dir: Path = CACHE_DIR) -> Path:
    """The cached image tarball, built first if absent (a few minutes; one builder at a time)."""
    path = image_path(cache_dir)
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.exists():
            _build_image(path)
    return path


def _build_image(path: Path) -> None:
    if not shutil.which("debootstrap"):
        raise RuntimeError("debootstrap is missing: apt-get install debootstrap (wazo_ha_rig/apt-packages.txt)")
    build = Path(tempfile.mkdtemp(prefix="image-", dir=path.parent))
    build.chmod(0o755)  # the image's "/" (postgres must traverse it)
    try:
        subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(build), MIRROR],
            check=True,
            capture_output=True,
            timeout=1800,
        )
        _write(
            build / "usr/sbin/policy-rc.d", "#!/bin/sh\n# wazo-ha rig: no service starts at install\nexit 101\n", 0o755
        )
        shutil.copyfile("/etc/resolv.conf", build / "etc/resolv.conf")
        with _mounted_system(build):
            for argv in (
                ["apt-get", "update", "-qq"],
                # No Recommends: cron's MTA (exim) cannot configure itself in a chroot, and a Wazo node has its own.
                ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *IMAGE_PACKAGES],
                ["apt-get", "clean"],
            ):
                # Output to a file, not a pipe: a daemon a package script left behind would hold a pipe open.
                with tempfile.TemporaryFile() as output:
                    done = subprocess.run(
                        ["chroot", str(build), *argv],
                        env=ENV,
                        stdin=subprocess.DEVNULL,
                        stdout=output,
                        stderr=subprocess.STDOUT,
                        timeout=1800,
                    )
                    if done.returncode != 0:
                        output.seek(0)
                        tail = output.read().decode(errors="replace")[-2000:]
                        raise RuntimeError(f"building the image: {' '.join(argv)} exited {done.returncode}: {tail}")
        partial = path.with_suffix(".partial")
        subprocess.run(
            ["tar", "-C", str(build), "--one-file-system", "--numeric-owner", "-cf", str(partial), "."], check=True
        )
        partial.rename(path)
        for stale in path.parent.glob(f"{SUITE}-minbase-*.tar"):  # images of another package list
            if stale != path:
                stale.unlink()
    finally:
        _remove_tree(build)


class ChrootNode:
    """One node: a directory unpacked from the image, its mounts, and optionally a network namespace."""

    def __init__(self, root: Path, name: str, host: Host | None = None):
        self.root = root
        self.name = name
        self.host = host
        self.processes: list[subprocess.Popen] = []
        self._postgresql_started = False

    @classmethod
    @contextlib.contextmanager
    def unpacked(
        cls, image: Path, name: str, host: Host | None = None, parent: Path | None = None
    ) -> Iterator[ChrootNode]:
        """A fresh node from ``image``; everything it mounted and started is gone afterwards."""
        root = Path(tempfile.mkdtemp(prefix=f"wazo-ha-node-{name}-", dir=parent or "/var/tmp"))
        node = cls(root, name, host)
        stack = contextlib.ExitStack()
        try:
            stack.callback(_remove_tree, root)
            subprocess.run(["tar", "-C", str(root), "--numeric-owner", "-xf", str(image)], check=True)
            root.chmod(0o755)  # the node's "/": mkdtemp's 0700 would lock every user but root out
            stack.enter_context(_mounted_system(root))
            stack.callback(node._stop_all)
            yield node
        finally:
            stack.close()

    @property
    def address(self) -> str:
        return self.host.address if self.host else "127.0.0.1"

    def path(self, inside: str) -> Path:
        """The host path of ``inside`` (an absolute path in the node)."""
        return self.root / inside.lstrip("/")

    def command(self, argv: list[str], network: bool = True) -> list[str]:
        """``argv`` as run in the node: chroot, a clean environment, and its namespace unless ``network`` is False."""
        inside = ["chroot", str(self.root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in ENV.items()), *argv]
        return self.host.command(inside) if self.host and network else inside

    def run(self, argv: list[str], check: bool = True, timeout: float = 120, network: bool = True, **kwargs):
        """Run ``argv`` in the node; ``network=False`` runs it in the root namespace (apt needs the mirror)."""
        kwargs.setdefault("capture_output", True)
        kwargs.setdefault("text", True)
        result = subprocess.run(self.command(argv, network), timeout=timeout, check=False, **kwargs)
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def shell(self, script: str, check: bool = True, timeout: float = 120, **kwargs):
        return self.run(["/bin/sh", "-c", script], check=check, timeout=timeout, **kwargs)

    def popen(self, argv: list[str], **kwargs) -> subprocess.Popen:
        kwargs.setdefault("stdin", subprocess.DEVNULL)
        process = subprocess.Popen(self.command(argv), **kwargs)
        self.processes.append(process)
        return process

    def install_deb(self, deb: Path, timeout: float = 600) -> subprocess.CompletedProcess:
        """``apt-get install ./wazo-ha_*.deb`` in the node, as the install page says."""
        shutil.copyfile(deb, self.path(f"/root/{deb.name}"))
        return self.run(["sh", "-c", f"cd /root && apt-get install -y -q ./{deb.name}"], timeout=timeout, network=False)

    def ensure_cluster(self) -> None:
        """The cluster 15/main, created if the package scripts did not (they do not in the image)."""
        if not self.path(f"/etc/postgresql/{PG_VERSION}/{PG_CLUSTER}/postgresql.conf").exists():
            self.run(["pg_createcluster", "--locale", "C.UTF-8", PG_VERSION, PG_CLUSTER], timeout=120)

    def start_postgresql(self) -> None:
        self.ensure_cluster()
        self.run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "start"], timeout=60)
        self._postgresql_started = True

    def start_sshd(self) -> subprocess.Popen:
        self.run(["mkdir", "-p", "-m", "0755", "/run/sshd"])
        # Host keys of its own (the image's are shared by every node unpacked from it).
        self.run(["sh", "-c", "rm -f /etc/ssh/ssh_host_*_key /etc/ssh/ssh_host_*_key.pub && ssh-keygen -A"])
        log = open(self.path("/var/log/sshd-rig.log"), "wb")
        return self.popen(["/usr/sbin/sshd", "-D", "-e"], stdout=log, stderr=log)

    def _stop_all(self) -> None:
        from .chroot_standins import started_pids

        for pid in started_pids(self.root):  # what the systemctl stand-in started (e.g. wazo-ha watch)
            _end_if_inside(pid, self.root)
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
        if self._postgresql_started or self.path(f"/run/postgresql/{PG_VERSION}-{PG_CLUSTER}.pid").exists():
            self.run(["pg_ctlcluster", PG_VERSION, PG_CLUSTER, "stop", "-m", "immediate"], check=False, timeout=60)


@contextlib.contextmanager
def _mounted_system(root: Path) -> Iterator[None]:
    """/proc, a private /dev (a few bound nodes, its own devpts and shm), /sys read-only, /run as tmpfs."""
    mounts: list[Path] = []

    def mount(*args: str, target: Path) -> None:
        subprocess.run(["mount", *args, str(target)], check=True, capture_output=True)
        mounts.append(target)

    try:
        mount("--bind", str(root), target=root)  # its own mount, made private: nothing below propagates
        subprocess.run(["mount", "--make-rprivate", str(root)], check=True)
        mount("-t", "proc", "proc", target=root / "proc")
        mount("-t", "sysfs", "-o", "ro", "sysfs", target=root / "sys")
        mount("-t", "tmpfs", "-o", "mode=0755", "rig-dev", target=root / "dev")
        for name in ("null", "zero", "full", "random", "urandom", "tty"):
            (root / "dev" / name).touch()
            mount("--bind", f"/dev/{name}", target=root / "dev" / name)
        (root / "dev/pts").mkdir()
        mount("-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts", target=root / "dev/pts")
        (root / "dev/ptmx").symlink_to("pts/ptmx")
        (root / "dev/shm").mkdir()
        mount("-t", "tmpfs", "-o", "mode=1777", "rig-shm", target=root / "dev/shm")
        mount("-t", "tmpfs", "-o", "mode=0755", "rig-run", target=root / "run")
        yield
    finally:
        for target in reversed(mounts):
            if subprocess.run(["umount", str(target)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(target)], capture_output=True)


def _end_if_inside(pid: int, root: Path) -> None:
    """SIGKILL ``pid`` only if it still runs inside ``root`` (a recycled PID is someone else's)."""
    try:
        if os.readlink(f"/proc/{pid}/root") == str(root.resolve()):
            os.kill(pid, signal.SIGKILL)
    except OSError:
        pass


def mounts_below(root: Path) -> list[str]:
    prefix = str(root.resolve())
    found = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == prefix or point.startswith(prefix + "/"):
                found.append(point)
    return found


def _remove_tree(root: Path) -> None:
    """Remove a node's directory, never while anything is mounted below it."""
    if not root.exists():
        return
    left = mounts_below(root)
    if left:
        raise RuntimeError(f"not removing {root}: still mounted there: {', '.join(left[:5])}")
    subprocess.run(["rm", "-rf", "--one-file-system", str(root)], check=True)


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text)
    path.chmod(mode)
