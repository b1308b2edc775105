"""From the slave giving back to the automatic copy-back done: ``wazo-ha follow`` against the schedule (cron).

On the copy-back follow rig (tests/rig/copyback_follow.py: two Wazo-like nodes with real PostgreSQL and Wazo's
schema, the slave's real sshd + rsync and ``wazo-ha watch``, a phone; subnet 10.203.27.0/24, tag f), each trial
cuts the master's link (the slave takes over), leaves ``--messages`` voicemail messages and ``--rows`` CEL and
queue_log rows on the slave, keeps it serving ``--serving`` seconds, plugs the link back, and measures from the
moment the phone sees the slave stop answering SIP to the moment the master's store says the copy-back is done:

* **follow**: ``wazo-ha follow`` on the master (``follow.copy_back_interval`` 2 s, the default), no schedule;
* **schedule** (the baseline, measured in the same run): no follower; ``wazo-ha copy-back --auto`` as whole
  processes at each wall-clock minute, as cron runs it with ``schedules.master_interval`` 1 (the default).

The failover lasts ``--serving`` seconds (default 65) in both modes: a schedule that checks once a minute sees a
shorter one only by luck (no check lands while the slave serves or is cut off, and nothing is owed afterwards);
``--short`` adds one schedule trial with a 15 s failover and reports whether the copy-back was ever owed.

    python -m bench.copy_back_follow [--trials 2] [--short]

Run as root (tox -e bench -- copy_back_follow); uses the subnet of tox env copyback-follow: not at the same time.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rig.copyback import history_rows_sql, leave_message
from tests.rig.copyback_follow import FollowCopyBackRig
from tests.rig.fixtures import SHARED_FIXTURES
from wazo_ha_rig import schema_fixture
from wazo_ha_rig.waiting import wait_for

DEADLINE = 200.0


class Cron:
    """``wazo-ha copy-back --auto`` at each wall-clock minute, one whole process each, as cron starts it."""

    def __init__(self, rig: FollowCopyBackRig):
        self.rig, self.stopping = rig, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.runs = 0

    def __enter__(self) -> Cron:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.thread.join(120)

    def _loop(self) -> None:
        master = self.rig.master
        while not self.stopping.wait(60 - time.time() % 60):  # cron's schedule: the next minute
            with open(self.rig.work / "master-cron.log", "ab") as log:
                master.host.popen(
                    master.wazo_ha_command("copy-back", "--auto", "--quiet"), stdout=log, stderr=log
                ).wait()
            self.runs += 1


def done(rig) -> bool:
    state = rig.owed()
    return not state.owed and state.last_outcome == "ok"


def trial(rig: FollowCopyBackRig, tag: str, messages: int, rows: int, serving: float) -> float:
    """One failover of ``serving`` seconds and its failback; seconds from the give-back to the copy-back done."""
    rig.fail_master()
    took_over = time.monotonic()
    for index in range(messages):
        leave_message(rig.spool(rig.slave), "1001", "INBOX", f"{tag}-{index}")
    rig.slave.sql(history_rows_sql(tag, rows, rows // 2))
    time.sleep(max(serving - (time.monotonic() - took_over), 0))  # the failover's length: a scenario, not a wait
    rig.bring_master_back()
    gave_back = time.monotonic()
    wait_for(lambda: done(rig), DEADLINE, f"the copy-back of {tag} done")
    return time.monotonic() - gave_back


def short_failover_missed(rig: FollowCopyBackRig) -> str:
    """One 15 s failover under the minute schedule: was a copy-back ever owed within two checks after it?"""
    owed_before = len(rig.master_store.events(kind="copy-back-owed", limit=500))
    with Cron(rig) as cron:
        runs = cron.runs
        rig.fail_master()
        leave_message(rig.spool(rig.slave), "1001", "INBOX", "short-0")
        time.sleep(15)  # the failover's length: a scenario, not a wait
        rig.bring_master_back()
        wait_for(lambda: cron.runs >= runs + 2, 200, "two scheduled checks after the failback")
    owed = len(rig.master_store.events(kind="copy-back-owed", limit=500)) > owed_before
    if not owed:
        return "never owed: the message stays on the slave"
    return "owed, copied back" if done(rig) else "owed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--serving", type=float, default=65.0)
    parser.add_argument("--short", action="store_true")
    args = parser.parse_args()
    results: dict[str, list[float]] = {"follow": [], "schedule": []}
    with FollowCopyBackRig(schema_fixture.find(SHARED_FIXTURES)) as rig:
        for number in range(args.trials):
            for mode in ("follow", "schedule") if number % 2 == 0 else ("schedule", "follow"):
                tag = f"{mode}{number}"
                if mode == "follow":
                    rig.start_follow()
                    try:
                        took = trial(rig, tag, args.messages, args.rows, args.serving)
                    finally:
                        rig.stop_follow()
                else:
                    with Cron(rig):
                        took = trial(rig, tag, args.messages, args.rows, args.serving)
                results[mode].append(took)
                print(f"trial {number + 1} {mode:<8}: copy-back done {took:6.1f} s after the give-back", flush=True)
        short = short_failover_missed(rig) if args.short else None
    follow, schedule = statistics.median(results["follow"]), statistics.median(results["schedule"])
    print(f"follow   median {follow:6.1f} s  max {max(results['follow']):6.1f} s")
    print(f"schedule median {schedule:6.1f} s  max {max(results['schedule']):6.1f} s  (cron every minute)")
    print(f"ratio follow / schedule (medians): {follow / schedule:.3f}")
    if short is not None:
        print(f"a 15 s failover under the minute schedule alone: {short}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
