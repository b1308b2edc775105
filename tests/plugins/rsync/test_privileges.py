"""The sync key cannot create anything that gives more rights than its owner has: tried as an attacker.

With the installed key alone, rsync is driven by hand with hostile options to
plant, under an allowed directory, a setuid-root binary, a setgid file, a file
capability, an ACL, a device node and a FIFO. The slave's files on disk are
checked afterwards. The kernel's share (capabilities, seccomp, mount flags) is
checked on its own by running the receiver's confinement in a child process.
"""

from __future__ import annotations

import json
import os
import pwd
import stat
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from wazo_ha_plugins.rsync import receiver

from .conftest import PEER, write

REFUSED = "wazo-ha-rsync-receiver: refused"
MOH = "var/lib/asterisk/moh"
DAEMON = pwd.getpwnam("daemon")


@pytest.fixture
def installed(pair):
    write(pair.master / MOH / "keep.wav", "a")
    pair.pin()
    pair.plugin().init(PEER)
    return pair


def plant(pair, source_root, name, *options):
    """rsync one entry of ``source_root/MOH`` into the slave's MOH with the key and ``options``."""
    source = f"{source_root}/./{MOH}/{name}"
    return pair.rsync(*options, "--no-implied-dirs", source, f"root@{PEER}:{pair.slave}")


def setuid_copy_of_id(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(Path("/usr/bin/id").read_bytes())
    os.chmod(path, 0o4755)  # noqa: S103 (the attack under test)


def setgid_file(path):
    write(path, "#!/bin/sh\nid\n")
    os.chmod(path, 0o2755)  # noqa: S103 (the attack under test)


def plain_binary(path):
    write(path, "#!/bin/sh\nid\n", 0o755)


@pytest.mark.parametrize(
    ("make_source", "options"),
    [
        (setuid_copy_of_id, ["-rlptgoR"]),
        (setuid_copy_of_id, ["-rlptgoR", "--numeric-ids", "-H"]),
        (setgid_file, ["-rlptgoR"]),
        (plain_binary, ["-rlptgoR", "--chmod=u+s,g+s"]),  # the client puts the bits in its file list
    ],
    ids=["setuid-id", "setuid-numeric-ids", "setgid", "client-chmod"],
)
def test_setuid_and_setgid_bits_never_reach_the_slave(installed, make_source, options):
    pair = installed
    evil = pair.tmp / "evil"
    make_source(evil / MOH / "tool")

    result = plant(pair, evil, "tool", *options)

    assert result.returncode == 0, result.stderr
    planted = pair.slave / MOH / "tool"
    info = planted.lstat()
    assert planted.read_bytes() == (evil / MOH / "tool").read_bytes()
    assert (info.st_uid, stat.S_IMODE(info.st_mode) & 0o7000) == (0, 0), f"{stat.filemode(info.st_mode)} on the slave"
    assert stat.S_IMODE(info.st_mode) == 0o755


def file_capability(path):
    plain_binary(path)
    subprocess.run(["setcap", "cap_setuid=ep", str(path)], check=True)


def posix_acl(path):
    write(path, "acl")
    # version 2, then (tag, permissions, id): user::rw- user:65534:rwx group::r-- mask::rwx other::r--
    entries = [
        (0x01, 6, 0xFFFFFFFF),
        (0x02, 7, 65534),
        (0x04, 4, 0xFFFFFFFF),
        (0x10, 7, 0xFFFFFFFF),
        (0x20, 4, 0xFFFFFFFF),
    ]
    acl = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)
    os.setxattr(path, "system.posix_acl_access", acl)


def user_xattr(path):
    write(path, "xattr")
    os.setxattr(path, "user.planted", b"yes")


def device_node(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 1))  # /dev/mem's numbers


def fifo(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path, 0o666)


@pytest.mark.parametrize(
    ("make_source", "options", "named"),
    [
        (file_capability, ["-rlptgoRX"], "-X (extended attributes"),
        (file_capability, ["-aRX"], "-D (device and special files)"),
        (posix_acl, ["-rlptgoRA"], "-A (ACLs)"),
        (user_xattr, ["-rlptgoRX"], "-X (extended attributes"),
        (device_node, ["-rlptgoRD"], "-D (device and special files)"),
        (device_node, ["-rlptgoR", "--devices"], "-D (device and special files)"),
        (device_node, ["-aR"], "-D (device and special files)"),
        (fifo, ["-rlptgoR", "--specials"], "--specials (FIFOs and sockets)"),
        (fifo, ["-rlptgoRD"], "-D (device and special files)"),
    ],
    ids=[
        "capability-X",
        "capability-aX",
        "acl-A",
        "user-xattr-X",
        "device-D",
        "device-long",
        "device-a",
        "fifo-long",
        "fifo-D",
    ],
)
def test_options_that_create_more_than_plain_files_are_refused_by_name(installed, make_source, options, named):
    pair = installed
    evil = pair.tmp / "evil"
    make_source(evil / MOH / "planted")

    result = plant(pair, evil, "planted", *options)

    assert result.returncode != 0
    [refusal] = [line for line in result.stderr.splitlines() if REFUSED in line]
    assert f"rsync option {named}" in refusal and "not allowed" in refusal, refusal
    assert "sync with rsync -rlptgo" in refusal
    assert not os.path.lexists(pair.slave / MOH / "planted")


