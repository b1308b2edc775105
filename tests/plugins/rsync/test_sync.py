"""``sync``: what mirrors (content, modes, owners, symlinks, deletions) and what never does."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
import threading

import pytest

from tests.rig.waiting import wait_for
from wazo_ha_core import NotInitialised, PeerUnreachable, PluginError, no_progress
from wazo_ha_core.file_sync import sync_paths

from .conftest import PEER, write

DAEMON = pwd.getpwnam("daemon")
NOGROUP = grp.getgrnam("nogroup")


def snapshot(root, relative):
    """Every entry under ``root/relative``: type, mode, owner, size, content or link target."""
    base = root / relative
    entries = {}
    for directory, dirnames, filenames in os.walk(base):
        for name in dirnames + filenames:
            path = os.path.join(directory, name)
            info = os.lstat(path)
            key = os.path.relpath(path, base)
            if os.path.islink(path):
                entries[key] = ("link", os.readlink(path), info.st_uid, info.st_gid)
            elif os.path.isdir(path):
                entries[key] = ("dir", oct(info.st_mode & 0o7777), info.st_uid, info.st_gid)
            else:
                with open(path, "rb") as handle:
                    content = handle.read()
                entries[key] = ("file", oct(info.st_mode & 0o7777), info.st_uid, info.st_gid, content, info.st_mtime)
    return entries


def populate_master(master):
    write(master / "etc/asterisk/extensions_extra.d/custom.conf", "[custom]\nexten => 1,1,Answer()\n")
    secret = write(master / "etc/xivo/asterisk/secret.conf", "password=abc\n", 0o640)
    os.chown(secret, DAEMON.pw_uid, NOGROUP.gr_gid)
    write(master / "var/lib/asterisk/agi-bin/run.sh", "#!/bin/sh\necho hi\n", 0o755)
    write(master / "var/lib/asterisk/moh/default/song.wav", os.urandom(300_000))
    os.symlink("default/song.wav", master / "var/lib/asterisk/moh/current.wav")
    os.symlink("/nonexistent/elsewhere", master / "var/lib/asterisk/moh/dangling")
    tenants = master / "var/lib/wazo/sounds/tenants"
    write(tenants / "t1/playback/welcome.wav", b"welcome")
    write(tenants / "t1/acd/queue.wav", b"queue")
    write(tenants / "t1/monitor/call-1.wav", b"private recording")
    write(tenants / "t1/recording/call-2.wav", b"private recording")
    write(tenants / "t2/playback/hello.wav", b"hello")


MIRRORED = [
    "etc/asterisk/extensions_extra.d",
    "etc/xivo/asterisk",
    "var/lib/asterisk/agi-bin",
    "var/lib/asterisk/moh",
    "var/lib/wazo/sounds/tenants/t1/playback",
    "var/lib/wazo/sounds/tenants/t1/acd",
    "var/lib/wazo/sounds/tenants/t2/playback",
]


def test_sync_before_init_asks_for_init(pair):
    with pytest.raises(NotInitialised, match="run `wazo-ha sync init` first"):
        pair.plugin().sync(PEER, ["/etc/xivo/asterisk"])


def test_sync_mirrors_content_modes_owners_symlinks_and_deletions(pair):
    populate_master(pair.master)
    plugin = pair.plugin()
    pair.pin()
    plugin.init(PEER)
    paths = sync_paths(pair.settings)
    assert "/var/lib/wazo/sounds/tenants/t1/monitor" not in paths

    first = plugin.sync(PEER, paths)

    for relative in MIRRORED:
        assert snapshot(pair.slave, relative) == snapshot(pair.master, relative), relative
    assert os.lstat(pair.slave / "etc/xivo/asterisk/secret.conf").st_uid == DAEMON.pw_uid
    assert os.readlink(pair.slave / "var/lib/asterisk/moh/dangling") == "/nonexistent/elsewhere"
    assert not (pair.slave / "var/lib/wazo/sounds/tenants/t1/monitor").exists()
    assert not (pair.slave / "var/lib/wazo/sounds/tenants/t1/recording").exists()
    assert first.figures["files_transferred"] == 7  # regular files; links and dirs are not counted
    assert first.figures["bytes_transferred"] >= 300_000
    skipped = [w for w in first.warnings if w.startswith("skipped")]
    assert sorted(w.split()[1].rstrip(":") for w in skipped) == [
        "/root/.config/wazo-auth-cli",
        "/var/lib/wazo-auth-keys",
    ]

    (pair.master / "var/lib/asterisk/agi-bin/run.sh").unlink()
    (pair.master / "var/lib/asterisk/moh/current.wav").unlink()
    write(pair.master / "etc/xivo/asterisk/secret.conf", "password=changed\n", 0o600)
    write(pair.slave / "etc/asterisk/extensions_extra.d/slave-only.conf", "left behind")

    second = plugin.sync(PEER, sync_paths(pair.settings))

    for relative in MIRRORED:
        assert snapshot(pair.slave, relative) == snapshot(pair.master, relative), relative
    assert not (pair.slave / "var/lib/asterisk/agi-bin/run.sh").exists()
    assert not (pair.slave / "etc/asterisk/extensions_extra.d/slave-only.conf").exists()
    assert second.figures["files_transferred"] == 1
    assert second.figures["files_deleted"] == 3

    third = plugin.sync(PEER, sync_paths(pair.settings))
    assert third.figures["files_transferred"] == 0 and third.figures["files_deleted"] == 0


def test_progress_is_reported_when_someone_watches(pair):
    write(pair.master / "var/lib/asterisk/moh/big.wav", os.urandom(2_000_000))
    plugin = pair.plugin()
    pair.pin()
    plugin.init(PEER)
    seen = []
    plugin.sync(PEER, ["/var/lib/asterisk/moh"], progress=lambda message, figures: seen.append(figures))
    assert seen and seen[-1]["percent"] == 100 and seen[-1]["bytes"] >= 2_000_000


def test_a_changed_slave_host_key_stops_the_sync(pair):
    populate_master(pair.master)
    plugin = pair.plugin()
    pair.pin()
    plugin.init(PEER)
    pair.sshd.kill()
    pair.sshd.new_host_key()
    pair.sshd.run()

    with pytest.raises(PluginError, match=r"host key of the slave 127\.0\.0\.1 does not match the key pinned in"):
        plugin.sync(PEER, sync_paths(pair.settings))
    assert not (pair.slave / "etc").exists()


def test_a_file_the_slave_cannot_replace_is_a_partial_transfer_warning(pair):
    write(pair.master / "var/lib/asterisk/moh/ok.wav", b"ok")
    write(pair.master / "var/lib/asterisk/moh/locked.wav", b"new content")
    locked = write(pair.slave / "var/lib/asterisk/moh/locked.wav", b"old")
    subprocess.run(["chattr", "+i", str(locked)], check=True)
    try:
        plugin = pair.plugin()
        pair.pin()
        plugin.init(PEER)
        result = plugin.sync(PEER, ["/var/lib/asterisk/moh"])
    finally:
        subprocess.run(["chattr", "-i", str(locked)], check=True)

    assert result.figures["rsync_exit"] == 23
    [warning] = result.warnings
    assert warning.startswith("rsync exit 23, partial transfer due to errors: some files were not copied")
    assert "locked.wav" in warning
    assert (pair.slave / "var/lib/asterisk/moh/ok.wav").read_bytes() == b"ok"
    assert locked.read_bytes() == b"old"


def test_link_cut_mid_transfer_is_an_error_and_the_next_run_converges(pair):
    write(pair.master / "var/lib/asterisk/moh/big.wav", os.urandom(20_000_000))
    write(pair.master / "var/lib/asterisk/moh/small.wav", b"small")
    pair.pin()
    pair.plugin().init(PEER)
    slow = pair.plugin(bandwidth_limit=2000)  # KiB/s: about 10 s for the big file
    outcome = {}

    def run():
        try:
            outcome["result"] = slow.sync(PEER, ["/var/lib/asterisk/moh"], progress=no_progress)
        except PluginError as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=run)
    worker.start()
    moh = pair.slave / "var/lib/asterisk/moh"
    wait_for(lambda: moh.is_dir() and any(p.name.startswith(".big.wav.") for p in moh.iterdir()), 30, "transfer begun")
    pair.sshd.kill()
    worker.join(60)

    assert not worker.is_alive()
    assert "error" in outcome, outcome
    message = str(outcome["error"])
    print("link cut:", message)
    assert message.startswith("the connection to the slave 127.0.0.1 was lost during the transfer (rsync exit")
    assert not (moh / "big.wav").exists()

    pair.sshd.run()
    result = pair.plugin().sync(PEER, ["/var/lib/asterisk/moh"])
    assert result.figures["rsync_exit"] == 0
    assert (moh / "big.wav").read_bytes() == (pair.master / "var/lib/asterisk/moh/big.wav").read_bytes()
    assert not [p for p in moh.iterdir() if p.name.startswith(".")], "no temporary file left behind"


def test_an_unreachable_slave_is_reported_as_unreachable(pair):
    write(pair.master / "var/lib/asterisk/moh/song.wav", b"song")
    pair.pin()
    pair.plugin().init(PEER)
    pair.sshd.stop()  # nothing listens on its port any more: ssh's connect is refused
    # rsync exits 12 or 255 here depending on timing; test_transfer.py pins both codes.
    with pytest.raises(PeerUnreachable) as caught:
        pair.plugin().sync(PEER, ["/var/lib/asterisk/moh"])
    message = str(caught.value)
    assert message.startswith(f"cannot reach the slave {PEER} over ssh:"), message
    assert "Connection refused" in message
    assert "lost during the transfer" not in message and "Files already copied" not in message


def test_directories_missing_on_the_master_are_not_created_on_the_slave(pair):
    write(pair.master / "var/lib/asterisk/moh/song.wav", b"song")
    pair.pin()
    pair.plugin().init(PEER)
    paths = sync_paths(pair.settings)
    result = pair.plugin().sync(PEER, paths)
    assert result.figures["skipped"] == len(paths) - 1
    assert (pair.slave / "var/lib/asterisk/moh/song.wav").read_bytes() == b"song"
    created = sorted(str(p.relative_to(pair.slave)) for p in pair.slave.rglob("*") if p.is_dir())
    assert created == ["var", "var/lib", "var/lib/asterisk", "var/lib/asterisk/moh"], "\n".join(created)
