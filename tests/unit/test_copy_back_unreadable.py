"""A directory the slave's rsync sender may not read: rsync's own words parsed into node paths, and the voicemail
merge leaving those mailboxes out on both sides (a missing staged copy is not "deleted by its owner").

The rsync lines come from a real rsync run without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (capsh), so a mode-000
directory and file really are refused, as to the slave's sender on the rig (tests/copyback_e2e).
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.unit.test_copy_back_files import msg_ids, write_message
from tests.unit.test_voicemail_merge import metadata
from wazo_ha_core.copy_back.files import FilesReport, Ledger, listing, merge_voicemail
from wazo_ha_core.copy_back.run import _under
from wazo_ha_core.voicemail import parse_tree
from wazo_ha_core.voicemail.apply import save_base
from wazo_ha_core.voicemail.threeway import Base
from wazo_ha_plugins.rsync.plugin import _real_errors, _unreadable_on_slave

CAPSH = shutil.which("capsh")


@pytest.mark.skipif(CAPSH is None, reason="capsh (libcap2-bin) missing")
def test_real_rsync_permission_errors_become_node_paths_and_nothing_else_counts_as_an_error(tmp_path):
    root = tmp_path / "slave"
    spool = root / "var/spool/asterisk/voicemail/default"
    (spool / "1006/INBOX").mkdir(parents=True)
    (spool / "1007/INBOX").mkdir(parents=True)
    (spool / "1006/INBOX/msg0000.txt").write_text("x")
    (spool / "1007/INBOX/msg0000.txt").write_text("y")
    (spool / "1007/INBOX/msg0001.txt").write_text("z")
    (spool / "1006/INBOX").chmod(0)
    (spool / "1007/INBOX/msg0001.txt").chmod(0)
    staging = tmp_path / "staging"
    staging.mkdir()
    try:
        command = f"rsync -aR --delete-delay {root}/./var/spool/asterisk/voicemail {staging}/"
        result = subprocess.run(
            [CAPSH, "--drop=cap_dac_override,cap_dac_read_search", "--", "-c", command],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        (spool / "1006/INBOX").chmod(0o755)
    assert result.returncode == 23, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    unreadable, rest = _unreadable_on_slave(errors, str(root))
    assert unreadable == [
        "/var/spool/asterisk/voicemail/default/1006/INBOX",
        "/var/spool/asterisk/voicemail/default/1007/INBOX/msg0001.txt",
    ]
    assert _real_errors(rest) == []
    # A line that is something else stays an error.
    assert _real_errors(['rsync: [receiver] write failed on "x": No space left on device (28)'])
    # With remote_root "/" (a real slave) the paths are the sender's own.
    assert _unreadable_on_slave(['rsync: [sender] opendir "/var/x" failed: Permission denied (13)'], "") == (
        ["/var/x"],
        [],
    )


def test_under_maps_node_paths_into_a_copy_back_directory():
    spool = "/var/spool/asterisk/voicemail"
    paths = [f"{spool}/default/1006/INBOX", f"{spool}/default", "/var/spool", "/var/spool/other", spool]
    assert _under(spool, paths) == ["default/1006/INBOX", "default", ".", "."]


def two_way(tmp_path, unreadable):
    """Both nodes held default/1001 msg0000 ("kept") and default/1002 msg0000 (base); 1002 was not readable on the
    slave, so its staged copy lacks it; the slave also recorded a new message in 1001."""
    staged, master = tmp_path / "staged", tmp_path / "master"
    for spool in (staged, master):
        write_message(spool, "INBOX", 0, "kept", 100)
    other = master / "default/1002/INBOX"
    other.mkdir(parents=True)
    (other / "msg0000.txt").write_text(metadata(200, msg_id="200-other"))
    (other / "msg0000.wav").write_bytes(b"RIFF-other")
    base_path = tmp_path / "base.json"
    save_base(base_path, Base.of(parse_tree(listing(master, []))))
    base_before = base_path.read_text()
    write_message(staged, "INBOX", 1, "new", 300)
    report = FilesReport()
    merge_voicemail(
        staged, master, Ledger(tmp_path / "ledger.jsonl"), report, base_path=base_path, unreadable=unreadable
    )
    return master, report, base_path.read_text() == base_before


def test_an_unreadable_mailbox_is_left_out_of_the_two_way_merge_not_deleted_on_the_master(tmp_path):
    master, report, base_unchanged = two_way(tmp_path, ["default/1002/INBOX"])
    assert (master / "default/1002/INBOX/msg0000.txt").exists(), "taken as deleted on the slave"
    assert msg_ids(master) == {"msg0000": "100-kept", "msg0001": "300-new"}  # the readable mailbox merged
    assert any("mailbox default/1002" in p and "default/1002/INBOX" in p for p in report.problems), report.problems
    assert base_unchanged, "the base was saved from an incomplete view of the slave"
    assert ("default", "1002") not in report.changed_mailboxes


def test_without_the_unreadable_list_the_same_staged_copy_would_delete_the_masters_message(tmp_path):
    """Why the list matters: the merge alone cannot tell a mailbox it could not read from one emptied by its owner."""
    master, _report, _ = two_way(tmp_path, [])
    assert not (master / "default/1002/INBOX/msg0000.txt").exists()


def test_an_unreadable_spool_merges_nothing(tmp_path):
    master, report, base_unchanged = two_way(tmp_path, ["."])
    assert msg_ids(master) == {"msg0000": "100-kept"} and base_unchanged
    assert any("spool could not be read" in p for p in report.problems)


def test_an_unreadable_context_leaves_out_all_its_mailboxes(tmp_path):
    master, report, _ = two_way(tmp_path, ["default"])
    assert msg_ids(master) == {"msg0000": "100-kept"}
    assert (master / "default/1002/INBOX/msg0000.txt").exists()
    assert any("context default" in p for p in report.problems)
