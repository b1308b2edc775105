"""The automatic copy-back driven by ``wazo-ha follow`` alone: a real failover and failback on the namespace rig
with no schedule running on the master; the copy-back is done within seconds of the failback, the follower's
replication keeps the slave fresh while it runs, and with the schedule's fallback beside it one copy-back runs.

Real parts: PostgreSQL with Wazo's schema on both nodes, sshd + rsync, ``wazo-ha watch`` on the slave,
``wazo-ha follow`` on the master. Stand-ins: sipp for Asterisk (answers OPTIONS); voicemail files written as
app_voicemail writes them. Figures (printed): seconds from the slave giving back to the copy-back done, and an
edit's way to the slave with and without a copy-back running.
"""

from __future__ import annotations

import time

from tests.copyback_e2e.test_copy_back_e2e import serve_on_the_slave
from tests.rig.copyback import CheckDriver, leave_message, messages
from wazo_ha_rig.waiting import wait_for

#: From the slave giving back to the copy-back done, by the follower alone (a check every 2 s, then the run).
FOLLOW_DEADLINE = 30.0
#: An edit on the master visible on the slave (the follow mode's target), also while a copy-back runs.
FRESHNESS = 10.0
BIG = 8 * 1024 * 1024  # a long message: about 4 s to pull at the rig's bandwidth limit


def assert_master_holds(rig, tags: list[str], slave_held: dict) -> None:
    """Every message the slave held when it gave back is on the master (same mailbox and folder, same files),
    numbers contiguous per folder, every row once. The slave's spool itself is not compared: once the copy-back
    is done the follower's sync mirrors the master's spool there (docs/voicemail.rst), as it should."""
    master = messages(rig.spool(rig.master))
    for msg_id, entry in slave_held.items():
        assert msg_id in master, f"message {msg_id} ({entry['where']}) not on the master"
        copied = master[msg_id]
        assert {k: v for k, v in copied.items() if k != "where"} == {k: v for k, v in entry.items() if k != "where"}
        assert copied["where"].rsplit("/", 1)[0] == entry["where"].rsplit("/", 1)[0]
    for folder in {entry["where"].rsplit("/", 1)[0] for entry in master.values()}:
        numbers = sorted(int(e["where"][-4:]) for e in master.values() if e["where"].startswith(folder + "/"))
        assert numbers == list(range(len(numbers))), f"{folder}: {numbers}"
    for tag in tags:
        on_slave, on_master = rig.rows(rig.slave, tag), rig.rows(rig.master, tag)
        assert on_master == on_slave, f"rows {tag}: {len(on_master)} on the master, {len(on_slave)} on the slave"


def copy_backs(rig) -> list:
    return rig.master_store.events(kind="copy-back", limit=500)[::-1]


def edit_reaches_the_slave(rig, name: str) -> float:
    """Rename a user on the master (as wazo-confd writes it); seconds until the slave shows it."""
    user_id = rig.master.sql("SELECT min(id) FROM userfeatures").strip()
    query = f"SELECT firstname FROM userfeatures WHERE id = {user_id}"
    rig.master.sql(f"UPDATE userfeatures SET firstname = '{name}' WHERE id = {user_id}")
    began = time.monotonic()
    wait_for(lambda: rig.slave.sql(query).strip() == name, FRESHNESS, f"the edit {name} on the slave")
    return time.monotonic() - began


def done(rig) -> bool:
    state = rig.owed()
    return not state.owed and state.last_outcome == "ok"


def test_follow_alone_copies_back_within_seconds_of_the_failback(rig):
    rig.start_follow()
    before = len(copy_backs(rig))
    idle_edit = edit_reaches_the_slave(rig, "FollowIdle")

    serve_on_the_slave(rig, "follow", 12, (400, 300))  # waits for the follower's check to find it owed
    leave_message(rig.spool(rig.slave), "1004", "INBOX", "follow-long", size=BIG)
    slave_held = messages(rig.spool(rig.slave))
    assert len(copy_backs(rig)) == before, "a copy-back ran while the slave served"

    rig.bring_master_back()  # returns once the slave no longer answers SIP
    gave_back = time.monotonic()
    wait_for(lambda: rig.owed().running_since is not None or done(rig), FOLLOW_DEADLINE, "the copy-back starting")
    started = time.monotonic() - gave_back
    busy_edit = edit_reaches_the_slave(rig, "FollowBusy")
    still_running = rig.owed().running_since is not None
    wait_for(lambda: done(rig), FOLLOW_DEADLINE, "the copy-back done by the follower")
    finished = time.monotonic() - gave_back
    print(
        f"\n[copy-back/follow] started {started:.1f} s and done {finished:.1f} s after the slave gave back; "
        f"an edit reached the slave in {idle_edit:.1f} s idle, {busy_edit:.1f} s during the copy-back "
        f"(copy-back still running when it arrived: {still_running})"
    )
    assert still_running, "the copy-back ended before the edit arrived: the edit did not overlap it"

    assert_master_holds(rig, ["follow"], slave_held)
    new = copy_backs(rig)[before:]
    assert [event.outcome for event in new] == ["ok"], [(e.outcome, e.message) for e in new]
    assert new[0].figures["automatic"] is True and new[0].figures["messages"] >= 13
    # Logged when the check returns, after the replication that follows an `ok` copy-back (it carries the
    # users' statuses back), so it may come a moment after the journal event.
    wait_for(lambda: "follow: copy-back attempt ok" in rig.follow_text(), 30, "the follower logging the attempt")


def test_with_the_schedule_beside_follow_one_copy_back_runs_and_no_check_fails(rig):
    if rig.follower is None:
        rig.start_follow()
    checks = CheckDriver(rig)  # the schedule's fallback, every second instead of every minute
    checks.start()
    try:
        serve_on_the_slave(rig, "both", 6, (200, 100))
        slave_held = messages(rig.spool(rig.slave))
        before = len(copy_backs(rig))
        rig.bring_master_back()
        gave_back = time.monotonic()
        wait_for(lambda: done(rig), FOLLOW_DEADLINE, "the copy-back done")
        finished = time.monotonic() - gave_back
        seen = len(checks.exit_codes)
        wait_for(lambda: len(checks.exit_codes) >= seen + 3, 30, "three more scheduled checks")
    finally:
        checks.stop()
    new = copy_backs(rig)[before:]
    print(f"\n[copy-back/both] done {finished:.1f} s after the failback; {len(checks.exit_codes)} scheduled checks")
    assert [event.outcome for event in new] == ["ok"], [(e.outcome, e.message) for e in new]
    assert checks.exit_codes and set(checks.exit_codes) == {0}, checks.exit_codes
    assert_master_holds(rig, ["follow", "both"], slave_held)
