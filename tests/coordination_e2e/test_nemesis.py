"""A randomized partition run (Jepsen-style nemesis) on the coordinated rig, bounded in time, then healed.

For NEMESIS_SECONDS (two minutes, as issue 13 asks) the nemesis (tests/rig/nemesis.py), every 1-3 s, picks
one fault at random: cuts between any Wazo nodes and etcd members (including splits inside etcd), an etcd
member unplugged or plugged back, a node's ``wazo-ha watch`` frozen (SIGSTOP) for 1-12 s. Then everything is
healed and thawed. The checker reads the phone's 100 ms samples: zero
samples with two nodes answering over the whole run, and a node serving again within TTL + failover time after
healing. The seed is printed (and can be set with WAZO_HA_NEMESIS_SEED); WAZO_HA_NEMESIS_SECONDS shortens the
run for a quick loop.
"""

from __future__ import annotations

import os
import random
import time

from tests.rig.coordinated import TTL, WATCH
from tests.rig.nemesis import run_nemesis

NEMESIS_SECONDS = float(os.environ.get("WAZO_HA_NEMESIS_SECONDS", "120"))
#: After healing: the lease of a node cut mid-renewal, the watch's fall rounds, the rank delays, a start.
RECOVERY = TTL + WATCH["fall"] * WATCH["interval"] + 2 * 3.0 + 10


def test_random_partitions_never_give_two_actives_and_the_cluster_serves_again(coordinated):
    rig = coordinated
    seed = int(os.environ.get("WAZO_HA_NEMESIS_SEED", str(random.randrange(1 << 30))))
    print(f"\nnemesis seed {seed}")
    chance = random.Random(seed)
    started = time.monotonic()
    faults = run_nemesis(rig, NEMESIS_SECONDS, chance)
    healed = time.monotonic()
    print("\n".join(faults))
    back = rig.wait_serving_any(RECOVERY + 20, "a node serving again after healing")
    samples = rig.sampler.since(started)
    doubles = rig.doubles(started)
    print(
        f"{len(faults)} faults over {healed - started:.0f} s, {len(samples)} samples, two nodes answering at "
        f"{len(doubles)} ({len(doubles) * 0.1:.1f} s), serving again {back:.1f} s after healing"
    )
    assert doubles == [], f"seed {seed}: two nodes answered at {len(doubles)} samples, first {doubles[:3]}"
    assert back <= RECOVERY, f"seed {seed}: serving again only {back:.1f} s after healing"
    assert healed - started >= NEMESIS_SECONDS
