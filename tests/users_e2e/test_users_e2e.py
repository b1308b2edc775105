"""Users see the same PBX during a failover (issue 18), end to end on a namespace rig.

Real parts: PostgreSQL with Wazo's schema on both nodes, sshd + rsync, ``wazo-ha follow`` on the master (it
mirrors the voicemail spool and replicates, carrying users' statuses back), ``wazo-ha watch`` on the slave,
``wazo-ha copy-back --auto`` on the master every second (its schedule), nftables cuts in the namespaces.
Stand-ins: sipp for Asterisk (answers OPTIONS); the spool written as app_voicemail writes it (sound files,
then ``msgNNNN.txt``; a deletion renumbers the folder from msg0000); users' statuses written by SQL as
wazo-confd / wazo-calld write them. Bad input in the spool is covered by ``tests/voicemail``.
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path

import pytest

from tests.rig.copyback import delete_and_renumber, leave_message, messages
from wazo_ha_rig.waiting import DeadlineExceeded, wait_for

INBOX_1001, INBOX_1002 = "default/1001/INBOX", "default/1002/INBOX"
GREETING = ("default/1001/unavail.wav", "default/1001/unavail.gsm")


def contents(spool: Path) -> dict[str, str]:
    """Every file of the spool and its digest: the whole tree, compared whole."""
    return {
        str(p.relative_to(spool)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(spool.rglob("*"))
        if p.is_file()
    }


def keys_in(spool: Path, folder: str) -> list[str]:
    """The messages of ``folder`` in number order (their key), checking what app_voicemail needs: numbers
    msg0000..N-1 without a gap, each with its ``.txt`` and the same formats as every other message."""
    directory = spool / folder
    stems = sorted({p.stem for p in directory.glob("msg*")}) if directory.is_dir() else []
    assert stems == [f"msg{n:04d}" for n in range(len(stems))], f"{folder}: numbers {stems}"
    found = []
    for stem in stems:
        suffixes = sorted(p.suffix for p in directory.glob(stem + ".*"))
        assert suffixes == [".gsm", ".txt", ".wav"], f"{folder}/{stem}: files {suffixes}"
        text = (directory / f"{stem}.txt").read_text()
        found.append(next(x for x in text.splitlines() if x.startswith("msg_id=")).split("-", 1)[1])
    return found


def record_greeting(spool: Path, version: str) -> None:
    for relative in GREETING:
        path = spool / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"{path.suffix} greeting {version} ".encode() * 300)


def mirrored(rig) -> bool:
    return contents(rig.spool(rig.slave)) == contents(rig.spool(rig.master))


def wait_statuses(rig, expected: list[dict], timeout: float = 60) -> None:
    """Both nodes' whole ``userfeatures`` equal to ``expected``; on timeout, the cells that differ."""
    try:
        wait_for(
            lambda: rig.userfeatures(rig.master) == expected and rig.userfeatures(rig.slave) == expected,
            timeout,
            "the users' statuses merged on both nodes",
        )
    except DeadlineExceeded as exc:
        master, slave = explain_table(rig, rig.master, expected), explain_table(rig, rig.slave, expected)
        raise AssertionError(f"{exc}; master: {master}; slave: {slave}") from None


def expected_table(before: list[dict], changes: dict[int, dict]) -> list[dict]:
    return [{**row, **changes.get(row["id"], {})} for row in before]


def wait_copied_back(rig) -> float:
    began = time.monotonic()
    wait_for(lambda: rig.owed().owed, 60, "the master's check finding a copy-back owed")
    wait_for(lambda: not rig.owed().owed and rig.owed().last_outcome == "ok", 120, "the automatic copy-back done")
    return time.monotonic() - began


def replications(rig) -> list:
    return rig.master_store.events(kind="replication", limit=500)


def carried_back(rig, before: int) -> tuple[int, int, list[str]]:
    """Statuses carried slave -> master and conflicts, as the master's journal counts them, since ``before``."""
    events = replications(rig)
    new = events[: len(events) - before]
    shown = [f"{e.started_at:%H:%M:%S} {e.outcome}: {e.message}" for e in new[::-1]]
    return (
        sum(e.figures.get("statuses_to_master", 0) for e in new),
        sum(e.figures.get("status_conflicts", 0) for e in new),
        shown,
    )


def explain_table(rig, node, expected: list[dict]) -> str:
    actual = {row["id"]: row for row in rig.userfeatures(node)}
    wrong = []
    for row in expected:
        got = actual.get(row["id"], {})
        wrong += [f"user {row['id']} {k}: {got.get(k)!r}, expected {v!r}" for k, v in row.items() if got.get(k) != v]
    return "; ".join(wrong[:10]) or "(same)"


