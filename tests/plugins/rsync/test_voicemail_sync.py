"""Voicemail two ways over the real sshd + rsync: mirrored master → slave while that erases nothing, held while
a copy-back is owed, and the copy-back carrying the owners' deletions, moves and greetings back.

Files are laid out as app_voicemail lays them (msgNNNN.txt + one sound file per format, renumbered from
msg0000 after a deletion; greetings in the mailbox directory).
"""

from __future__ import annotations

import hashlib
import os

from tests.unit.test_voicemail_merge import metadata

from .conftest import PEER, write

SPOOL = "var/spool/asterisk/voicemail"
BOX = f"{SPOOL}/default/1001"


def leave(root, folder, number, key, origtime):
    write(root / BOX / folder / f"msg{number:04d}.txt", metadata(origtime, msg_id=f"{origtime}-{key}"))
    write(root / BOX / folder / f"msg{number:04d}.wav", f"sound of {key}")


def spool(root) -> dict[str, str]:
    base = root / SPOOL
    return {
        str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(base.rglob("*"))
        if p.is_file()
    }


def shown(root, folder="INBOX") -> list[str]:
    """The msg_id keys of a folder in number order (asserting numbering from msg0000 without gaps)."""
    files = sorted((root / BOX / folder).glob("msg*.txt"))
    assert [f.stem for f in files] == [f"msg{n:04d}" for n in range(len(files))]
    return [next(x for x in f.read_text().splitlines() if x.startswith("msg_id=")).split("-", 1)[1] for f in files]


def last_sync(engine):
    return engine.store.events(kind="sync", limit=1)[0]


def test_voicemail_is_mirrored_then_held_while_the_slave_holds_news_then_merged_back_and_mirrored_again(pair):
    pair.tree["plugins"]["replication"] = []  # rows: tests/plugins/pg_dump
    pair.pin()
    pair.plugin().init(PEER)
    engine = pair.engine("master")
    leave(pair.master, "INBOX", 0, "a", 100)
    leave(pair.master, "INBOX", 1, "b", 200)
    write(pair.master / BOX / "unavail.wav", "greeting v1")

    first = engine.sync_files()
    event = last_sync(engine)
    assert event.figures["voicemail"] == "mirrored", first.warnings[-1]
    assert event.figures["voicemail_to_slave_copied"] == 2
    assert spool(pair.slave) == spool(pair.master)

    # Failover: a caller leaves "s" on the slave, the owner deletes "a" there (app_voicemail renumbers)
    # and records a new greeting. Meanwhile the master, still up for the sync, gets "m".
    (pair.slave / BOX / "INBOX/msg0000.txt").unlink()
    (pair.slave / BOX / "INBOX/msg0000.wav").unlink()
    for ext in ("txt", "wav"):
        (pair.slave / BOX / f"INBOX/msg0001.{ext}").rename(pair.slave / BOX / f"INBOX/msg0000.{ext}")
    leave(pair.slave, "INBOX", 1, "s", 300)
    write(pair.slave / BOX / "unavail.wav", "greeting v2")
    leave(pair.master, "INBOX", 2, "m", 250)
    slave_before = spool(pair.slave)

    report = engine.sync_files()
    event = last_sync(engine)
    assert event.figures["voicemail"] == "held" and event.figures["voicemail_copy_back_owed"] == 3
    assert any("run `wazo-ha copy-back` first" in w for w in report.warnings)
    assert spool(pair.slave) == slave_before  # nothing the slave recorded was erased

    result = engine.copy_back()
    assert result.figures["voicemail_messages_copied"] == 1 and result.figures["voicemail_messages_deleted"] == 1
    assert shown(pair.master) == ["b", "m", "s"]
    assert (pair.master / BOX / "unavail.wav").read_text() == "greeting v2"
    assert spool(pair.slave) == slave_before  # copy-back never writes on the slave

    engine.sync_files()
    assert last_sync(engine).figures["voicemail"] == "mirrored"
    assert spool(pair.slave) == spool(pair.master) and shown(pair.slave) == ["b", "m", "s"]


def test_without_a_base_a_slave_holding_messages_the_master_lacks_is_held_not_erased(pair):
    pair.pin()
    pair.plugin().init(PEER)
    engine = pair.engine("master")
    leave(pair.master, "INBOX", 0, "a", 100)
    leave(pair.slave, "INBOX", 0, "left-on-the-slave-long-ago", 50)
    before = spool(pair.slave)
    engine.sync_files()
    assert last_sync(engine).figures["voicemail"] == "held"
    assert spool(pair.slave) == before


def test_with_voicemail_sync_off_the_spool_is_not_touched(pair):
    pair.tree["file_sync"] = {"voicemail": False}
    pair.pin()
    pair.plugin().init(PEER)
    engine = pair.engine("master")
    leave(pair.master, "INBOX", 0, "a", 100)
    engine.sync_files()
    assert "voicemail" not in last_sync(engine).figures
    assert not (pair.slave / SPOOL).exists()


def test_a_mirror_pull_sees_a_renumbered_message_of_the_same_size_and_second(pair):
    pair.pin()
    pair.plugin().init(PEER)
    for number, key in ((0, "a"), (1, "b")):
        leave(pair.slave, "INBOX", number, key, 100)
        for ext in ("txt", "wav"):
            os.utime(pair.slave / BOX / "INBOX" / f"msg{number:04d}.{ext}", (1_000_000, 1_000_000))
    staging = pair.tmp / "staging"
    pair.plugin().pull(PEER, ["/" + SPOOL], staging, mirror=True)
    # The owner deletes "a": app_voicemail renames msg0001 (same size, same time) to msg0000.
    for ext in ("txt", "wav"):
        (pair.slave / BOX / "INBOX" / f"msg0000.{ext}").unlink()
        (pair.slave / BOX / "INBOX" / f"msg0001.{ext}").rename(pair.slave / BOX / "INBOX" / f"msg0000.{ext}")
    pair.plugin().pull(PEER, ["/" + SPOOL], staging, mirror=True)
    assert spool(staging) == spool(pair.slave)


def test_a_mirror_cut_short_is_completed_by_the_next_sync_and_is_not_taken_for_the_slaves_data(pair):
    """The master died (or the link broke) in the middle of a sync: the slave got a .txt without its sound."""
    pair.tree["plugins"]["replication"] = []
    pair.pin()
    pair.plugin().init(PEER)
    engine = pair.engine("master")
    leave(pair.master, "INBOX", 0, "a", 100)
    engine.sync_files()
    leave(pair.master, "INBOX", 1, "b", 200)
    write(pair.slave / BOX / "INBOX/msg0001.txt", (pair.master / BOX / "INBOX/msg0001.txt").read_bytes())
    # The copy-back (after a failover on that state) finds nothing of the slave's to bring and says so.
    result = engine.copy_back()
    assert result.outcome == "ok", result.warnings
    assert shown(pair.master) == ["a", "b"]
    engine.sync_files()
    assert last_sync(engine).figures["voicemail"] == "mirrored"
    assert spool(pair.slave) == spool(pair.master)
