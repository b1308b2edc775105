"""A randomized partition run (Jepsen-style nemesis) on the coordinated rig, bounded in time, then healed.

For NEMESIS_SECONDS (two minutes, as issue 13 asks) the nemesis, every 1-3 s, picks one fault at random: cut
a Wazo node from a random subset of the etcd members and of the other nodes (nftables in its namespace), cut
an etcd member from some of the other members (a split inside etcd), heal one host, unplug an etcd member (at
most two at once) or plug one back, or freeze a node's ``wazo-ha watch`` (SIGSTOP, its fence guard keeps
running) for 1-8 s. Then everything is healed and thawed. The checker reads the phone's 100 ms samples: zero
samples with two nodes answering over the whole run, and a node serving again within TTL + failover time after
healing. The seed is printed (and can be set with WAZO_HA_NEMESIS_SEED); WAZO_HA_NEMESIS_SECONDS shortens the
run for a quick loop.
"""

from __future__ import annotations

import os
import random
import time

from tests.rig.coordinated import NODES, TTL, WATCH

NEMESIS_SECONDS = float(os.environ.get("WAZO_HA_NEMESIS_SECONDS", "120"))
#: After healing: the lease of a node cut mid-renewal, the watch's fall rounds, the rank delays, a start.
RECOVERY = TTL + WATCH["fall"] * WATCH["interval"] + 2 * 3.0 + 10


def test_random_partitions_never_give_two_actives_and_the_cluster_serves_again(coordinated):
    rig = coordinated
    seed = int(os.environ.get("WAZO_HA_NEMESIS_SEED", str(random.randrange(1 << 30))))
    print(f"\nnemesis seed {seed}")
    chance = random.Random(seed)
    etcd_hosts = [rig.network.hosts[f"etcd{i}"] for i in (1, 2, 3)]
    hosts = [*NODES, *(host.name for host in etcd_hosts)]
    unplugged: list = []
    frozen: dict[str, float] = {}  # node -> when to thaw it
    node_addresses = {name: host.address for name, host in rig.nodes.items()}
    started = time.monotonic()
    faults = []
    try:
        while time.monotonic() - started < NEMESIS_SECONDS:
            for node, thaw_at in list(frozen.items()):
                if time.monotonic() >= thaw_at:
                    rig.thaw(node)
                    del frozen[node]
                    faults.append(f"thaw {node}")
            kind = chance.choice(["cut", "cut", "split-etcd", "heal", "heal", "unplug", "plug", "freeze"])
            if kind == "cut":
                node = chance.choice(NODES)
                targets = [a for a in rig.etcd_addresses if chance.random() < 0.5]
                targets += [a for n, a in node_addresses.items() if n != node and chance.random() < 0.3]
                if targets:
                    rig.cut(node, targets)
                    faults.append(f"cut {node} from {targets}")
            elif kind == "split-etcd":
                member = chance.choice(etcd_hosts)
                others = [host.address for host in etcd_hosts if host is not member and chance.random() < 0.7]
                if others:
                    rig.cut(member.name, others)
                    faults.append(f"cut {member.name} from {others}")
            elif kind == "heal":
                name = chance.choice(hosts)
                rig.heal(name)
                faults.append(f"heal {name}")
            elif kind == "freeze" and len(frozen) < 2:
                node = chance.choice([n for n in NODES if n not in frozen])
                rig.freeze(node)
                frozen[node] = time.monotonic() + chance.uniform(1, 8)
                faults.append(f"freeze {node}")
            elif kind == "unplug" and len(unplugged) < 2:
                host = chance.choice([h for h in etcd_hosts if h not in unplugged])
                rig.network.link_down(host)
                unplugged.append(host)
                faults.append(f"unplug {host.name}")
            elif kind == "plug" and unplugged:
                host = unplugged.pop(chance.randrange(len(unplugged)))
                rig.network.link_up(host)
                faults.append(f"plug {host.name}")
            time.sleep(chance.uniform(1, 3))  # the nemesis' own pace, not synchronisation
    finally:
        for node in frozen:
            rig.thaw(node)
        for host in etcd_hosts:
            rig.network.link_up(host)
        for name in hosts:
            rig.heal(name)
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