def test_the_issue_scenario_voicemail_greeting_dnd_and_forwards_around_a_failover(rig):
    master_spool, slave_spool = rig.spool(rig.master), rig.spool(rig.slave)
    users = [row["id"] for row in rig.userfeatures(rig.master)][:3]
    u1, u2, u3 = users

    # Before: the master's mailboxes and greeting, mirrored by follow mode; a message left a moment before the
    # failure is on the slave within seconds.
    leave_message(master_spool, "1001", "INBOX", "old")
    leave_message(master_spool, "1001", "INBOX", "kept")
    leave_message(master_spool, "1002", "INBOX", "other")
    record_greeting(master_spool, "v1")
    wait_for(lambda: mirrored(rig), 60, "the master's spool mirrored to the slave")
    left = time.monotonic()
    leave_message(master_spool, "1001", "INBOX", "fresh")
    wait_for(lambda: mirrored(rig), 60, "the fresh message on the slave")
    to_slave = time.monotonic() - left
    before = rig.userfeatures(rig.master)
    wait_for(lambda: rig.userfeatures(rig.slave) == before, 60, "the users' table the same on both")

    # The master fails (its cable); the slave answers.
    journaled = len(replications(rig))
    cut = time.monotonic()
    rig.fail_master()
    failover = time.monotonic() - cut

    # While the slave serves: a caller leaves a message, the owner deletes an old one and records a new
    # greeting, turns DND on and sets a forward; user 3 changes a forward on both nodes (the master's later).
    leave_message(slave_spool, "1001", "INBOX", "left-on-slave")
    delete_and_renumber(slave_spool, "default/1001", "INBOX", 0)
    record_greeting(slave_spool, "v2")
    rig.set_statuses(rig.slave, u1, enablednd=1, enableunc=1, destunc="0612345678")
    rig.set_statuses(rig.slave, u3, enablerna=1, destrna="7002")
    rig.set_statuses(rig.master, u2, enablebusy=1, destbusy="5555")  # the master's own, nothing on the slave
    rig.set_statuses(rig.master, u3, enablerna=1, destrna="7001")
    expected_spool = contents(slave_spool)  # the master made no voicemail change: the slave's spool is the result
    expected = expected_table(
        before,
        {
            u1: {"enablednd": 1, "enableunc": 1, "destunc": "0612345678"},
            u2: {"enablebusy": 1, "destbusy": "5555"},
            u3: {"enablerna": 1, "destrna": "7002"},  # both changed it: the slave's (docs/user_statuses.rst)
        },
    )

    # The master returns; the slave gives back; the copy-back and follow mode's replication run by themselves.
    back = time.monotonic()
    rig.bring_master_back()
    copy_back = wait_copied_back(rig)
    wait_statuses(rig, expected)
    wait_for(lambda: mirrored(rig), 60, "the merged spool mirrored back to the slave")
    print(
        f"\nFIGURE users-e2e: message left on the master -> on the slave {to_slave:.2f} s (follow mode); "
        f"failover {failover:.2f} s (cable cut -> slave answers SIP); copy-back done {copy_back:.1f} s after "
        f"the failback began, whole scenario back in sync {time.monotonic() - back:.1f} s after the master returned"
    )

    assert keys_in(master_spool, INBOX_1001) == ["kept", "fresh", "left-on-slave"]
    assert keys_in(master_spool, INBOX_1002) == ["other"]
    assert (master_spool / GREETING[0]).read_bytes() == b".wav greeting v2 " * 300
    assert contents(master_spool) == expected_spool, "the master's spool is not exactly the expected one"
    assert rig.userfeatures(rig.master) == expected, explain_table(rig, rig.master, expected)
    to_master, conflicts, shown = carried_back(rig, journaled)
    print("[users-e2e] replications since the failover:\n  " + "\n  ".join(shown))
    assert (to_master, conflicts) == (3, 1), shown  # u1's DND and forward, u3's forward (both sides changed it)
    events = rig.master_store.events(kind="copy-back", limit=5)
    assert events[0].outcome == "ok" and events[0].figures["automatic"] is True


