"""``wazo-ha``: the operator's command line.

Exit codes: 0 done, 1 the operation failed, 2 usage, validation or settings
error. Errors are one line on stderr, never a traceback (``--verbose`` adds
the traceback for bug reports).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from .engine import HAEngine
from .errors import SettingsError, ValidationError, WazoHAError
from .settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

log = logging.getLogger("wazo_ha")


class UsageError(Exception):
    """A command line that parses but makes no sense (exit 2)."""


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="settings file (default /etc/wazo-ha/config.yml, or $WAZO_HA_CONFIG)",
    )
    verbosity = common.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug details")
    verbosity.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="log errors only")

    parser = argparse.ArgumentParser(prog="wazo-ha", description="High availability for Wazo.", parents=[common])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    status = commands.add_parser("status", parents=[common], help="role, peer and recent events")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    plugins = commands.add_parser("plugins", parents=[common], help="each extension point and its plugins")
    plugins.add_argument("--json", action="store_true", help="machine-readable output")
    plugins.set_defaults(handler=cmd_plugins)

    config = commands.add_parser("config", parents=[common], help="read or edit the HA settings")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    config_get = config_commands.add_parser("get", parents=[common], help="print the HA settings as JSON")
    config_get.set_defaults(handler=cmd_config_get)
    config_set = config_commands.add_parser("set", parents=[common], help="edit: node_type=… remote_address=…")
    config_set.add_argument("assignments", nargs="+", metavar="FIELD=VALUE")
    config_set.set_defaults(handler=cmd_config_set)

    history = commands.add_parser("history", parents=[common], help="the event journal, newest first")
    history.add_argument("--json", action="store_true", help="machine-readable output")
    history.add_argument("--kind", help="only events of this kind (edit, replication, sync, failover…)")
    history.add_argument(
        "--since",
        type=_since,
        metavar="AGE",
        help="only events younger than AGE (e.g. 30m, 12h, 7d) or after an ISO date",
    )
    history.add_argument("--limit", type=_positive_int, help="at most this many events")
    history.set_defaults(handler=cmd_history)

    db = commands.add_parser("db", parents=[common], help="the state store's schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_upgrade = db_commands.add_parser("upgrade", parents=[common], help="migrate the store to this version")
    db_upgrade.set_defaults(handler=cmd_db_upgrade)
    db_status = db_commands.add_parser("status", parents=[common], help="the store's revision")
    db_status.set_defaults(handler=cmd_db_status)
    return parser


# --- commands -------------------------------------------------------------------


def cmd_status(args, engine: HAEngine) -> int:
    status = engine.status()
    if args.json:
        _print_json(status)
        return EXIT_OK
    print(f"node type       {status['node_type']}")
    print(f"remote address  {status['remote_address'] or '-'}")
    print(f"state store     {status['store']}")
    print("recent events:" if status["events"] else "recent events:  none yet")
    _print_events(status["events"])
    return EXIT_OK


def cmd_plugins(args, engine: HAEngine) -> int:
    reports = engine.loader.inventory()
    if args.json:
        _print_json([report.__dict__ | {"ok": report.ok} for report in reports])
    else:
        from .settings import PLUGIN_NAMESPACES

        for group, namespace in PLUGIN_NAMESPACES.items():
            print(f"{namespace}  (plugins.{group})")
            rows = [report for report in reports if report.group == group]
            if not rows:
                print("    (no plugin installed or enabled)")
            for report in rows:
                state = "enabled " if report.enabled else "disabled"
                verdict = (
                    "loaded" if report.ok and report.enabled else "installed" if report.ok else f"ERROR: {report.error}"
                )
                print(f"    {report.name:<16} {state}  {verdict}")
    failed = [report for report in reports if report.enabled and not report.ok]
    return EXIT_FAILED if failed else EXIT_OK


def cmd_config_get(args, engine: HAEngine) -> int:
    _print_json(engine.get_ha())
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
    if "node_type" in body and "remote_address" not in body and body["node_type"] != "disabled":
        body["remote_address"] = current["remote_address"] or None
    if "node_type" not in body:
        body["node_type"] = current["node_type"]
    engine.update_ha(body)
    _print_json(engine.get_ha())
    return EXIT_OK


def cmd_history(args, engine: HAEngine) -> int:
    limit = args.limit or int(engine.settings.get("history.default_limit"))
    events = [event.as_dict() for event in engine.store.events(kind=args.kind, since=args.since, limit=limit)]
    if args.json:
        _print_json(events)
    elif not events:
        print("no events")
    else:
        _print_events(events)
    return EXIT_OK


def cmd_db_upgrade(args, engine: HAEngine) -> int:
    before = engine.store.current_revision()
    engine.store.upgrade()
    after = engine.store.current_revision()
    if before == after:
        print(f"state store {engine.store.describe()} already at revision {after}")
    else:
        print(f"state store {engine.store.describe()} migrated from {before or 'empty'} to {after}")
    return EXIT_OK


def cmd_db_status(args, engine: HAEngine) -> int:
    current, head = engine.store.current_revision(), engine.store.head_revision()
    print(f"state store {engine.store.describe()}: revision {current or 'none'}, this version needs {head}")
    return EXIT_OK if current == head else EXIT_FAILED


# --- entry point --------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    _setup_logging(verbose, quiet)
    try:
        settings = Settings.load(getattr(args, "config", None))
        engine = HAEngine(settings)
        return args.handler(args, engine)
    except ValidationError as exc:
        for field, message in sorted(exc.errors.items()):
            print(f"wazo-ha: invalid {field}: {message}", file=sys.stderr)
        print("wazo-ha: nothing was changed", file=sys.stderr)
        return EXIT_USAGE
    except (SettingsError, UsageError) as exc:
        print(f"wazo-ha: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WazoHAError as exc:
        _fail(str(exc), verbose)
        return EXIT_FAILED
    except SQLAlchemyError as exc:
        _fail(f"state store error: {str(getattr(exc, 'orig', None) or exc).strip().splitlines()[0]}", verbose)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("wazo-ha: interrupted", file=sys.stderr)
        return 130


def _fail(message: str, verbose: bool) -> None:
    if verbose:
        log.exception("failed")
    print(f"wazo-ha: {message}", file=sys.stderr)


def _setup_logging(verbose: bool, quiet: bool) -> None:
    level = logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING
    logging.basicConfig(level=level, format="%(asctime)s [%(process)d] (%(levelname)s) (%(name)s): %(message)s")


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def _print_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        started = event["started_at"][:19].replace("T", " ")
        duration = f"{event['duration']:.1f}s" if event["duration"] is not None else "-"
        message = f"  {event['message']}" if event["message"] else ""
        print(f"  {started}  {event['kind']:<12} {event['outcome']:<9} {duration:>7}{message}")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _since(text: str) -> datetime:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[-1:] in units and text[:-1].isdigit():
        return datetime.now(UTC) - timedelta(seconds=int(text[:-1]) * units[text[-1]])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an age like 30m, 12h, 7d or an ISO date, got {text!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


if __name__ == "__main__":
    sys.exit(main())
