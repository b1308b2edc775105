"""Coordinated-mode failover as a phone sees it, and the time with two nodes answering.

On the coordinated rig (three etcd members and three Wazo nodes in network
namespaces, tests/rig/coordinated.py), each trial cuts the master from etcd
(not from the phones) at a random phase, measures the time to the phone's
first SIP answer from slave1, heals, and waits for the failback. A baseline
measured in the same run: the lease TTL itself (the least a lock-based
failover can take when the active node is alive but cut off), so the ratio
says how much the watch, the rank rules and the start add on top.

    python bench/coordinated_failover.py [--trials 5]

Prints median and max failover, their ratio to the TTL, and the seconds with two
nodes answering over the whole run (target 0). Run as root (tox -e bench with
the coordination extra); never part of the test run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rig.coordinated import TTL, CoordinatedRig


def trial(rig: CoordinatedRig) -> float:
    rig.wait_serving({"master"}, 60, "the master serving (baseline)")
    time.sleep(random.uniform(0, 1))  # a random phase against the keeper's renewals
    rig.cut("master", rig.etcd_addresses)
    try:
        return rig.wait_serving({"slave1"}, 4 * TTL, "slave1 serving")  # seconds from the cut
    finally:
        rig.heal("master")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wazo-ha-bench-coord-") as directory:
        with CoordinatedRig(Path(directory)) as rig:
            rig.start_watch("master")
            rig.wait_serving({"master"}, 30, "the master serving under the lock")
            rig.start_watch("slave1")
            rig.start_watch("slave2")
            started = time.monotonic()
            times = [trial(rig) for _ in range(args.trials)]
            rig.wait_serving({"master"}, 60, "the master serving (last failback)")
            samples = rig.sampler.since(started)
            doubles = len(rig.doubles(started))
    median, worst = statistics.median(times), max(times)
    print(f"coordinated failover (master cut from etcd), {args.trials} trials, lease TTL {TTL} s (baseline)")
    print(f"  median {median:.1f} s ({median / TTL:.2f}x TTL), max {worst:.1f} s ({worst / TTL:.2f}x TTL)")
    print(f"  target: <= TTL + 3 s = {TTL + 3} s: {'met' if worst <= TTL + 3 else 'NOT met'}")
    print(f"  two nodes answering: {doubles} of {len(samples)} samples ({doubles * 0.1:.1f} s; target 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