@pytest.mark.parametrize("interruption", ["cut", "sigkill"])
def test_a_failure_in_the_middle_of_a_mirror_then_failover_and_failback(rig, interruption):
    """``cut``: the master loses the slave and the phone (nftables) in the middle of a mirror. ``sigkill``:
    follow mode and its rsync are SIGKILLed in the middle of a mirror (as systemd kills a unit's cgroup),
    then the master is cut off; follow mode is started again while the slave serves."""
    master_spool, slave_spool = rig.spool(rig.master), rig.spool(rig.slave)
    chance = random.Random(seed := random.randrange(1 << 30))
    wait_for(lambda: mirrored(rig), 60, "the spools mirrored before the scenario")
    users = [row["id"] for row in rig.userfeatures(rig.master)]
    index = ["cut", "sigkill"].index(interruption)
    u1, on_master, on_slave_user = users[0], users[3 + 2 * index], users[4 + 2 * index]
    before = rig.userfeatures(rig.master)
    wait_for(lambda: rig.userfeatures(rig.slave) == before, 60, "the users' table the same on both")
    mailbox_before = keys_in(slave_spool, INBOX_1002)
    assert mailbox_before == keys_in(master_spool, INBOX_1002)

    # A status changed on the master reaches the slave within seconds (follow mode); from here on the master
    # changes none, so only the failback carries the slave's statuses back.
    changed = time.monotonic()
    rig.set_statuses(rig.master, on_master, enablednd=1)
    wait_for(lambda: rig.userfeatures(rig.slave)[3 + 2 * index]["enablednd"] == 1, 30, "the master's DND on the slave")
    print(f"\nFIGURE users-e2e: status changed on the master -> on the slave {time.monotonic() - changed:.2f} s")
    journaled = len(replications(rig))

    # A batch of long messages on the master: follow mode starts mirroring it (rsync slowed to 4 MiB/s); the
    # interruption lands at a random moment of the transfer.
    old = set(contents(master_spool))
    batch = [leave_message(master_spool, "1002", "INBOX", f"{interruption}-{i}", size=2_000_000) for i in range(8)]
    batch_files = {p: d for p, d in contents(master_spool).items() if p not in old}
    wait_for(lambda: any((slave_spool / INBOX_1002).glob(".msg*")), 30, "the mirror moving the batch")
    delay = chance.uniform(0.0, 2.0)
    time.sleep(delay)  # fault injection: where the interruption lands, not synchronisation
    failed_syncs = rig.follow_log().count("follow: file sync failed")
    if interruption == "sigkill":
        rig.kill_follow()
    rig.cut_master()
    on_slave = contents(slave_spool)
    whole = sorted(p for p, d in batch_files.items() if on_slave.get(p) == d)
    print(
        f"\n[users-e2e] seed {seed}: {interruption} {delay:.2f} s into the mirror; "
        f"{len(whole)}/{len(batch_files)} files there"
    )
    assert len(whole) < len(batch_files), f"the {interruption} did not land during the mirror"
    wait_for(rig.slave_answers, 20, "the slave answering SIP (failover)")

    # While the slave serves: a caller leaves a message in the same mailbox, its owner deletes the oldest
    # message (mirrored before), user 1 flips DND, another user turns call filtering on.
    leave_message(slave_spool, "1002", "INBOX", f"left-during-{interruption}")
    delete_and_renumber(slave_spool, "default/1002", "INBOX", 0)
    dnd = 1 - before[0]["enablednd"]
    rig.set_statuses(rig.slave, u1, enablednd=dnd)
    rig.set_statuses(rig.slave, on_slave_user, incallfilter=1)
    expected = expected_table(
        before, {u1: {"enablednd": dnd}, on_master: {"enablednd": 1}, on_slave_user: {"incallfilter": 1}}
    )

    if interruption == "sigkill":
        rig.start_follow()  # systemd's Restart=: its syncs fail until the link is back
    else:
        # The interrupted mirror ends (rsync's I/O timeout) before the cable is back: a cut shorter than that
        # timeout pauses the transfer instead, which then resumes onto the serving slave (docs/voicemail.rst).
        wait_for(
            lambda: rig.follow_log().count("follow: file sync failed") > failed_syncs, 60, "the cut-off mirror failing"
        )
    rig.heal_master()
    wait_for(lambda: not rig.slave_answers(), rig.stability + 40, "the slave giving back (failback)")
    wait_for(lambda: rig.phone.options(rig.master.address), 10, "the master answering SIP")
    wait_copied_back(rig)
    wait_statuses(rig, expected)
    wait_for(lambda: mirrored(rig), 90, "the merged spool mirrored back to the slave")

    # Nothing lost, nothing doubled (messages() fails on a msg_id shown twice), the deleted message not
    # resurrected, numbering valid on both nodes, the batch byte for byte.
    deleted = mailbox_before[0]
    for spool in (master_spool, slave_spool):
        assert keys_in(spool, INBOX_1002) == [*mailbox_before[1:], *batch, f"left-during-{interruption}"]
        assert not any(entry.endswith(f"-{deleted}") for entry in messages(spool)), f"{deleted} resurrected"
        assert keys_in(spool, INBOX_1001) == ["kept", "fresh", "left-on-slave"]
    now = contents(master_spool)
    for path, digest in batch_files.items():  # the oldest message deleted: each batch message one number down
        shifted = f"{INBOX_1002}/msg{int(path[-8:-4]) - 1:04d}{Path(path).suffix}"
        assert now[shifted] == digest, f"{shifted} is not the master's {Path(path).name} byte for byte"
    assert rig.userfeatures(rig.master) == expected, explain_table(rig, rig.master, expected)
    to_master, conflicts, shown = carried_back(rig, journaled)
    print(f"[users-e2e] replications since the {interruption}:\n  " + "\n  ".join(shown))
    assert (to_master, conflicts) == (2, 0), shown  # user 1's DND, the other's call filtering
