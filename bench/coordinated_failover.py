"""Coordinated-mode failover as a phone sees it, and the time with two nodes answering.

On the coordinated rig (three etcd members and three Wazo nodes in network
namespaces, tests/rig/coordinated.py), two kinds of trial at a random phase
against the keeper's renewals, each measuring the time to the phone's first
SIP answer from slave1, then healing and waiting for the failback:

* ``cut``: the master cut from etcd (not from the phones);
* ``freeze``: the master's ``wazo-ha watch`` frozen (SIGSTOP; its fence guard
  stops telephony), resumed (SIGCONT) once slave1 answers.

Then a randomized run (tests/rig/nemesis.py, ``--nemesis`` seconds, two minutes
by default): the seconds with two nodes answering over it (target 0) and the
time to serve again after healing. A baseline measured in the same run: the
lease TTL itself (the least a lock-based failover can take when the active node
is alive but cut off), so the ratio says how much the watch, the rank rules and
the start add on top.

    python bench/coordinated_failover.py [--trials 5] [--nemesis 120] [--seed N]

Prints median and max failover per kind, their ratio to the TTL, and the
seconds with two nodes answering over the trials and over the randomized run
(target 0). Run as root (tox -e bench with the coordination extra); never part
of the test run.
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
from tests.rig.nemesis import run_nemesis


def trial(rig: CoordinatedRig, kind: str) -> float:
    rig.wait_serving({"master"}, 60, "the master serving (baseline)")
    time.sleep(random.uniform(0, 1))  # a random phase against the keeper's renewals
    if kind == "cut":
        rig.cut("master", rig.etcd_addresses)
    else:
        rig.freeze("master")
    try:
        return rig.wait_serving({"slave1"}, 4 * TTL, "slave1 serving")  # seconds from the fault
    finally:
        if kind == "cut":
            rig.heal("master")
        else:
            rig.thaw("master")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="trials of each kind")
    parser.add_argument("--nemesis", type=float, default=120.0, help="seconds of randomized faults (0: none)")
    parser.add_argument("--seed", type=int, default=None, help="the nemesis' seed (default: random, printed)")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    nemesis = None
    with tempfile.TemporaryDirectory(prefix="wazo-ha-bench-coord-") as directory:
        with CoordinatedRig(Path(directory)) as rig:
            rig.start_watch("master")
            rig.wait_serving({"master"}, 30, "the master serving under the lock")
            rig.start_watch("slave1")
            rig.start_watch("slave2")
            started = time.monotonic()
            times = {kind: [trial(rig, kind) for _ in range(args.trials)] for kind in ("cut", "freeze")}
            rig.wait_serving({"master"}, 60, "the master serving (last failback)")
            samples = rig.sampler.since(started)
            doubles = len(rig.doubles(started))
            if args.nemesis > 0:
                begun = time.monotonic()
                faults = run_nemesis(rig, args.nemesis, random.Random(seed))
                back = rig.wait_serving_any(60, "a node serving again after healing")
                nemesis = (len(faults), len(rig.sampler.since(begun)), len(rig.doubles(begun)), back)
    print(f"coordinated failover, {args.trials} trials of each kind, lease TTL {TTL} s (baseline)")
    for kind, what in (("cut", "master cut from etcd"), ("freeze", "master's watch frozen (SIGSTOP)")):
        median, worst = statistics.median(times[kind]), max(times[kind])
        print(f"  {what}: median {median:.1f} s ({median / TTL:.2f}x TTL), max {worst:.1f} s ({worst / TTL:.2f}x TTL)")
        print(f"    target: <= TTL + 3 s = {TTL + 3} s: {'met' if worst <= TTL + 3 else 'NOT met'}")
    print(f"  two nodes answering over the trials: {doubles} of {len(samples)} samples ({doubles * 0.1:.1f} s)")
    if nemesis is not None:
        count, total, twice, back = nemesis
        print(
            f"  randomized run ({args.nemesis:g} s, seed {seed}, {count} faults): two nodes answering at {twice} of "
            f"{total} samples ({twice * 0.1:.1f} s; target 0); serving again {back:.1f} s after healing"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
