"""``wazo-ha status``: the node at a glance, from the store only (no probe, no network).

* role and peer (the HA settings);
* the master as this slave last saw it: the watch's last published verdict
  and the last failover or failback in force;
* each service manager's state (active or standby), asked locally;
* the last replication, sync, copy-back, failover and failback with their age and figures;
* whether the watch is paused;
* on a master, whether a copy-back is owed and its last automatic attempt.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import PluginLoadError
from .journal import Event, utcnow
from .status_snapshot import (
    COPY_BACK_OWNER,
    GOOD_OUTCOMES,
    LAST_KINDS,
    SWITCH_KINDS,
    SWITCH_OUTCOMES,
    SWITCHOVER_OWNER,
)
from .watch import STATE_OWNER

if TYPE_CHECKING:
    from collections.abc import Callable

    from .config import HASettings
    from .services import ServiceControl


def status_report(
    source, ha: HASettings, control: Callable[[], ServiceControl], store: str, limit: int
) -> dict[str, Any]:
    """The whole of ``wazo-ha status``.

    ``source``: the store, or a :class:`~wazo_ha_core.status_snapshot.SnapshotView` of it (the same read
    methods; it raises ``SnapshotMiss`` for a question it cannot answer exactly). ``control``: loads the
    service managers, asked locally (never from a snapshot: their state is not in the store).
    """
    state = source.plugin_state(STATE_OWNER)
    watch_last = state.get("status")
    events = source.events(limit=limit)
    return {
        **ha.as_dict(),
        "role": ha.node_type,
        "peer": ha.remote_address or None,
        "master": master_view(ha.node_type, watch_last, source.last_event(SWITCH_KINDS, SWITCH_OUTCOMES)),
        "services": services(control),
        "last": {kind: _last(source, kind) for kind in LAST_KINDS},
        "paused": state.get("paused"),
        "switched_over": source.plugin_state(SWITCHOVER_OWNER).get("switched"),
        "copy_back": copy_back_summary(source.plugin_state(COPY_BACK_OWNER).get("auto")),
        "store": store,
        "events": [event.as_dict() for event in events],
    }


def master_view(role: str, watch_last: dict | None, switch: Event | None) -> dict[str, Any]:
    """What the slave believes of the master: ``up``, ``down`` (failed over), ``back`` (failed over, the
    master answers again: failback pending, with its countdown) or ``unknown``."""
    if role != "slave":
        return {"state": "this node" if role == "master" else "n/a", "detail": ""}
    if switch is not None and switch.kind == "failover":
        state = "down"
        detail = f"failed over {age(switch.ended_at or switch.started_at)}"
        failback_at = _parse((watch_last or {}).get("failback_at"))
        if failback_at is not None and watch_last.get("verdict") == "good":
            state = "back"
            detail += f"; the master answers again: {_countdown(failback_at)}"
    elif watch_last is None:
        state, detail = "unknown", "the watch has not reported yet"
    else:
        state = {"good": "up", "failed": "failing", "unknown": "unknown"}.get(watch_last.get("verdict"), "unknown")
        detail = watch_last.get("reason") or ""
    if watch_last is not None:
        detail += f" (watch: role {watch_last.get('role')}, last change {age(_parse(watch_last.get('at')))})"
    return {"state": state, "detail": detail.strip(), "watch": watch_last}


def _countdown(due: datetime, now: datetime | None = None) -> str:
    seconds = (due - (now or utcnow())).total_seconds()
    if seconds > 0:
        return f"failback in {int(seconds) + 1} s"
    return "failback due (waiting for calls to end, a retry or `wazo-ha resume`)"


def services(control: Callable[[], ServiceControl]) -> list[dict[str, Any]]:
    try:
        states = control().status()
    except PluginLoadError as exc:
        return [{"name": exc.name, "state": "unknown", "detail": str(exc)}]
    shown = {True: "active", False: "standby", None: "unknown"}
    return [{"name": name, "state": shown[state.active], "detail": state.detail} for name, state in states]


def _last(source, kind: str) -> dict[str, Any] | None:
    events = source.events(kind=kind, limit=1)
    if not events:
        return None
    event = events[0]
    ok = source.last_event((kind,), GOOD_OUTCOMES)
    return {
        "outcome": event.outcome,
        "at": (event.ended_at or event.started_at).isoformat(),
        "age": age(event.ended_at or event.started_at),
        "message": event.message,
        "figures": event.figures,
        "last_ok_age": age(ok.ended_at or ok.started_at) if ok else None,
    }


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """``"just now"``, ``"42 s ago"``, ``"3 min ago"``, ``"5 h ago"``, ``"2 d ago"``; ``"never"`` for None."""
    if moment is None:
        return "never"
    seconds = ((now or utcnow()) - moment).total_seconds()
    if seconds < 0:
        return "in the future (clock changed?)"
    if seconds < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return f"{int(seconds)} s ago"


def _parse(text: str | None) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def copy_back_summary(data: dict | None) -> dict[str, Any] | None:
    from .copy_back.auto import summary  # light: no SQLAlchemy

    return summary(data)
