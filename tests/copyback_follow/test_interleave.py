"""A copy-back and a file sync never interleave: two real ``wazo-ha`` processes on the master, real rsync to the
slave's real sshd (limited to a few MB/s so that each run lasts seconds and the other lands inside it).

The proof is the master's journal: each run's event starts and ends while it holds its lock (a copy-back's
event starts once it holds its locks, the wait in ``figures.lock_waited``), so the two events' intervals must
be disjoint; on the code before the shared lock, the copy-back ran during the sync and they overlapped. No
follower and no schedule run here: only the processes the test starts touch the locks.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.rig.copyback import leave_message
from wazo_ha_rig import demo_nodes as nodes
from wazo_ha_rig.waiting import wait_for

BIG = 8 * 1024 * 1024  # about 4 s at the rig's bandwidth limit


@pytest.fixture
def master(rig):
    rig.stop_follow()
    return rig


def run(rig, *args: str, wait: bool = True):
    command = rig.master.wazo_ha_command(*args)
    if not wait:
        return rig.master.host.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    process = rig.master.host.popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = process.communicate(timeout=180)
    return process.returncode, out, err


def last_event(rig, kind: str):
    return rig.master_store.events(kind=kind, limit=1)[0]


def overlap(first, second) -> bool:
    return first.started_at < second.ended_at and second.started_at < first.ended_at


def test_a_copy_back_started_during_a_sync_waits_for_it(master):
    rig = master
    synced = rig.master.root / nodes.SYNCED_DIRECTORY.lstrip("/") / "interleave-big.bin"
    synced.write_bytes(os.urandom(BIG))  # new content: the sync must move it all
    sync = run(rig, "sync", wait=False)
    wait_for(lambda: rig.lock_holder("file-sync.lock") == f"{sync.pid} file sync", 30, "the sync holding its lock")

    code, _, err = run(rig, "copy-back", "--wait", "0")
    assert code == 1 and "copy-back: a file sync is running" in err, err
    assert f"PID {sync.pid})" in err

    copy_back = run(rig, "copy-back", "--json", wait=False)
    _, err = copy_back.communicate(timeout=180)
    assert copy_back.returncode == 0, err
    assert "waiting up to 120 s" in err and "a file sync is running" in err
    assert sync.wait(60) == 0
    synced_event, copied_event = last_event(rig, "sync"), last_event(rig, "copy-back")
    assert synced_event.outcome == "ok" and copied_event.outcome == "ok"
    assert not overlap(synced_event, copied_event), (
        f"sync {synced_event.started_at}..{synced_event.ended_at} and "
        f"copy-back {copied_event.started_at}..{copied_event.ended_at} interleaved"
    )
    assert copied_event.figures["lock_waited"] > 0
    print(f"\n[interleave] copy-back waited {copied_event.figures['lock_waited']:.1f} s for the sync")


def test_a_sync_started_during_a_copy_back_waits_for_it(master):
    rig = master
    # A large message on the slave: the copy-back pulls it (bandwidth-limited) and merges it here.
    leave_message(rig.spool(rig.slave), "1003", "INBOX", "interleave-big", size=BIG)
    copy_back = run(rig, "copy-back", wait=False)
    wait_for(
        lambda: rig.lock_holder("file-sync.lock") == f"{copy_back.pid} copy-back",
        30,
        "the copy-back holding the file sync's lock",
    )

    code, _, err = run(rig, "sync", "--wait", "0")
    assert code == 1 and "file sync: a copy-back is running" in err, err

    sync = run(rig, "sync", wait=False)
    _, err = sync.communicate(timeout=180)
    assert sync.returncode == 0, err
    assert "waiting up to 120 s" in err and "a copy-back is running" in err
    assert copy_back.wait(60) == 0, copy_back.stderr.read()
    copied_event, synced_event = last_event(rig, "copy-back"), last_event(rig, "sync")
    assert copied_event.outcome == "ok" and copied_event.figures["messages"] >= 1
    assert not overlap(synced_event, copied_event), (
        f"copy-back {copied_event.started_at}..{copied_event.ended_at} and "
        f"sync {synced_event.started_at}..{synced_event.ended_at} interleaved"
    )
