"""``switchover`` / ``switchback``: planned moves of telephony to the slave and back (run on the master)."""

from __future__ import annotations

import sys

from .common import EXIT_OK, print_json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from ..engine import HAEngine


def register(commands, common) -> None:
    for name, text in (
        ("switchover", "planned move of telephony to the slave (last replication and sync, then stop here)"),
        ("switchback", "bring telephony back here: start here, wait for the slave's failback"),
    ):
        command = commands.add_parser(name, parents=[common], help=f"{text} (master only)")
        command.add_argument(
            "--force", action="store_true", help="go on despite calls, a paused or unsynced slave (journaled)"
        )
        command.add_argument("--timeout", type=float, default=None, help="seconds to wait for the slave")
        command.add_argument("--json", action="store_true", help="machine-readable figures")
        command.set_defaults(handler=cmd_switchover if name == "switchover" else cmd_switchback)


def _say(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def cmd_switchover(args, engine: HAEngine) -> int:
    figures = engine.switchover(force=args.force, timeout=args.timeout, say=_say)
    if args.json:
        print_json(figures)
    else:
        print(
            f"telephony moved to {figures['peer']}: phones had no server for at most "
            f"{figures['no_server_seconds']:.1f} s (stop here {figures['stop_seconds']:.1f} s, "
            f"the slave answered {figures['takeover_seconds']:.1f} s later)"
        )
    return EXIT_OK


def cmd_switchback(args, engine: HAEngine) -> int:
    figures = engine.switchback(force=args.force, timeout=args.timeout, say=_say)
    if args.json:
        print_json(figures)
    else:
        print(
            f"telephony back here; the slave {figures['peer']} gave back after {figures['gave_back_after']:.1f} s "
            "(phones always had a server)"
        )
    return EXIT_OK
