"""The settings of a rig slave standing by: probes towards the master, the stand-in
switched through monit, and the watch. Shared by the e2e rig and the demo."""

from __future__ import annotations

from typing import Any

from .monit import SERVICE, Monit


def standby_settings(monit: Monit, stability: float, witnesses: list[str]) -> dict[str, Any]:
    """``plugins``, ``plugin_config`` and ``watch`` sections for a slave whose telephony is monit's stand-in."""
    return {
        "plugins": {
            "replication": [],
            "file_sync": [],
            "health_probes": ["icmp", "sip"],
            "device_provisioners": [],
            "service_managers": ["wazo_services"],
        },
        "plugin_config": {
            "wazo_services": {
                "status_commands": [monit.status_command],
                "start_commands": [monit.command("start", SERVICE)],
                "stop_commands": [monit.command("stop", SERVICE)],
                "active_calls_command": None,
                "settle": 10,
            }
        },
        "watch": {"interval": 1.0, "fall": 3, "rise": 3, "stability": stability, "witnesses": list(witnesses)},
    }


def coordination_settings(etcd_addresses: list[str], node: str, rank: int, ttl: float, key_prefix: str) -> dict:
    """The ``coordination`` section of a node on the rig's etcd members (standard port 2379, plain http).

    ``rank`` 0 is the preferred node (today's master); standbys take over in rank order."""
    return {
        "endpoints": [f"http://{address}:2379" for address in etcd_addresses],
        "node": node,
        "key_prefix": key_prefix,
        "lease_ttl": ttl,
        "timeout": 1,
        "stop_margin": 2.0,
        "standby_delay": 3.0,
        **({"priority": rank} if rank else {}),
    }
