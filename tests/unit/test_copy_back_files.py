"""Copy-back of files on the master (wazo_ha_core.copy_back.files): real files, a real full tmpfs.

The staged tree stands for what the master pulled from the slave; it must
never change. Voicemail is laid out as app_voicemail lays it out.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_voicemail_merge import metadata
from wazo_ha_core.copy_back.files import TEMP_PREFIX, FilesReport, Ledger, merge_plain, merge_voicemail

BOX = "default/1001"


def write_message(spool: Path, folder: str, number: int, key: str, origtime: int, sound: bytes = b"RIFF") -> None:
    directory = spool / BOX / folder
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"msg{number:04d}.txt").write_text(metadata(origtime, msg_id=f"{origtime}-{key}"))
    (directory / f"msg{number:04d}.wav").write_bytes(sound + key.encode())
    (directory / f"msg{number:04d}.gsm").write_bytes(b"GSM" + key.encode())


def tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def msg_ids(spool: Path, folder: str = "INBOX") -> dict[str, str]:
    found = {}
    for path in sorted((spool / BOX / folder).glob("msg*.txt")):
        line = next(line for line in path.read_text().splitlines() if line.startswith("msg_id="))
        found[path.stem] = line.split("=", 1)[1]
    return found


@pytest.fixture
def nodes(tmp_path):
    staged, master = tmp_path / "staged", tmp_path / "master"
    staged.mkdir()
    master.mkdir()
    return staged, master, Ledger(tmp_path / "ledger.jsonl")


def run(staged, master, ledger, **kwargs) -> FilesReport:
    report = FilesReport()
    merge_voicemail(staged, master, ledger, report, **kwargs)
    return report


def test_clashing_messages_are_renumbered_with_all_their_files_and_the_master_keeps_its_own(nodes):
    staged, master, ledger = nodes
    write_message(master, "INBOX", 0, "m0", 100)
    write_message(master, "INBOX", 1, "m1", 200)
    write_message(staged, "INBOX", 0, "s0", 300)
    write_message(staged, "INBOX", 1, "s1", 400)
    write_message(staged, "Old", 0, "s2", 500)
    master_before, staged_before = tree(master), tree(staged)

    report = run(staged, master, ledger)

    assert msg_ids(master) == {"msg0000": "100-m0", "msg0001": "200-m1", "msg0002": "300-s0", "msg0003": "400-s1"}
    assert (master / BOX / "INBOX" / "msg0003.wav").read_bytes() == b"RIFFs1"
    assert (master / BOX / "INBOX" / "msg0003.gsm").read_bytes() == b"GSMs1"
    assert msg_ids(master, "Old") == {"msg0000": "500-s2"}
    assert {k: v for k, v in tree(master).items() if k in master_before} == master_before
    assert tree(staged) == staged_before
    assert (report.messages, report.renumbered, report.files) == (3, 2, 9)
    again = run(staged, master, ledger)
    assert (again.messages, again.files, again.already) == (0, 0, 3)


def test_a_message_deleted_on_the_master_after_its_copy_does_not_come_back(nodes):
    staged, master, ledger = nodes
    write_message(staged, "INBOX", 0, "s0", 300)
    run(staged, master, ledger)
    for path in (master / BOX / "INBOX").iterdir():
        path.unlink()
    report = run(staged, master, Ledger(ledger.path))  # a new process reads the ledger from disk
    assert report.messages == 0 and not list((master / BOX / "INBOX").iterdir())


def test_a_half_copied_message_is_completed_under_the_same_number_not_duplicated(nodes):
    """A crash after the sound files and before the .txt: the rerun finds the same free number."""
    staged, master, ledger = nodes
    write_message(master, "INBOX", 0, "m0", 100)
    write_message(staged, "INBOX", 0, "s0", 300)
    (master / BOX / "INBOX" / "msg0001.wav").write_bytes(b"RIFFs0")  # what the crashed run had linked
    (master / BOX / "INBOX" / f"{TEMP_PREFIX}msg0001.gsm.999").write_bytes(b"GS")  # and its temp file
    report = run(staged, master, ledger)
    assert report.messages == 1
    assert msg_ids(master) == {"msg0000": "100-m0", "msg0001": "300-s0"}
    assert sorted(p.name for p in (master / BOX / "INBOX").iterdir() if not p.name.startswith(".")) == [
        "msg0000.gsm",
        "msg0000.txt",
        "msg0000.wav",
        "msg0001.gsm",
        "msg0001.txt",
        "msg0001.wav",
    ]


def test_dry_run_lists_what_would_move_and_writes_nothing(nodes):
    staged, master, ledger = nodes
    write_message(master, "INBOX", 0, "m0", 100)
    write_message(staged, "INBOX", 0, "s0", 300)
    before = tree(master)
    report = run(staged, master, ledger, dry_run=True)
    assert report.would_copy == [f"voicemail/{BOX}/INBOX/msg0001.{ext}" for ext in ("gsm", "wav", "txt")]
    assert tree(master) == before and not ledger.path.exists()


def test_a_mailbox_that_is_a_file_on_the_master_is_reported_and_others_still_copied(nodes):
    staged, master, ledger = nodes
    (master / "default").mkdir()
    (master / BOX).write_text("not a directory")
    write_message(staged, "INBOX", 0, "s0", 300)
    other = staged / "default" / "1002" / "INBOX"
    other.mkdir(parents=True)
    (other / "msg0000.txt").write_text(metadata(700, msg_id="700-x"))
    (other / "msg0000.wav").write_bytes(b"x")
    report = run(staged, master, ledger)
    assert report.messages == 1 and (master / "default" / "1002" / "INBOX" / "msg0000.txt").is_file()
    assert any("default/1001/INBOX/msg0000" in problem and "not a directory" in problem for problem in report.problems)
    assert (master / BOX).read_text() == "not a directory"


def test_names_that_are_not_utf8_are_reported_and_skipped(nodes):
    staged, master, ledger = nodes
    write_message(staged, "INBOX", 0, "s0", 300)
    os.mkdir(os.path.join(os.fsencode(staged / "default"), b"caf\xe9"))
    report = run(staged, master, ledger)
    assert report.messages == 1
    assert any("not UTF-8" in problem and "caf\\xe9" in problem for problem in report.problems)


def test_a_missing_staged_spool_copies_nothing_and_a_staged_file_instead_of_a_directory_is_reported(tmp_path):
    ledger = Ledger(tmp_path / "ledger.jsonl")
    assert run(tmp_path / "absent", tmp_path / "master", ledger).messages == 0
    (tmp_path / "file").write_text("x")
    report = run(tmp_path / "file", tmp_path / "master", ledger)
    assert report.problems == [f"{tmp_path / 'file'}: not a directory"]


@pytest.fixture
def small_disk(tmp_path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)], check=True)
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def test_a_full_master_disk_is_a_clear_error_keeps_nothing_half_written_and_the_rerun_completes(nodes, small_disk):
    staged, _, ledger = nodes
    master = small_disk
    write_message(staged, "INBOX", 0, "s0", 300, sound=b"x" * (400 * 1024))
    staged_before = tree(staged)

    report = run(staged, master, ledger)

    assert report.messages == 0
    assert any("no space left on the master's disk" in problem for problem in report.problems)
    inbox = master / BOX / "INBOX"
    assert list(inbox.iterdir()) == []  # the small .gsm linked before the .wav failed was taken back
    assert tree(staged) == staged_before
    subprocess.run(["mount", "-o", "remount,size=2m", str(master)], check=True)
    assert run(staged, master, ledger).messages == 1
    assert msg_ids(master) == {"msg0000": "300-s0"}


def test_recordings_missing_are_copied_identical_ones_skipped_differing_ones_kept_as_conflicts(tmp_path):
    staged, master = tmp_path / "staged", tmp_path / "master"
    for root in (staged, master):
        (root / "t1" / "monitor").mkdir(parents=True)
    (staged / "t1" / "monitor" / "new.wav").write_bytes(b"new")
    (staged / "t1" / "monitor" / "same.wav").write_bytes(b"same")
    (master / "t1" / "monitor" / "same.wav").write_bytes(b"same")
    (staged / "t1" / "monitor" / "clash.wav").write_bytes(b"slave")
    (master / "t1" / "monitor" / "clash.wav").write_bytes(b"master")
    report = FilesReport()
    merge_plain(staged, master, "recordings", Ledger(tmp_path / "l"), report)
    assert (master / "t1" / "monitor" / "new.wav").read_bytes() == b"new"
    assert (master / "t1" / "monitor" / "clash.wav").read_bytes() == b"master"
    assert (report.files, report.already, len(report.conflicts)) == (1, 1, 1)
    assert "clash.wav" in report.conflicts[0]


UNREADABLE_CHILD = """
import json, sys
from pathlib import Path
from wazo_ha_core.copy_back.files import FilesReport, Ledger, merge_voicemail
report = FilesReport()
merge_voicemail(Path(sys.argv[1]), Path(sys.argv[2]), Ledger(Path(sys.argv[3])), report)
print(json.dumps({"messages": report.messages, "problems": report.problems}))
"""


WITHOUT_DAC = ["setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"]


def test_an_unreadable_mailbox_folder_is_reported_and_the_other_mailboxes_still_copied(nodes, tmp_path):
    """Run as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (setpriv), so mode 000 really denies reading."""
    staged, master, ledger = nodes
    write_message(staged, "INBOX", 0, "s0", 300)
    other = staged / "default" / "1002" / "INBOX"
    other.mkdir(parents=True)
    (other / "msg0000.txt").write_text(metadata(700, msg_id="700-x"))
    (other / "msg0000.wav").write_bytes(b"x")
    os.chmod(other, 0)
    try:
        result = subprocess.run(
            [*WITHOUT_DAC, sys.executable, "-c", UNREADABLE_CHILD, str(staged), str(master), str(ledger.path)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.chmod(other, 0o700)
    assert result.returncode == 0, result.stderr
    outcome = json.loads(result.stdout)
    assert outcome["messages"] == 1
    assert any("default/1002/INBOX: cannot list it (Permission denied)" in p for p in outcome["problems"])
    assert msg_ids(master) == {"msg0000": "300-s0"}
