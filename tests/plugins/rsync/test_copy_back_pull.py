"""Copy-back pull: the master reads the slave's copy-back directories with its sync key, and nothing else.

Real sshd, real rsync, the real forced command (receiver.py's read-only sender mode).
"""

from __future__ import annotations

import os

import pytest

from .conftest import PEER, write
from .test_sync import snapshot

REFUSED = "wazo-ha-rsync-receiver: refused"
VOICEMAIL = "var/spool/asterisk/voicemail"
MONITOR = "var/lib/wazo/sounds/tenants/t1/monitor"


@pytest.fixture
def installed(pair):
    write(pair.master / "etc/xivo/asterisk/a.conf", "a")
    (pair.master / "var/lib/wazo/sounds/tenants/t1").mkdir(parents=True)
    pair.pin()
    pair.plugin().init(PEER)
    write(pair.slave / VOICEMAIL / "default/1001/INBOX/msg0000.txt", "[message]\nmsg_id=1-a\norigtime=1\n", 0o600)
    write(pair.slave / VOICEMAIL / "default/1001/INBOX/msg0000.wav", os.urandom(50_000), 0o600)
    write(pair.slave / MONITOR / "rec-1.wav", b"recording")
    write(pair.slave / "etc/shadow-like/secret", "do not read")
    return pair


def test_the_master_pulls_the_copy_back_directories_into_staging_and_the_slave_is_unchanged(installed):
    pair = installed
    before = {relative: snapshot(pair.slave, relative) for relative in (VOICEMAIL, MONITOR)}
    staging = pair.tmp / "staging"

    result = pair.plugin().pull(
        PEER, ["/" + VOICEMAIL, "/" + MONITOR, "/var/lib/wazo/sounds/tenants/t2/monitor"], staging
    )

    for relative in (VOICEMAIL, MONITOR):
        assert snapshot(staging, relative) == before[relative]
        assert snapshot(pair.slave, relative) == before[relative]
    assert result.figures["files_transferred"] == 3
    # Missing on the slave: nothing recorded there, listed but not a warning (a warning would make it partial).
    assert any("t2/monitor" in note for note in result.figures["missing"]) and not result.warnings


def test_a_pull_of_another_directory_is_refused(installed):
    pair = installed
    result = pair.rsync("-rR", f"root@{PEER}:{pair.slave}/./etc/shadow-like", str(pair.tmp / "stolen"))
    assert result.returncode != 0 and REFUSED in result.stderr
    assert not (pair.tmp / "stolen").exists()


@pytest.mark.parametrize(
    "tail",
    [
        "/./var/spool/asterisk/voicemail/../../../etc/shadow-like",
        "/./var/spool/asterisk/voicemail/default",  # below a send directory: not the directory itself
        "/var/spool/asterisk/voicemail",  # no "/./" marker
        "/./var/lib/wazo/sounds/tenants/t1/playback",  # a tenant directory that is not copied back
    ],
)
def test_sources_outside_the_exact_copy_back_directories_are_refused(installed, tail):
    pair = installed
    result = pair.ssh("rsync", "--server", "--sender", "-logtprRe.iLsfxCIvu", ".", f"{pair.slave}{tail}")
    assert result.returncode != 0 and REFUSED in result.stderr


def test_options_that_remove_or_follow_are_refused(installed):
    pair = installed
    source = f"{pair.slave}/./{VOICEMAIL}"
    for option in ("--remove-source-files", "-L", "--copy-links", "--copy-unsafe-links"):
        result = pair.ssh("rsync", "--server", "--sender", "-logtprRe.iLsfxCIvu", option, ".", source)
        assert result.returncode != 0 and REFUSED in result.stderr, option
    assert (pair.slave / VOICEMAIL / "default/1001/INBOX/msg0000.wav").exists()


def test_a_copy_back_directory_replaced_by_a_symlink_is_refused(installed):
    pair = installed
    target = pair.slave / MONITOR
    os.rename(target, pair.slave / "moved")
    os.symlink(pair.slave / "etc/shadow-like", target)
    result = pair.ssh("rsync", "--server", "--sender", "-logtprRe.iLsfxCIvu", ".", f"{pair.slave}/./{MONITOR}")
    assert result.returncode != 0 and "symlink" in result.stderr


def test_the_sender_cannot_write_even_through_a_crafted_request(installed):
    """The sending rsync runs with every mount read-only: a receiving request in sender clothing gets nothing."""
    pair = installed
    result = pair.ssh("rsync", "--server", "--sender", "-logtprRe.iLsfxCIvu", ".", f"{pair.slave}/./{VOICEMAIL}")
    # Without the rsync protocol on stdin the sender ends with a protocol error, having written nothing.
    assert REFUSED not in result.stderr
    assert snapshot(pair.slave, VOICEMAIL)["default/1001/INBOX/msg0000.txt"][1] == "0o600"
