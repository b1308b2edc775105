"""A randomized partition run (Jepsen-style nemesis) on the coordinated rig, bounded in time, then healed.

For NEMESIS_SECONDS the nemesis, every 1-4 s, picks one fault at random: cut a Wazo node from a random
subset of the etcd members and of the other nodes (nftables in its namespace), heal one node, unplug an etcd
member (at most two at once) or plug one back. Then everything is healed. The checker reads the phone's
100 ms samples: zero samples with two nodes answering over the whole run, and a node serving again within
TTL + failover time after healing. The seed is printed (and can be set with WAZO_HA_NEMESIS_SEED).
"""

from __future__ import annotations

import os
import random
import time

from tests.rig.coordinated import NODES, TTL, WATCH

NEMESIS_SECONDS = float(os.environ.get("WAZO_HA_NEMESIS_SECONDS", "60"))
#: After healing: the lease of a node cut mid-renewal, the watch's fall rounds, the rank delays, a start.
RECOVERY = TTL + WATCH["fall"] * WATCH["interval"] + 2 * 3.0 + 10


def test_random_partitions_never_give_two_actives_and_the_cluster_serves_again(coordinated):
    rig = coordinated
    seed = int(os.environ.get("WAZO_HA_NEMESIS_SEED", str(random.randrange(1 << 30))))
    print(f"\nnemesis seed {seed}")
    chance = random.Random(seed)
    etcd_hosts = [rig.network.hosts[f"etcd{i}"] for i in (1, 2, 3)]
    unplugged: list = []
    node_addresses = {name: host.address for name, host in rig.nodes.items()}
    started = time.monotonic()
    faults = []
    try:
        while time.monotonic() - started < NEMESIS_SECONDS:
            kind = chance.choice(["cut", "cut", "heal", "unplug", "plug"])
            if kind == "cut":
                node = chance.choice(NODES)
                targets = [a for a in rig.etcd_addresses if chance.random() < 0.5]
                targets += [a for n, a in node_addresses.items() if n != node and chance.random() < 0.3]
                if targets:
                    rig.cut(node, targets)
                    faults.append(f"cut {node} from {targets}")
            elif kind == "heal":
                node = chance.choice(NODES)
                rig.heal(node)
                faults.append(f"heal {node}")
            elif kind == "unplug" and len(unplugged) < 2:
                host = chance.choice([h for h in etcd_hosts if h not in unplugged])
                rig.network.link_down(host)
                unplugged.append(host)
                faults.append(f"unplug {host.name}")
            elif kind == "plug" and unplugged:
                host = unplugged.pop(chance.randrange(len(unplugged)))
                rig.network.link_up(host)
                faults.append(f"plug {host.name}")
            time.sleep(chance.uniform(1, 4))  # the nemesis' own pace, not synchronisation
    finally:
        for host in etcd_hosts:
            rig.network.link_up(host)
        for node in NODES:
            rig.heal(node)
    healed = time.monotonic()
    print("\n".join(faults))
    back = rig.wait_serving_any(RECOVERY + 20, "a node serving again after healing")
    samples = rig.sampler.since(started)
    doubles = rig.doubles(started)
    print(f"{len(faults)} faults, {len(samples)} samples, serving again {back:.1f} s after healing")
    assert doubles == [], f"seed {seed}: two nodes answered at {len(doubles)} samples, first {doubles[:3]}"
    assert back <= RECOVERY, f"seed {seed}: serving again only {back:.1f} s after healing"
    assert healed - started >= NEMESIS_SECONDS
