"""Bad input for a whole copy-back over the real sshd + rsync: the slave's spool missing or unreadable, a mailbox
that is a file on the master, names that are not UTF-8, the master's disk full. Each time: nothing on the slave
changes, the error names the path, what could be copied is, and the rerun completes exactly once.

Rows are not part of this environment (``plugins.replication`` is empty; tests/plugins/pg_dump covers them).
"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from .conftest import PEER, write
from .test_sync import snapshot

SPOOL = "var/spool/asterisk/voicemail"


def leave(root, box: str, folder: str, number: int, key: str, size: int = 1000) -> None:
    from tests.unit.test_voicemail_merge import metadata

    directory = root / SPOOL / "default" / box / folder
    write(directory / f"msg{number:04d}.txt", metadata(100 + number, msg_id=f"{key}-{number}"))
    write(directory / f"msg{number:04d}.wav", key.encode() * size)


def ready(pair):
    pair.tree["plugins"]["replication"] = []
    pair.config_file.write_text(yaml.safe_dump(pair.tree))
    (pair.master / SPOOL).mkdir(parents=True, exist_ok=True)
    pair.pin()
    pair.plugin().init(PEER)
    return pair.engine("master")


def slave_state(pair):
    return snapshot(pair.slave, SPOOL) if (pair.slave / SPOOL).exists() else {}


def test_a_missing_spool_on_the_slave_is_nothing_recorded_there(pair):
    engine = ready(pair)
    report = engine.copy_back()
    # ok, not partial: the automatic copy-back must not retry forever a slave that never had voicemail.
    assert report.outcome == "ok" and report.figures["directories_missing_on_slave"] == 1
    assert report.figures["messages"] == 0 and report.figures["files"] == 0
    assert not (pair.slave / SPOOL).exists()  # nothing created there either


def test_a_mailbox_of_mode_000_on_the_slave_is_still_copied_and_left_as_it_was(pair):
    """The slave's sender runs as root (an operator's chmod does not strand messages); the slave keeps its modes.

    A directory the sender truly cannot read is reported per item by the merge (tests/unit/test_copy_back_files.py,
    run without DAC override).
    """
    engine = ready(pair)
    leave(pair.slave, "1001", "INBOX", 0, "readable")
    leave(pair.slave, "1002", "INBOX", 0, "hidden")
    hidden = pair.slave / SPOOL / "default/1002"
    os.chmod(hidden, 0)
    try:
        before = slave_state(pair)
        report = engine.copy_back()
        assert slave_state(pair) == before
    finally:
        os.chmod(hidden, 0o755)  # noqa: S103 (a spool directory's usual mode)
    assert report.outcome == "ok", report.warnings
    assert (pair.master / SPOOL / "default/1001/INBOX/msg0000.txt").exists()
    assert (pair.master / SPOOL / "default/1002/INBOX/msg0000.wav").read_bytes() == b"hidden" * 1000


def test_a_mailbox_that_is_a_file_on_the_master_is_named_and_left_on_the_slave(pair):
    engine = ready(pair)
    leave(pair.slave, "1001", "INBOX", 0, "s")
    leave(pair.slave, "1003", "INBOX", 0, "t")
    write(pair.master / SPOOL / "default/1001", "not a directory")
    before = slave_state(pair)

    report = engine.copy_back()

    assert report.outcome == "partial"
    assert any("default/1001" in warning for warning in report.warnings), report.warnings
    assert (pair.master / SPOOL / "default/1003/INBOX/msg0000.txt").exists()
    assert (pair.master / SPOOL / "default/1001").read_text() == "not a directory"
    assert slave_state(pair) == before


def test_names_that_are_not_utf8_are_named_and_skipped(pair):
    engine = ready(pair)
    leave(pair.slave, "1001", "INBOX", 0, "fine")
    odd = os.fsencode(pair.slave / SPOOL / "default/1001/INBOX") + b"/msg0001-\xff.wav"
    with open(odd, "wb") as handle:
        handle.write(b"odd")
    before = slave_state(pair)

    report = engine.copy_back()

    assert report.outcome == "partial" and any("UTF-8" in w or "\\xff" in w for w in report.warnings), report.warnings
    assert (pair.master / SPOOL / "default/1001/INBOX/msg0000.txt").exists()
    assert slave_state(pair) == before


@pytest.fixture
def small_master_spool(pair):
    target = pair.master / SPOOL
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(target)], check=True)
    yield target
    subprocess.run(["umount", str(target)], check=False)


def test_a_full_disk_on_the_master_is_named_nothing_half_written_and_the_rerun_completes(pair, small_master_spool):
    engine = ready(pair)
    for number in range(6):
        leave(pair.slave, "1001", "INBOX", number, f"m{number}", size=60_000)  # 120 KB each: 2 fit, not 6
    before = slave_state(pair)

    report = engine.copy_back()

    assert report.outcome == "partial"
    assert any("no space left" in w.lower() and "1001" in w for w in report.warnings), report.warnings
    inbox = small_master_spool / "default/1001/INBOX"
    copied = sorted(p.name for p in inbox.iterdir())
    assert not any(name.startswith(".wazo-ha-copy-back.") for name in copied), copied  # no temporary left
    for txt in inbox.glob("msg*.txt"):  # every message there is whole: its sound file too
        assert txt.with_suffix(".wav").stat().st_size == 120_000
    assert slave_state(pair) == before

    subprocess.run(["mount", "-o", "remount,size=4m", str(small_master_spool)], check=True)
    again = engine.copy_back()
    assert again.outcome == "ok", again.warnings
    assert len(list(inbox.glob("msg*.txt"))) == 6 and len(list(inbox.glob("msg*.wav"))) == 6
    assert slave_state(pair) == before
