"""Two-way copy-back on real files (wazo_ha_core.copy_back.files with a voicemail base; voicemail.apply).

The staged tree stands for the slave's spool as pulled (it never changes); the master tree is live.
"""

from __future__ import annotations

import os
from pathlib import Path

from tests.unit.test_copy_back_files import BOX, msg_ids, tree, write_message
from wazo_ha_core.copy_back.files import FilesReport, Ledger, listing, merge_voicemail
from wazo_ha_core.voicemail import parse_tree
from wazo_ha_core.voicemail.apply import base_file, load_base, save_base
from wazo_ha_core.voicemail.threeway import Base


def setup(tmp_path: Path):
    staged, master = tmp_path / "staged", tmp_path / "master"
    for key, number in (("a", 0), ("b", 1), ("c", 2)):
        write_message(master, "INBOX", number, key, 100 + number)
    (master / BOX / "unavail.wav").write_bytes(b"greeting v1")
    base_path = base_file(tmp_path / "state", "10.203.19.2")
    save_base(base_path, Base.of(parse_tree(listing(master, []))))
    # The slave served: "a" deleted, "b" read (moved to Old), "s" left, greeting re-recorded.
    write_message(staged, "INBOX", 0, "c", 102)
    write_message(staged, "INBOX", 1, "s", 500)
    write_message(staged, "Old", 0, "b", 101)
    (staged / BOX / "unavail.wav").write_bytes(b"greeting v2")
    return staged, master, base_path, Ledger(tmp_path / "ledger.jsonl")


def merge(staged, master, ledger, base_path, **kwargs) -> FilesReport:
    report = FilesReport()
    merge_voicemail(staged, master, ledger, report, base_path=base_path, **kwargs)
    return report


def test_the_slaves_deletions_moves_new_messages_and_greeting_reach_the_master(tmp_path):
    staged, master, base_path, ledger = setup(tmp_path)
    os.chmod(master / BOX, 0o750)  # noqa: S103 (a mode app_voicemail's directories could have)
    staged_before = tree(staged)
    report = merge(staged, master, ledger, base_path)
    assert not report.problems and not report.conflicts
    assert list(msg_ids(master).values()) == ["102-c", "500-s"] and list(msg_ids(master, "Old").values()) == ["101-b"]
    assert (master / BOX / "unavail.wav").read_bytes() == b"greeting v2"
    assert (master / BOX / "Old").stat().st_mode & 0o777 == 0o750  # a folder made like its mailbox
    assert report.figures()["voicemail_messages_deleted"] == 1 and report.figures()["voicemail_messages_copied"] == 1
    assert tree(staged) == staged_before
    # The base moved to the slave's spool: run again, nothing to do.
    assert load_base(base_path, []) == Base.of(parse_tree(listing(staged, [])))
    again = merge(staged, master, ledger, base_path)
    assert again.figures()["voicemail_messages_copied"] == 0 and not again.problems


def test_a_dry_run_lists_the_copies_and_deletions_and_changes_nothing(tmp_path):
    staged, master, base_path, ledger = setup(tmp_path)
    before, base_before = tree(master), base_path.read_bytes()
    report = merge(staged, master, ledger, base_path, dry_run=True)
    assert f"voicemail/{BOX}/INBOX/msg0001" in report.would_copy
    assert f"voicemail/{BOX}/INBOX/msg0000 (delete)" in report.would_copy
    assert tree(master) == before and base_path.read_bytes() == base_before


def test_a_plan_that_no_longer_fits_the_master_is_refused_with_nothing_changed(tmp_path, monkeypatch):
    staged, master, base_path, ledger = setup(tmp_path)
    import wazo_ha_core.voicemail.apply as apply

    real = apply.apply_plan

    def file_appears_meanwhile(listing_, other, plan):
        (master / BOX / "Old").mkdir(exist_ok=True)
        (master / BOX / "Old" / "msg0000.wav").write_bytes(b"recorded by Asterisk meanwhile")
        return real({**listing_, f"{BOX}/Old/msg0000.wav": "meanwhile"}, other, plan)

    monkeypatch.setattr(apply, "apply_plan", file_appears_meanwhile)
    before = tree(master)
    report = merge(staged, master, ledger, base_path)
    assert any("plan refused, nothing changed" in p for p in report.problems)
    assert tree(master) == {**before, f"{BOX}/Old/msg0000.wav": tree(master)[f"{BOX}/Old/msg0000.wav"]}


def test_an_interrupted_run_shows_every_message_and_the_rerun_completes(tmp_path, monkeypatch):
    staged, master, base_path, ledger = setup(tmp_path)
    import wazo_ha_core.voicemail.apply as apply

    calls = {"n": 0}
    real_link = os.link

    def link_then_crash(source, target):
        calls["n"] += 1
        if calls["n"] == 3:  # the .txt of the first move: its sounds are linked, not its metadata
            raise OSError(28, "No space left on device")
        real_link(source, target)

    monkeypatch.setattr(apply.os, "link", link_then_crash)
    report = merge(staged, master, ledger, base_path)
    assert any("cannot link" in p for p in report.problems)
    shown = {
        m.identity[1]
        for box in parse_tree(listing(master, [])).mailboxes.values()
        for f in box.folders.values()
        for m in f.messages.values()
    }
    assert {"102-c", "101-b"} <= shown  # nothing the result keeps is invisible
    monkeypatch.setattr(apply.os, "link", real_link)
    report = merge(staged, master, ledger, base_path)
    assert not report.problems, report.problems
    assert list(msg_ids(master).values()) == ["102-c", "500-s"] and list(msg_ids(master, "Old").values()) == ["101-b"]
    assert not [p for p in tree(master) if "/INBOX/msg0002" in p or "/Old/msg0001" in p]  # no leftover


def test_a_message_the_ledger_copied_and_the_owner_deleted_on_the_master_is_not_brought_back(tmp_path):
    staged, master, base_path, ledger = setup(tmp_path)
    base_path.unlink()  # a partial copy-back: the base did not move
    save_base(base_path, Base.of(parse_tree(listing(master, []))))
    ledger.add([("voicemail", BOX, "msg_id", "500-s")])  # copied by an earlier run, deleted since on the master
    merge(staged, master, ledger, base_path)
    assert "500-s" not in msg_ids(master).values()


def test_a_sound_file_without_metadata_on_the_master_is_left_alone(tmp_path):
    staged, master, base_path, ledger = setup(tmp_path)
    (master / BOX / "INBOX" / "msg0007.wav").write_bytes(b"RIFF junk")
    report = merge(staged, master, ledger, base_path)
    assert (master / BOX / "INBOX" / "msg0007.wav").read_bytes() == b"RIFF junk"
    assert list(msg_ids(master).values()) == ["102-c", "500-s"]
    assert not [p for p in report.problems if "plan refused" in p]


def test_an_unreadable_base_is_said_and_the_copy_back_is_additive(tmp_path):
    staged, master, base_path, ledger = setup(tmp_path)
    base_path.write_text("{not json")
    report = merge(staged, master, ledger, base_path)
    assert any("voicemail base is not JSON" in p for p in report.problems)
    assert "100-a" in msg_ids(master).values()  # without a base nothing counts as deleted
