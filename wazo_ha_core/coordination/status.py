"""``wazo-ha status`` in coordinated mode: the coordinator, the lock's holder, its token and lease left.

With the ``none`` coordinator nothing but its name is shown and no network is
used. Otherwise one read of the leader key, bounded by the coordinator's
``timeout``; an unreachable backend is shown, never raised. This node's own
view (its rank, whether it serves, its token) comes from the store, where the
watch's lease keeper publishes it on each change; whether this node's fence
guard runs, from its lock file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import CoordinatorUnavailable, PluginError
from ..watch import STATE_OWNER  # not from ..watcher: `status` imports this module and needs no watch loop

if TYPE_CHECKING:
    from ..engine import HAEngine


def coordination_status(engine: HAEngine) -> dict[str, Any]:
    names = engine.settings.enabled_plugins("coordinators")
    name = names[0] if names else "none"
    if name == "none":
        return {"coordinator": "none"}
    status: dict[str, Any] = {
        "coordinator": name,
        "this_node": engine.store.plugin_state(STATE_OWNER).get("coordination"),
        "holder": None,
        "error": None,
        "fence_guard": _fence_guard(engine.settings),
    }
    coordinator = None
    try:
        coordinator = engine.coordinator()
        holder = coordinator.holder()
        if holder is not None:
            status["holder"] = {"node": holder.node, "token": holder.token, "lease_left": holder.expires_in}
    except (CoordinatorUnavailable, PluginError) as exc:
        status["error"] = str(exc)
    finally:
        if coordinator is not None:
            coordinator.close()
    return status


def _fence_guard(settings) -> dict[str, Any]:
    from .fence import guard_running

    if not settings.get("coordination.fence_guard"):
        return {"enabled": False, "pid": None}
    return {"enabled": True, "pid": guard_running(settings.path("run_dir"))}


def status_lines(status: dict[str, Any]) -> list[str]:
    """The human lines of ``wazo-ha status`` for ``coordination_status()``."""
    lines = [f"coordinator     {status['coordinator']}"]
    if status["coordinator"] == "none":
        return lines
    holder = status["holder"]
    if status["error"]:
        lines.append(f"lock holder     UNKNOWN  {status['error']}")
    elif holder is None:
        lines.append("lock holder     nobody (no node may serve)")
    else:
        left = f"{holder['lease_left']:g} s" if holder["lease_left"] is not None else "unknown"
        lines.append(f"lock holder     {holder['node']}  token {holder['token']}  lease left {left}")
    mine = status["this_node"]
    if mine:
        serving = "serving" if mine["serving"] else "not serving"
        token = f"token {mine['token']}" if mine["token"] is not None else "no lock"
        lines.append(
            f"this node       {mine['node']} (rank {mine['rank']}): {serving}, {token}, as of {mine['at'][:19]}"
        )
    guard = status.get("fence_guard") or {}
    if not guard.get("enabled"):
        lines.append("fence guard     OFF (a frozen watch would leave telephony answering)")
    else:
        lines.append(f"fence guard     {'running, pid ' + str(guard['pid']) if guard['pid'] else 'NOT running'}")
    return lines
