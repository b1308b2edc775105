"""``status``, ``config get|set`` and ``history``: the HA settings and the journal."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime, timedelta

from .common import EXIT_OK, UsageError, positive_int, print_events, print_json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from typing import Any

    from ..engine import HAEngine
    from ..settings import Settings


def register(commands, common) -> None:
    status = commands.add_parser("status", parents=[common], help="role, peer and recent events")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    config = commands.add_parser("config", parents=[common], help="read or edit the HA settings")
    actions = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    actions.add_parser("get", parents=[common], help="print the HA settings as JSON").set_defaults(
        handler=cmd_config_get
    )
    config_set = actions.add_parser("set", parents=[common], help="edit: node_type=… remote_address=…")
    config_set.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    config_set.add_argument(
        "--force",
        action="store_true",
        help="take a slave that serves telephony out of its role anyway: telephony is given back (stopped here) first",
    )
    config_set.set_defaults(handler=cmd_config_set)

    history = commands.add_parser("history", parents=[common], help="the event journal, newest first")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    history.add_argument("--kind", help="only events of this kind (edit, replication, sync, failover…)")
    history.add_argument(
        "--since", type=since, metavar="AGE", help="only events younger than AGE (30m, 12h, 7d) or after an ISO date"
    )
    history.add_argument("--limit", type=positive_int, help="at most this many events")
    history.set_defaults(handler=cmd_history)


def cmd_status(args, engine: HAEngine) -> int:
    return print_status(args, engine.status())


def status_without_engine(args, settings: Settings) -> int | None:
    """``status`` from the store's snapshot, without SQLAlchemy; ``None`` when the snapshot is not
    exactly current (or the store is not the embedded SQLite file): then the store is read."""
    if settings.get("store.url"):
        return None
    from ..coordination.config import coordinated

    if coordinated(settings.tree):  # the lock's holder is asked of etcd, through the engine's coordinator
        return None
    from ..status import status_report
    from ..status_snapshot import SnapshotMiss, load

    database, limit = settings.path("state_db"), int(settings.get("history.default_limit"))
    try:
        view = load(database, limit)
        ha = view.read_ha_settings()
        if ha is None:  # nothing stored yet: the engine imports an existing ha.conf (a write), else disabled
            if os.path.lexists(settings.path("ha_conf")):
                return None
            from ..config import DISABLED as ha
        report = status_report(view, ha, _service_control(settings), f"sqlite:///{database}", limit)
        report["coordination"] = {"coordinator": "none"}  # as coordination_status() says without a coordinator
    except SnapshotMiss:
        return None
    return print_status(args, report)


cmd_status.without_engine = status_without_engine


def _service_control(settings: Settings):
    """Loads the enabled service managers (after the snapshot was read: their plugin state opens the store)."""

    def load():
        if not settings.get("plugins.service_managers"):
            return _NoServices()
        from ..plugins import PluginLoader
        from ..services import ServiceControl
        from ..store import Store

        loader = PluginLoader(settings, lambda owner: Store.from_settings(settings).plugin_state(owner))
        return ServiceControl(loader.load("service_managers"))

    return load


class _NoServices:
    """ServiceControl with no manager, without importing the plugin machinery."""

    def status(self) -> list:
        return []


def print_status(args, status: dict[str, Any]) -> int:
    if args.json:
        print_json(status)
        return EXIT_OK
    print(f"role            {status['role']}" + (f" (peer {status['peer']})" if status["peer"] else ""))
    master = status["master"]
    if status["role"] == "slave":
        print(f"master          {master['state'].upper()}  {master['detail']}")
    paused = status["paused"]
    if status["role"] == "slave" or paused:  # the watch acts on a slave only
        since = f"PAUSED since {paused['since'][:19]} {paused['reason']}".rstrip() if paused else "not paused"
        print(f"watch           {since}")
    from ..coordination.status import status_lines

    for line in status_lines(status["coordination"]):
        print(line)
    for service in status["services"] or [{"name": "-", "state": "no service manager enabled", "detail": ""}]:
        print(f"services        {service['name']}: {service['state']}  {service['detail']}".rstrip())
    switched = status.get("switched_over")
    if switched:
        since = switched["since"][:19]
        print(f"switchover      telephony moved to {switched['peer']} since {since} (`wazo-ha switchback`)")
    owed = status.get("copy_back")
    if owed and (owed["owed"] or owed["attempts"]):
        line = f"OWED since {owed['owed_since'][:19]} ({owed['reason']})" if owed["owed"] else "not owed"
        if owed["last_attempt_at"]:
            line += f"; last attempt {owed['last_attempt_at'][:19]} {owed['last_outcome']}"
        if owed["attempts"] and owed["next_attempt_at"]:
            line += f", {owed['attempts']} failed in a row, next {owed['next_attempt_at'][:19]}"
        print(f"copy-back       {line}")
    for kind, last in status["last"].items():
        if last is None and kind in ("switchover", "switchback"):
            continue  # planned moves: shown once there was one
        if last is None:
            print(f"last {kind:<12}never")
            continue
        ok = "" if last["outcome"] in ("ok", "skipped") else f"  (last good: {last['last_ok_age']})"
        print(f"last {kind:<12}{last['outcome']:<8} {last['age']}{ok}  {last['message']}".rstrip())
        if kind == "sync" and (last.get("figures") or {}).get("voicemail") == "held":
            owed = last["figures"].get("voicemail_copy_back_owed", 0)
            print(f"voicemail       held: the slave holds {owed} change(s) the master lacks (`wazo-ha copy-back`)")
    print(f"state store     {status['store']}")
    print("recent events:" if status["events"] else "recent events:  none yet")
    print_events(status["events"])
    return EXIT_OK


def cmd_config_get(args, engine: HAEngine) -> int:
    print_json(engine.get_ha())
    return EXIT_OK


def cmd_config_set(args, engine: HAEngine) -> int:
    body: dict[str, Any] = {}
    for assignment in args.assignments:
        field, equals, value = assignment.partition("=")
        if not equals or not field:
            raise UsageError(f"expected FIELD=VALUE, got {assignment!r}")
        if field in body:
            raise UsageError(f"{field} given twice")
        body[field] = value
    current = engine.get_ha()
    # A field not given keeps its value (the API itself always takes the whole body).
    if "node_type" not in body:
        body["node_type"] = current["node_type"]
    if "remote_address" not in body and body["node_type"] != "disabled":
        body["remote_address"] = current["remote_address"] or None
    engine.update_ha(body, force=args.force)
    if not getattr(args, "quiet", False):
        print_json(engine.get_ha())
    return EXIT_OK


def cmd_history(args, engine: HAEngine) -> int:
    limit = args.limit or int(engine.settings.get("history.default_limit"))
    events = [event.as_dict() for event in engine.store.events(kind=args.kind, since=args.since, limit=limit)]
    if args.json:
        print_json(events)
    elif not events:
        print("no events")
    else:
        print_events(events)
    return EXIT_OK


def since(text: str) -> datetime:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an age like 30m, 12h, 7d or an ISO date, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
