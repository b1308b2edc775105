"""Failover time as a phone sees it, wazo-ha's watch against today's once-a-minute ping check.

On the e2e rig (master, slave, phone as network namespaces; sipp standing in for
Asterisk; monit on the slave), each trial injects one fault at a random phase
and measures the time from the fault to the phone's first SIP answer from the
slave:

* scenario a — the master's link goes down;
* scenario b — the master's SIP responder is killed (the host still pings);
* today's method — every 60 s, ``ping -c 3 -i 10 <master>``: any reply → stop
  the slave's services, none → start them (``xivo-check-master-status``), on
  the same rig, scenario a only: with scenario b today's check never fails
  over (the host pings), which is the documented limitation.

    python bench/failover.py [--trials 10] [--legacy-trials 3]

Prints median and max per scenario and the ratio of today's median to ours.
Run as root (tox -e bench); never part of the test run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.rig.ha import HARig
from tests.rig.monit import SERVICE

LEGACY_PERIOD = 60.0
DEADLINE = 10.0  # ours; far above the 5 s target so a slow trial is measured, not lost
LEGACY_DEADLINE = 150.0


def trial(rig: HARig, scenario: str) -> float | None:
    rig.baseline()
    time.sleep(random.uniform(0, 1))  # a random phase against the watch's 1 s rounds
    fault = time.monotonic()
    if scenario == "a":
        rig.network.link_down(rig.master)
    else:
        rig.kill_master_sip()
    return rig.first_slave_answer(fault, DEADLINE)


class LegacyCron:
    """Today's slave check, reproduced: every minute, three pings ten seconds apart."""

    def __init__(self, rig: HARig):
        self.rig, self.stop = rig, threading.Event()
        start = " ".join(rig.monit.command("start", SERVICE))
        stop = " ".join(rig.monit.command("stop", SERVICE))
        self.script = f"if ping -c 3 -i 10 -q {rig.master.address} >/dev/null 2>&1; then {stop}; else {start}; fi"
        self.process: subprocess.Popen | None = None
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self.stop.is_set():
            tick = time.monotonic()
            self.process = self.rig.slave.popen(["sh", "-c", self.script], stdout=subprocess.DEVNULL)
            self.process.wait()
            self.stop.wait(max(0.0, tick + LEGACY_PERIOD - time.monotonic()))

    def __enter__(self) -> LegacyCron:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        if self.process is not None:
            self.rig.slave.stop(self.process)
        self.thread.join()


def legacy_trial(rig: HARig) -> float | None:
    rig.baseline()
    rig.stop_watch()
    with LegacyCron(rig):
        time.sleep(random.uniform(0, LEGACY_PERIOD))  # the fault lands anywhere in the cron minute
        fault = time.monotonic()
        rig.network.link_down(rig.master)
        return rig.first_slave_answer(fault, LEGACY_DEADLINE)


def summary(name: str, times: list[float | None]) -> float | None:
    measured = [t for t in times if t is not None]
    missed = len(times) - len(measured)
    if not measured:
        print(f"{name:<44} no failover in any of {len(times)} trial(s)")
        return None
    median, worst = statistics.median(measured), max(measured)
    extra = f", {missed} trial(s) without failover" if missed else ""
    print(
        f"{name:<44} median {median:6.2f} s   max {worst:6.2f} s   "
        f"({len(measured)} trials: {', '.join(f'{t:.2f}' for t in measured)}){extra}"
    )
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--legacy-trials", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wazo-ha-bench-") as directory, HARig(Path(directory), tag="b5") as rig:
        rig.start_watch()
        results = {"a": [], "b": []}
        for number in range(args.trials):
            for scenario in ("a", "b"):
                results[scenario].append(trial(rig, scenario))
                print(f"trial {number + 1} scenario {scenario}: {results[scenario][-1]}", flush=True)
        legacy = []
        for number in range(args.legacy_trials):
            legacy.append(legacy_trial(rig))
            print(f"today's method trial {number + 1}: {legacy[-1]}", flush=True)
            rig.start_watch()
        print()
        print("fault -> first SIP answer from the slave, seen from the phone host")
        median_a = summary("a: master link down (wazo-ha watch)", results["a"])
        summary("b: master SIP responder killed (wazo-ha watch)", results["b"])
        median_legacy = summary("a: today's ping -c 3 -i 10 every minute", legacy)
        print(f"{'b: today':<44} never fails over: ICMP only, the host still answers")
        if median_a and median_legacy:
            print(f"ratio today / wazo-ha (median, scenario a): {median_legacy / median_a:.1f}x")
        for scenario in ("a", "b"):
            measured = [t for t in results[scenario] if t is not None]
            if measured:
                median, worst = statistics.median(measured), max(measured)
                verdict = "met" if median <= 3 and worst <= 5 and len(measured) == len(results[scenario]) else "NOT met"
                print(f"scenario {scenario}: targets median <= 3 s, max <= 5 s: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
