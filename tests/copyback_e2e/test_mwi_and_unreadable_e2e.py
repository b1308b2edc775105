"""After a real failover and failback on the namespace rig (10.203.17.0/24, tag b): the master's message-waiting
state is refreshed for exactly the mailboxes the copy-back changed; a wazo-amid outage leaves the copy-back ``ok``
with a warning; a directory the slave's sender truly cannot read is reported, the rest copied, and it is merged
once readable again.

Real parts: PostgreSQL, sshd + rsync (the forced command's read-only sender), ``wazo-ha watch`` on the slave,
``wazo-ha copy-back --auto`` on the master; the unreadable directory is a mode-000 directory that the kernel
refuses to the slave's sender, run without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH (capsh).
Stand-ins: sipp for Asterisk's SIP side; ``tests/rig/amid_standin.py`` for wazo-amid + Asterisk's manager
interface on the master (neither runs here), following wazo-amid's request shape: ``POST /1.0/action/<Action>``,
``X-Auth-Token``, the action's headers as JSON, a JSON list of AMI messages back.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.rig.amid_standin import read_log
from tests.rig.copyback import leave_message, messages, tree_digest
from wazo_ha_rig.waiting import wait_for

COPY_BACK_DEADLINE = 120.0


@pytest.fixture(scope="module")
def amid(rig):
    rig.start_amid()
    yield rig
    rig.stop_amid()


def last_copy_back(rig):
    return rig.master_store.events(kind="copy-back", limit=1)[0]


def copy_backs(rig) -> int:
    return len(rig.master_store.events(kind="copy-back", limit=500))


def wait_copied(rig) -> None:
    wait_for(lambda: not rig.owed().owed and rig.owed().last_outcome == "ok", COPY_BACK_DEADLINE, "the copy-back done")


def refreshes_since(rig, seen: int) -> list[tuple[str, str]]:
    received = read_log(rig.amid_log)[seen:]
    for request in received:
        assert request["method"] == "POST" and request["path"] == "/1.0/action/VoicemailRefresh", request
        assert request["authorised"], "the request did not carry the token of the master's token file"
        assert set(request["body"]) == {"Context", "Mailbox"}, request["body"]
    return [(r["body"]["Context"], r["body"]["Mailbox"]) for r in received]


def test_each_mailbox_the_copy_back_changed_is_refreshed_once_and_no_other(amid):
    rig = amid
    master_spool, slave_spool = rig.spool(rig.master), rig.spool(rig.slave)
    for box in ("1002", "1004", "1006"):  # on both nodes after the sync; 1002 stays untouched
        leave_message(master_spool, box, "INBOX", f"before-{box}")
    rig.sync()
    assert messages(slave_spool).keys() == messages(master_spool).keys()
    leave_message(master_spool, "1001", "INBOX", "master-late")  # the master's msg0000 the slave's will clash with
    seen = len(read_log(rig.amid_log))

    rig.fail_master()
    leave_message(slave_spool, "1001", "INBOX", "slave-1")  # added (renumbered past the master's)
    leave_message(slave_spool, "1001", "INBOX", "slave-2")
    leave_message(slave_spool, "1003", "Old", "slave-3")  # added, a new mailbox on the master
    for path in (slave_spool / "default/1004/INBOX").glob("msg0000.*"):  # the owner deleted it on the slave
        path.unlink()
    leave_message(slave_spool, "10@05", "INBOX", "slave-5")  # a name that must never reach a request
    wait_for(lambda: rig.owed().owed, 20, "the master's check finding the copy-back owed")
    rig.bring_master_back()
    wait_copied(rig)

    event = last_copy_back(rig)
    assert event.outcome == "ok", event.message
    assert sorted(refreshes_since(rig, seen)) == [("default", "1001"), ("default", "1003"), ("default", "1004")]
    assert event.figures["mwi_refreshed"] == 3 and event.figures["mwi_failed"] == 1
    assert any("'10@05'" in notice and "refused" in notice for notice in event.figures["notices"])
    held = messages(master_spool)
    assert not any(msg_id.endswith("-before-1004") for msg_id in held), "the deletion on the slave was not carried"
    assert any(msg_id.endswith("-slave-3") for msg_id in held) and any(msg_id.endswith("-slave-5") for msg_id in held)


def test_a_wazo_amid_outage_leaves_the_copy_back_ok_with_a_warning_naming_the_mailbox(amid):
    rig = amid
    rig.stop_amid()
    try:
        rig.fail_master()
        leave_message(rig.spool(rig.slave), "1002", "INBOX", "during-outage")
        wait_for(lambda: rig.owed().owed, 20, "the master's check finding the copy-back owed")
        rig.bring_master_back()
        wait_copied(rig)
    finally:
        rig.start_amid()

    event = last_copy_back(rig)
    assert event.outcome == "ok", event.message
    assert event.figures["mwi_refreshed"] == 0 and event.figures["mwi_failed"] == 1
    notices = event.figures["notices"]
    assert len(notices) == 1 and "default/1002" in notices[0] and "unreachable" in notices[0], notices
    assert any(msg_id.endswith("-during-outage") for msg_id in messages(rig.spool(rig.master)))


def test_a_directory_the_slave_cannot_read_is_reported_the_rest_copied_and_merged_once_readable(amid):
    rig = amid
    slave_spool, master_spool = rig.spool(rig.slave), rig.spool(rig.master)
    rig.fail_master()
    leave_message(slave_spool, "1006", "INBOX", "locked")  # beside the master's "before-1006", in the base
    leave_message(slave_spool, "1007", "INBOX", "readable")
    locked = slave_spool / "default/1006/INBOX"
    mode = locked.stat().st_mode & 0o7777
    wait_for(lambda: rig.owed().owed, 20, "the master's check finding the copy-back owed")
    before = copy_backs(rig)
    with rig.sender_without_dac_capabilities():
        locked.chmod(0)
        try:
            slave_before = tree_digest(slave_spool)
            rig.bring_master_back()
            wait_for(lambda: copy_backs(rig) > before, COPY_BACK_DEADLINE, "a copy-back attempt after the failback")
            event = last_copy_back(rig)
            assert event.outcome == "partial", (event.outcome, event.message)
            named = [w for w in event.figures["warnings"] if "default/1006/INBOX" in w]
            assert named and all("permission denied" in w for w in named), event.figures["warnings"]
            held = messages(master_spool)
            assert any(m.endswith("-readable") for m in held), "the readable mailbox was not copied"
            assert not any(m.endswith("-locked") for m in held)
            assert any(m.endswith("-before-1006") for m in held), "the unreadable mailbox's message was deleted"
            assert rig.owed().owed, "the copy-back was cleared with a directory left on the slave"
            assert tree_digest(slave_spool) == slave_before, "the slave's spool changed"
        finally:
            locked.chmod(mode)
        wait_copied(rig)
    held = messages(master_spool)
    assert any(m.endswith("-locked") for m in held) and any(m.endswith("-before-1006") for m in held)
    assert last_copy_back(rig).outcome == "ok"


def test_the_rig_really_refuses_the_sender(amid):
    """The mechanism above is real: under capsh without the two capabilities, root cannot list a mode-000 dir."""
    rig = amid
    probe = rig.work / "mode-000"
    probe.mkdir()
    probe.chmod(0)
    try:
        capsh = shutil.which("capsh")
        result = rig.slave.host.run(
            [capsh, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", f"ls {probe}"], check=False
        )
        assert result.returncode != 0 and "Permission denied" in result.stderr
        assert os.listdir(probe) == []  # this test process keeps its capabilities
    finally:
        probe.chmod(0o700)
        probe.rmdir()
