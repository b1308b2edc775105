"""A Jepsen-style nemesis for the coordinated rig (tests/rig/coordinated.py), shared by the randomized test
(tests/coordination_e2e/test_nemesis.py) and the benchmark (bench/coordinated_failover.py).

For ``seconds`` the nemesis, every 1-3 s, picks one fault at random: cut a Wazo node from a random subset of
the etcd members and of the other nodes (nftables in its namespace), cut an etcd member from some of the other
members (a split inside etcd), heal one host, unplug an etcd member (at most two at once) or plug one back, or
freeze a node's ``wazo-ha watch`` (SIGSTOP; its fence guard keeps running) for 1-12 s (at most two at once;
the node answering SIP is picked more often than the others: freezing the active node past its lease is the
fault that needs the fence guard).
Then everything is thawed, plugged back and healed, even when it raised.
"""

from __future__ import annotations

import random
import time

from .coordinated import NODES, CoordinatedRig

KINDS = ["cut", "cut", "split-etcd", "heal", "heal", "unplug", "plug", "freeze"]


def run_nemesis(rig: CoordinatedRig, seconds: float, chance: random.Random) -> list[str]:
    """Inject random faults for ``seconds``, then heal everything; the faults, in order."""
    etcd_hosts = [rig.network.hosts[f"etcd{i}"] for i in (1, 2, 3)]
    hosts = [*NODES, *(host.name for host in etcd_hosts)]
    node_addresses = {name: host.address for name, host in rig.nodes.items()}
    unplugged: list = []
    frozen: dict[str, float] = {}  # node -> when to thaw it
    faults: list[str] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            for node, thaw_at in list(frozen.items()):
                if time.monotonic() >= thaw_at:
                    rig.thaw(node)
                    del frozen[node]
                    faults.append(f"thaw {node}")
            kind = chance.choice(KINDS)
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
                candidates = [n for n in NODES if n not in frozen]
                active = [n for n in rig.serving() if n in candidates]
                node = chance.choice(active if active and chance.random() < 0.6 else candidates)
                rig.freeze(node)
                frozen[node] = time.monotonic() + chance.uniform(1, 12)
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
    return faults
