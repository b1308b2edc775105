"""``devices resync [--all]``: phones fetch their configuration again (after enabling HA)."""

from __future__ import annotations

import sys

from .common import EXIT_FAILED, EXIT_OK, print_json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    devices = commands.add_parser("devices", parents=[common], help="the phones, through the device provisioners")
    actions = devices.add_subparsers(dest="devices_command", metavar="ACTION", required=True)
    resync = actions.add_parser(
        "resync",
        parents=[common],
        help="resynchronise the phones that use a registrar config (all phones with --all)",
    )
    resync.add_argument("--all", dest="all_devices", action="store_true", help="every device provd knows")
    resync.add_argument("--json", action="store_true", help="machine-readable summary")
    resync.set_defaults(handler=cmd_resync)


def cmd_resync(args, engine: HAEngine) -> int:
    progress = _terminal_progress if sys.stderr.isatty() and not args.json else None
    kwargs = {"progress": progress} if progress else {}
    result = engine.resync_devices(all_devices=args.all_devices, **kwargs)
    if progress:
        print(file=sys.stderr)
    if args.json:
        summary = {"outcome": result.outcome, "message": result.message, "failures": result.warnings}
        print_json({**summary, **result.figures})
    else:
        print(result.message)
        for warning in result.warnings:
            print(f"  failed: {warning}")
    return EXIT_FAILED if result.figures.get("failed") else EXIT_OK


def _terminal_progress(message: str, figures: dict) -> None:
    failed = f", {figures['failed']} failed" if figures.get("failed") else ""
    print(f"\rresynchronising: {message}{failed}   ", end="", file=sys.stderr, flush=True)
