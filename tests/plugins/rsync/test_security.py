"""What the installed key can and cannot do, tried with the key itself as an attacker would."""

from __future__ import annotations

import os

import pytest

from .conftest import PEER, write

REFUSED = "wazo-ha-rsync-receiver: refused"


@pytest.fixture
def installed(pair):
    write(pair.master / "etc/xivo/asterisk/a.conf", "a")
    pair.pin()
    pair.plugin().init(PEER)
    outside = pair.tmp / "outside"
    outside.mkdir()
    return pair, outside


@pytest.mark.parametrize(
    "command",
    [
        ["id"],
        ["sh", "-c", "touch /tmp/pwned"],
        ["rsync", "--server", "--sender", "-logtprRe.iLsfxCIvu", ".", "/etc/"],
        ["scp", "-t", "/tmp"],
        ["rsync", "--server", "-logtprRe.iLsfxCIvu", "--rsync-path=sh", ".", "/"],
    ],
    ids=["id", "shell", "rsync-sender", "scp", "unknown-option"],
)
def test_the_key_runs_nothing_but_the_receiving_rsync(installed, command):
    pair, _ = installed
    result = pair.ssh(*command)
    assert result.returncode != 0
    assert REFUSED in result.stderr
    assert "uid=" not in result.stdout
    assert not os.path.exists("/tmp/pwned")


def test_no_terminal_and_no_forwarding(installed):
    pair, _ = installed
    terminal = pair.ssh("id", options=("-tt",))
    assert "PTY allocation request failed" in terminal.stderr + terminal.stdout
    assert "uid=" not in terminal.stdout
    forwarding = pair.ssh(options=("-N", "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9"))
    assert forwarding.returncode == 255
    assert "remote port forwarding failed" in forwarding.stderr


def test_the_key_is_refused_from_another_source_address(installed):
    pair, _ = installed
    accepted = pair.ssh("id", bind="127.0.0.1")
    assert REFUSED in accepted.stderr, "from 127.0.0.1 the key authenticates (then the receiver refuses id)"
    refused = pair.ssh("id", bind="127.0.0.2")
    assert "Permission denied (publickey" in refused.stderr
    assert REFUSED not in refused.stderr
    assert "not from a permitted host (host=127.0.0.2" in pair.sshd.log()


def test_rsync_to_another_destination_is_refused(installed):
    pair, outside = installed
    source = write(pair.tmp / "evil.conf", "evil")
    result = pair.rsync("-rlptgoR", str(source), f"root@{PEER}:{outside}/")
    assert result.returncode != 0
    assert f"{REFUSED}: destination" in result.stderr
    assert not (outside / "evil.conf").exists()


def test_rsync_cannot_write_outside_the_allowed_directories(installed):
    pair, _ = installed
    evil_root = pair.tmp / "evil"
    write(evil_root / "etc/evil.conf", "evil")
    write(evil_root / "etc/xivo/asterisk/ok.conf", "allowed")
    result = pair.rsync("-rlptgoR", "--no-implied-dirs", f"{evil_root}/./etc/evil.conf", f"root@{PEER}:{pair.slave}")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr
    assert not (pair.slave / "etc/evil.conf").exists()
    result = pair.rsync(
        "-rlptgoR", "--no-implied-dirs", f"{evil_root}/./etc/xivo/asterisk/ok.conf", f"root@{PEER}:{pair.slave}"
    )
    assert result.returncode == 0, result.stderr
    assert (pair.slave / "etc/xivo/asterisk/ok.conf").read_text() == "allowed"


def test_a_symlink_planted_in_an_allowed_directory_does_not_lead_outside(installed):
    pair, outside = installed
    evil_root = pair.tmp / "evil"
    os.makedirs(evil_root / "etc/xivo/asterisk")
    os.symlink(str(outside), evil_root / "etc/xivo/asterisk/escape")
    first = pair.rsync("-rlptgoR", "--no-implied-dirs", f"{evil_root}/./etc/xivo/asterisk", f"root@{PEER}:{pair.slave}")
    assert first.returncode == 0, first.stderr
    assert os.readlink(pair.slave / "etc/xivo/asterisk/escape") == str(outside), "symlinks themselves do mirror"

    crafted = pair.tmp / "crafted"
    write(crafted / "etc/xivo/asterisk/escape/planted", "through the symlink")
    second = pair.rsync(
        "-rlptgoR",
        "--no-implied-dirs",
        "--keep-dirlinks",
        f"{crafted}/./etc/xivo/asterisk/escape/planted",
        f"root@{PEER}:{pair.slave}",
    )
    assert second.returncode != 0
    assert not (outside / "planted").exists()


def test_tenant_monitor_and_recording_on_the_slave_are_read_only_to_the_key(installed):
    pair, _ = installed
    recording = write(pair.slave / "var/lib/wazo/sounds/tenants/t1/monitor/call.wav", "slave recording")
    evil_root = pair.tmp / "evil"
    write(evil_root / "var/lib/wazo/sounds/tenants/t1/monitor/call.wav", "overwritten")
    result = pair.rsync(
        "-rlptgoR",
        "--no-implied-dirs",
        f"{evil_root}/./var/lib/wazo/sounds/tenants/t1/monitor",
        f"root@{PEER}:{pair.slave}",
    )
    assert result.returncode != 0
    assert recording.read_text() == "slave recording"
