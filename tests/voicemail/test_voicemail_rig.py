"""Voicemail both ways around a failover, on the namespace rig (real sshd, rsync, monit, watch, follow).

app_voicemail itself cannot run here: the spool is written the way it writes it (sound files, then
``msgNNNN.txt``; after a deletion the folder renumbered from msg0000; a greeting is one file per
format in the mailbox directory).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

from tests.rig.copyback import delete_and_renumber
from tests.unit.test_voicemail_merge import metadata
from wazo_ha_rig.waiting import wait_for

BOX = "default/1001"
OTHER = "default/1002"


def leave(spool: Path, box: str, folder: str, number: int, key: str, origtime: int) -> None:
    """A caller leaves a message: the sound file first, the .txt last (it makes the message visible)."""
    directory = spool / box / folder
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"msg{number:04d}.wav").write_bytes(f"RIFF sound of {key} ".encode() * 50)
    (directory / f"msg{number:04d}.txt").write_text(metadata(origtime, msg_id=f"{origtime}-{key}"))


def keys(spool: Path, box: str = BOX, folder: str = "INBOX") -> list[str]:
    files = sorted((spool / box / folder).glob("msg*.txt"))
    assert [f.stem for f in files] == [f"msg{n:04d}" for n in range(len(files))], f"{folder} not contiguous"
    return [next(x for x in f.read_text().splitlines() if x.startswith("msg_id=")).split("-", 1)[1] for f in files]


def tree(spool: Path) -> dict[str, str]:
    return {
        str(p.relative_to(spool)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(spool.rglob("*"))
        if p.is_file()
    }


def test_voicemail_both_ways_around_a_failover(rig):
    master, slave = rig.master_spool, rig.slave_spool
    leave(master, BOX, "INBOX", 0, "a", 100)
    leave(master, BOX, "INBOX", 1, "b", 200)
    leave(master, BOX, "Old", 0, "old", 50)
    (master / BOX / "unavail.wav").write_bytes(b"greeting v1 " * 100)
    leave(master, OTHER, "INBOX", 0, "x", 300)
    rig.master_wazo_ha("sync")
    assert tree(slave) == tree(master)

    # 1. A message left on the master reaches the slave within seconds (follow mode).
    rig.start_follow()
    wait_for(lambda: "follow" in rig.follow_log(), 15, "wazo-ha follow started")
    delays = []
    for index, key in enumerate(("c", "d")):
        left = time.monotonic()
        leave(master, BOX, "INBOX", 2 + index, key, 400 + index)
        copy = slave / BOX / "INBOX" / f"msg{2 + index:04d}.txt"
        wait_for(
            lambda c=copy, m=master / BOX / "INBOX" / f"msg{2 + index:04d}.txt": (
                c.exists() and c.read_bytes() == m.read_bytes()
            ),
            30,
            f"message {key} on the slave",
        )
        delays.append(time.monotonic() - left)
    syncs = [e for e in rig.master_events("sync") if e.figures.get("voicemail") == "mirrored"][:2]
    took = ", ".join(f"{(e.ended_at - e.started_at).total_seconds():.2f}" for e in syncs)
    shown_delays = ", ".join(f"{d:.2f}" for d in delays)
    print(
        f"\nFIGURE voicemail master->slave: message on the slave {shown_delays} s after it was left on the "
        f"master (follow mode); the sync runs took {took} s"
    )
    wait_for(lambda: tree(slave) == tree(master), 30, "the slave's spool a mirror of the master's")
    master_before = tree(master)

    # 2. Failover: Asterisk dies on the master; the slave takes over.
    rig.kill_master_sip()
    wait_for(rig.standin_running, 60, "the slave serving")

    # 3. While the slave serves: a caller leaves "s", the owner deletes "a" and records a new greeting;
    #    bad input lands in the other mailbox (a malformed .txt, a sound without metadata, a gap).
    leave(slave, BOX, "INBOX", 4, "s", 500)
    delete_and_renumber(slave, BOX, "INBOX", 0)
    (slave / BOX / "unavail.wav").write_bytes(b"greeting v2 " * 90)
    leave(slave, OTHER, "INBOX", 2, "gap", 600)  # msg0001 missing: a folder with a gap
    (slave / OTHER / "INBOX" / "msg0003.txt").write_text("not an app_voicemail metadata file\n")
    (slave / OTHER / "INBOX" / "msg0003.wav").write_bytes(b"RIFF")
    (slave / OTHER / "INBOX" / "msg0004.wav").write_bytes(b"RIFF no metadata")
    slave_during = tree(slave)

    # 4. The master, still up, syncs (a file changed there): the spool is held, nothing erased on the slave.
    done = rig.master_wazo_ha("sync", "--json", check=False)
    assert "run `wazo-ha copy-back` first" in done.stdout + done.stderr
    assert tree(slave) == slave_during
    assert tree(master) == master_before
    assert "voicemail       held: the slave holds" in rig.master_wazo_ha("status").stdout

    # 5. Failback: the master's Asterisk is back, the slave gives back.
    rig.stop_follow()
    rig.start_master_sip()
    wait_for(lambda: not rig.standin_running(), 90, "the slave giving back")

    # 6. Copy-back: partial while the slave holds what it cannot read; messages, deletion, greeting merged.
    done = rig.master_wazo_ha("copy-back", "--json", check=False)
    report = json.loads(done.stdout)
    assert report["outcome"] == "partial", report
    warnings = "\n".join(report["warnings"])
    assert "default/1002/INBOX/msg0003.txt" in warnings and "msg0004: sound file(s) without metadata" in warnings
    assert keys(master) == ["b", "c", "d", "s"]
    assert keys(master, folder="Old") == ["old"]
    assert (master / BOX / "unavail.wav").read_bytes() == b"greeting v2 " * 90
    assert keys(master, OTHER) == ["x", "gap"]  # the slave's gap closed on the master
    assert tree(slave) == slave_during  # copy-back never writes on the slave
    changed = {p for p in set(tree(master)) | set(master_before) if tree(master).get(p) != master_before.get(p)}
    assert changed == {f"{BOX}/INBOX/msg{n:04d}.{e}" for n in range(4) for e in ("txt", "wav")} | {
        f"{BOX}/unavail.wav",
        f"{OTHER}/INBOX/msg0001.txt",
        f"{OTHER}/INBOX/msg0001.wav",
    }

    # 7. Held while the slave holds files nobody can read; the operator moves them aside, the copy-back
    #    completes, and the next sync mirrors the merged spool to the slave.
    done = rig.master_wazo_ha("sync", "--json", check=False)
    assert "not understood on the slave" in done.stdout + done.stderr
    aside = rig.directory / "set-aside"
    aside.mkdir()
    for name in ("msg0003.txt", "msg0003.wav", "msg0004.wav"):
        shutil.move(slave / OTHER / "INBOX" / name, aside / name)
    done = rig.master_wazo_ha("copy-back", "--json", check=False)
    assert json.loads(done.stdout)["outcome"] == "ok", done.stdout
    done = rig.master_wazo_ha("sync", "--json")
    assert tree(slave) == tree(master), done.stdout
    assert keys(slave) == ["b", "c", "d", "s"] and keys(slave, OTHER) == ["x", "gap"]
