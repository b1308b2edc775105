"""``services start|stop|status`` and the legacy ``xivo-manage-slave-services start|stop``."""

from __future__ import annotations

import argparse

from .common import EXIT_OK, common_options, print_json, run

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    services = commands.add_parser("services", parents=[common], help="take over or give back telephony by hand")
    actions = services.add_subparsers(dest="services_command", metavar="ACTION", required=True)
    actions.add_parser("start", parents=[common], help="take over: service managers in order").set_defaults(
        handler=cmd_start
    )
    actions.add_parser("stop", parents=[common], help="give back: service managers in reverse order").set_defaults(
        handler=cmd_stop
    )
    status = actions.add_parser("status", parents=[common], help="each service manager's state")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)


def cmd_start(args, engine: HAEngine) -> int:
    done = engine.switch_services(take_over=True)
    print(f"took over: {', '.join(done['managers']) or 'no service manager enabled'}")
    return EXIT_OK


def cmd_stop(args, engine: HAEngine) -> int:
    done = engine.switch_services(take_over=False)
    print(f"gave back: {', '.join(done['managers']) or 'no service manager enabled'}")
    return EXIT_OK


def cmd_status(args, engine: HAEngine) -> int:
    states = engine.service_control().status()
    if args.json:
        print_json([{"manager": name, "active": state.active, "detail": state.detail} for name, state in states])
        return EXIT_OK
    if not states:
        print("no service manager enabled (plugins.service_managers)")
    for name, state in states:
        active = {True: "active", False: "inactive", None: "unknown"}[state.active]
        print(f"{name:<16} {active:<9} {state.detail}")
    return EXIT_OK


def manage_slave_services_main(argv: list[str] | None = None) -> int:
    """Legacy name: ``start`` takes over, ``stop`` gives back; exit 0 done, 1 failed, 2 usage."""
    parser = argparse.ArgumentParser(
        prog="xivo-manage-slave-services",
        description="Start or stop this node's telephony services (wazo-ha services).",
        parents=[common_options()],
    )
    parser.add_argument("action", choices=["start", "stop"])
    args = parser.parse_args(argv)
    return run(cmd_start if args.action == "start" else cmd_stop, args)
