"""Nothing lost on failback, automatically: a real failover and failback on the namespace rig, then the
master's scheduled check copies back what the slave recorded — voicemail with clashing numbers, CEL and
queue_log rows — exactly once; also when the copy-back is SIGKILLed or its link cut at a random point.

Real parts: PostgreSQL with Wazo's schema on both nodes, sshd + rsync (the forced command's read-only sender),
``wazo-ha watch`` on the slave, ``wazo-ha copy-back --auto`` on the master (its schedule, every second here).
Stand-ins: sipp for Asterisk (answers OPTIONS); voicemail files written as app_voicemail writes them.
"""

from __future__ import annotations

import random
import time

from tests.rig.copyback import history_rows_sql, leave_message, messages, tree_digest
from wazo_ha_rig.waiting import wait_for

COPY_BACK_DEADLINE = 120.0


def serve_on_the_slave(rig, tag: str, count: int, rows: tuple[int, int]) -> None:
    """The master is cut off; while the slave serves, callers leave messages and calls write history rows."""
    rig.fail_master()
    spool = rig.spool(rig.slave)
    for index in range(count):
        mailbox, folder = ("1001", "INBOX") if index % 3 else ("1002", "Old")
        leave_message(spool, mailbox, folder, f"{tag}-{index}")
    rig.slave.sql(history_rows_sql(tag, *rows))
    wait_for(lambda: rig.owed().owed, 20, "the master's check finding the copy-back owed")


def wait_copied(rig, deadline: float = COPY_BACK_DEADLINE) -> None:
    wait_for(lambda: not rig.owed().owed and rig.owed().last_outcome == "ok", deadline, "the automatic copy-back done")


def assert_master_holds_everything(rig, tags: list[str], slave_before: dict) -> None:
    master, slave = messages(rig.spool(rig.master)), messages(rig.spool(rig.slave))
    for msg_id, entry in slave.items():
        assert msg_id in master, f"message {msg_id} ({entry['where']}) not on the master"
        copied = master[msg_id]
        assert {k: v for k, v in copied.items() if k != "where"} == {k: v for k, v in entry.items() if k != "where"}
        assert copied["where"].rsplit("/", 1)[0] == entry["where"].rsplit("/", 1)[0]  # same mailbox and folder
    # Numbers stay contiguous in every folder (app_voicemail resequences gaps): msg0000..N-1, one .txt each.
    for folder in {entry["where"].rsplit("/", 1)[0] for entry in master.values()}:
        numbers = sorted(int(e["where"][-4:]) for e in master.values() if e["where"].startswith(folder + "/"))
        assert numbers == list(range(len(numbers))), f"{folder}: {numbers}"
    for tag in tags:
        on_slave, on_master = rig.rows(rig.slave, tag), rig.rows(rig.master, tag)
        assert on_master == on_slave, f"rows {tag}: {len(on_master)} on the master, {len(on_slave)} on the slave"
    assert tree_digest(rig.spool(rig.slave)) == slave_before, "the slave's spool changed"


def assert_never_ran_while_the_slave_served(rig, before: int) -> None:
    """No copy-back attempt of this scenario began while the slave served: between one of its failovers and the
    failback that ended it (as the slave journaled them; both nodes share this machine's clock)."""
    switches = sorted(rig.slave_events("failover") + rig.slave_events("failback"), key=lambda e: e.started_at)
    serving, since = [], None
    for event in switches:
        if event.outcome != "ok":
            continue
        if event.kind == "failover":
            since = event.started_at
        elif since is not None:
            serving.append((since, event.started_at))
            since = None
    events = rig.master_store.events(kind="copy-back", limit=200)
    for event in events[: len(events) - before]:
        for took_over, gave_back in serving:
            assert not took_over <= event.started_at < gave_back, (
                f"a copy-back began at {event.started_at} while the slave served ({took_over} to {gave_back})"
            )
        assert since is None or event.started_at < since, f"a copy-back began at {event.started_at}: slave serving"


