"""The time phones have no server in a planned switchover, against a failover measured in the same run.

On the switchover rig (tests/rig/switchover.py: a wazo-ha master whose
telephony is sipp under monit, a wazo-ha slave watching it, a phone; subnet
10.203.15.0/24), each trial measures from the phone host:

* failover — the master's SIP stand-in is killed (Asterisk crashing; the
  host still pings): time from the kill to the slave's first SIP answer;
* switchover — ``wazo-ha switchover`` on the master: the gap between the
  master's last SIP answer and the slave's first (polled every ~50 ms), and
  the figure the command journals (``no_server_seconds``, an upper bound:
  from the start of the stop).

    python bench/switchover.py [--trials 5]

Target: switchover gap <= failover time + 1 s (medians). Run as root (tox -e bench -- switchover).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rig.ha import WAZO_HA
from tests.rig.switchover import PhoneWatch, SwitchoverRig

DEADLINE = 20.0


def failover_trial(rig: SwitchoverRig) -> float | None:
    rig.baseline()
    rig.kill_master_sip()
    return rig.first_slave_answer(rig.killed_at, DEADLINE)


def switchover_trial(rig: SwitchoverRig) -> tuple[float | None, float | None]:
    rig.baseline()
    phone = PhoneWatch(rig)
    process = rig.master.popen(
        [WAZO_HA, "--config", str(rig.master_config), "switchover", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=rig.env(),
    )
    phone.poll_until(lambda seen: bool(seen.slave) and process.poll() is not None, DEADLINE + 30)
    out, err = process.communicate(timeout=30)
    if process.returncode != 0:
        print(f"switchover failed: {err.strip()}", flush=True)
        return None, None
    return phone.gap(), json.loads(out)["no_server_seconds"]


def median(values: list[float | None]) -> float | None:
    measured = [value for value in values if value is not None]
    return statistics.median(measured) if measured else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wazo-ha-bench-") as directory, SwitchoverRig(Path(directory)) as rig:
        rig.start_watch()
        failovers, gaps, journaled = [], [], []
        for number in range(args.trials):
            failovers.append(failover_trial(rig))
            gap, figure = switchover_trial(rig)
            gaps.append(gap)
            journaled.append(figure)
            print(f"trial {number + 1}: failover {failovers[-1]}, switchover gap {gap}, journaled {figure}", flush=True)
        fail, gap, journal = median(failovers), median(gaps), median(journaled)
        print()
        print(f"failover (stand-in killed -> first SIP answer from the slave)  median {fail} s")
        print(f"switchover, phone-side gap (last master answer -> first slave)  median {gap} s")
        print(f"switchover, journaled no_server_seconds (upper bound)          median {journal} s")
        if fail is not None and gap is not None:
            verdict = "met" if gap <= fail + 1.0 else "NOT met"
            print(f"switchover gap - failover = {gap - fail:+.2f} s; target <= +1 s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