def test_the_plugins_own_sync_keeps_owners_and_modes(installed):
    pair = installed
    agi = write(pair.master / "var/lib/asterisk/agi-bin/dialer.py", "#!/usr/bin/python3\n", 0o755)
    song = write(pair.master / MOH / "owned.wav", b"owned by daemon", 0o640)
    os.chown(song, DAEMON.pw_uid, DAEMON.pw_gid)

    result = pair.plugin().sync(PEER, ["/var/lib/asterisk/agi-bin", f"/{MOH}"])

    assert result.figures["rsync_exit"] == 0, result
    synced_agi, synced_song = (
        (pair.slave / "var/lib/asterisk/agi-bin/dialer.py").stat(),
        (pair.slave / MOH / "owned.wav").stat(),
    )
    assert stat.S_IMODE(synced_agi.st_mode) == 0o755
    assert (synced_song.st_uid, synced_song.st_gid, stat.S_IMODE(synced_song.st_mode)) == (
        DAEMON.pw_uid,
        DAEMON.pw_gid,
        0o640,
    )
    assert agi.read_bytes() == (pair.slave / "var/lib/asterisk/agi-bin/dialer.py").read_bytes()


# --- the kernel's share, without rsync ---------------------------------------------------------

CHILD = r"""
import ctypes, errno, json, os, struct, sys
sys.path.insert(0, sys.argv[1])
import receiver

root, allowed, outside = sys.argv[2], sys.argv[3], sys.argv[4]
receiver.confine({"root": root, "allow": ["/moh"], "allow_tree": [], "protect": []})
receiver.harden()
libc = ctypes.CDLL(None, use_errno=True)
results = {}

def attempt(name, action):
    try:
        action()
        results[name] = "ok"
    except OSError as exc:
        results[name] = errno.errorcode[exc.errno]

def libc_call(function, *args):
    def call():
        if function(*args) != 0:
            raise OSError(ctypes.get_errno(), "")
    return call

def create(name, mode):
    os.close(os.open(os.path.join(allowed, name), os.O_CREAT | os.O_WRONLY, mode))

cap_v2 = struct.pack("<IIIII", 0x02000001, 1 << 7, 0, 0, 0)  # cap_setuid=ep
attempt("create plain", lambda: create("plain", 0o644))
attempt("chown plain to daemon", lambda: os.chown(os.path.join(allowed, "plain"), 1, 1))
attempt("chmod plain 0755", lambda: os.chmod(os.path.join(allowed, "plain"), 0o755))
attempt("chmod plain 4755", lambda: os.chmod(os.path.join(allowed, "plain"), 0o4755))
attempt("chmod plain 2755", lambda: os.chmod(os.path.join(allowed, "plain"), 0o2755))
attempt("create setuid", lambda: create("setuid", 0o4755))
attempt("mknod char", lambda: os.mknod(os.path.join(allowed, "mem"), 0o666 | 0o020000, os.makedev(1, 1)))
attempt("mkfifo", lambda: os.mkfifo(os.path.join(allowed, "fifo")))
attempt("set capability", lambda: os.setxattr(os.path.join(allowed, "plain"), "security.capability", cap_v2))
attempt("set user xattr", lambda: os.setxattr(os.path.join(allowed, "plain"), "user.x", b"1"))
attempt("write outside", lambda: open(os.path.join(outside, "planted"), "w").close())
attempt("remount outside writable", libc_call(libc.mount, None, outside.encode(), None, 32 | 4096, None))
attempt("remount allowed suid", libc_call(libc.mount, None, allowed.encode(), None, 32 | 4096, None))
flags = os.statvfs(allowed).f_flag
results["allowed nosuid"] = bool(flags & os.ST_NOSUID)
results["allowed nodev"] = bool(flags & os.ST_NODEV)
status = open("/proc/self/status").read()
results["bounding"] = [line.split()[1] for line in status.splitlines() if line.startswith("CapBnd")][0]
results["seccomp"] = [line.split()[1] for line in status.splitlines() if line.startswith("Seccomp:")][0]
print(json.dumps(results))
"""


def test_the_kernel_refuses_what_rsync_is_told_not_to_do(tmp_path):
    root = tmp_path / "slave"
    allowed, outside = root / "moh", root / "etc"
    allowed.mkdir(parents=True)
    outside.mkdir()
    child = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            CHILD,
            os.path.dirname(receiver.__file__),
            str(root),
            str(allowed),
            str(outside),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    results = json.loads(child.stdout)

    assert results == {
        "create plain": "ok",
        "chown plain to daemon": "ok",
        "chmod plain 0755": "ok",
        "chmod plain 4755": "EPERM",
        "chmod plain 2755": "EPERM",
        "create setuid": "EPERM",
        "mknod char": "EPERM",
        "mkfifo": "EPERM",
        "set capability": "EPERM",
        "set user xattr": "EPERM",
        "write outside": "EROFS",
        "remount outside writable": "EPERM",
        "remount allowed suid": "EPERM",
        "allowed nosuid": True,
        "allowed nodev": True,
        "bounding": "000000000000000b",  # CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FOWNER
        "seccomp": "2",
    }
    assert sorted(os.listdir(allowed)) == ["plain"]
    assert stat.S_IMODE((allowed / "plain").stat().st_mode) == 0o755
    assert os.listxattr(allowed / "plain") == []