def test_after_a_failover_the_master_gets_everything_back_by_itself(rig):
    master_own = [leave_message(rig.spool(rig.master), "1001", "INBOX", f"master-{i}") for i in range(2)]
    serve_on_the_slave(rig, "first", 12, (400, 300))
    slave_before = tree_digest(rig.spool(rig.slave))
    rows_before = rig.rows(rig.slave, "first")
    assert not rig.owed().last_outcome, "a copy-back ran while the slave served"

    rig.bring_master_back()
    began = time.monotonic()
    wait_copied(rig)
    print(f"\n[copy-back] done {time.monotonic() - began:.1f} s after the slave gave back")

    assert_master_holds_everything(rig, ["first"], slave_before)
    assert_never_ran_while_the_slave_served(rig, 0)
    assert rig.rows(rig.slave, "first") == rows_before
    master = messages(rig.spool(rig.master))
    for index, key in enumerate(master_own):  # the master's own messages keep their numbers
        entry = next(e for msg_id, e in master.items() if msg_id.endswith(f"-{key}"))
        assert entry["where"] == f"default/1001/INBOX/msg{index:04d}"
    renumbered = [e for msg_id, e in master.items() if "-first-" in msg_id and e["where"].startswith("default/1001")]
    assert min(int(e["where"][-4:]) for e in renumbered) == 2  # the slave's msg0000, msg0001 moved past the master's
    events = rig.master_store.events(kind="copy-back", limit=10)
    assert [e.outcome for e in events] == ["ok"] and events[0].figures["automatic"] is True
    assert events[0].figures["messages_renumbered"] >= 2
    assert rig.master_store.events(kind="copy-back-owed", limit=10)


def attempts_since(rig, before: int) -> list[str]:
    events = rig.master_store.events(kind="copy-back", limit=200)
    return [e.outcome + (" (interrupted)" if "interrupted" in e.message else "") for e in events[::-1][before:]]


def test_a_copy_back_sigkilled_at_a_random_point_completes_on_retry_exactly_once(rig):
    chance = random.Random(seed := random.randrange(1 << 30))
    serve_on_the_slave(rig, "second", 60, (30_000, 10_000))
    slave_before = tree_digest(rig.spool(rig.slave))
    before = len(rig.master_store.events(kind="copy-back", limit=200))

    rig.bring_master_back()
    wait_for(lambda: rig.owed().running_since is not None, 60, "the first automatic attempt running")
    delay = chance.uniform(0.05, 1.0)
    time.sleep(delay)  # fault injection: where the kill lands, not synchronisation
    rig.driver.kill_running_attempt()
    wait_copied(rig)

    outcomes = attempts_since(rig, before)
    print(f"\n[copy-back] seed {seed}: SIGKILL {delay:.2f} s into the attempt; attempts {outcomes}")
    assert outcomes[0] == "failed (interrupted)", "the kill did not land during the attempt"
    assert outcomes[-1] == "ok"
    assert_master_holds_everything(rig, ["first", "second"], slave_before)
    assert_never_ran_while_the_slave_served(rig, before)


def test_a_copy_back_cut_off_at_a_random_point_completes_on_retry_exactly_once(rig):
    chance = random.Random(seed := random.randrange(1 << 30))
    serve_on_the_slave(rig, "third", 60, (30_000, 10_000))
    slave_before = tree_digest(rig.spool(rig.slave))
    before = len(rig.master_store.events(kind="copy-back", limit=200))

    rig.bring_master_back()
    wait_for(lambda: rig.owed().running_since is not None, 60, "the first automatic attempt running")
    delay = chance.uniform(0.05, 1.0)
    time.sleep(delay)  # fault injection: where the cut lands, not synchronisation
    rig.network.link_down(rig.slave.host)  # the slave's cable; its watch sees no witness: it does not take over
    try:
        wait_for(lambda: rig.owed().running_since is None, 90, "the cut attempt ending (network timeouts)")
    finally:
        rig.network.link_up(rig.slave.host)
    wait_copied(rig)

    outcomes = attempts_since(rig, before)
    print(f"\n[copy-back] seed {seed}: slave cut {delay:.2f} s into the attempt; attempts {outcomes}")
    assert outcomes[0] in ("failed", "partial"), "the cut did not land during the attempt"
    assert outcomes[-1] == "ok"
    assert_master_holds_everything(rig, ["first", "second", "third"], slave_before)
    assert_never_ran_while_the_slave_served(rig, before)
    assert not rig.slave_answers(), "the slave took over during the cut"
