"""``sync [--strict] [--json]`` and ``sync init [--rotate]``; legacy ``xivo-sync`` / ``wazo-sync``.

Exit codes: 0 synced (or not set up yet, as today's ``wazo-sync``); 1 not a
master, a failed transfer, or — with ``--strict`` — not set up yet or a
partial transfer; 2 usage or settings error.
"""

from __future__ import annotations

import argparse
import sys

from ..engine import HAEngine
from ..file_sync import SyncReport
from .common import EXIT_FAILED, EXIT_OK, common_options, print_json, run


def register(commands, common) -> None:
    sync = commands.add_parser("sync", parents=[common], help="mirror the synced directories to the slave")
    sync.add_argument("--strict", action="store_true", help="exit 1 when not set up yet or on a partial transfer")
    sync.add_argument("--json", action="store_true", help="machine-readable output")
    sync.set_defaults(handler=cmd_sync)
    actions = sync.add_subparsers(dest="sync_command", metavar="ACTION")
    init = actions.add_parser("init", parents=[common], help="set up the sync key on the slave (master only)")
    init.add_argument("--rotate", action="store_true", help="replace the key on both sides")
    init.add_argument("--json", action="store_true", help="machine-readable output")
    init.set_defaults(handler=cmd_sync_init)


def cmd_sync(args, engine: HAEngine, *, legacy: bool = False) -> int:
    show_progress = sys.stderr.isatty() and not args.json
    report = engine.sync_files(progress=_terminal_progress if show_progress else _no_progress)
    if show_progress:
        sys.stderr.write("\n")
    if args.json:
        print_json({"initialised": report.initialised, "results": report.results})
    else:
        _print_report(report)
    if not report.initialised:
        return EXIT_FAILED if args.strict else EXIT_OK
    if report.partial and (args.strict or legacy):
        return EXIT_FAILED
    return EXIT_OK


def cmd_sync_init(args, engine: HAEngine) -> int:
    entries = engine.init_file_sync(rotate=args.rotate)
    if getattr(args, "json", False):
        print_json(entries)
    else:
        for entry in entries:
            print(f"{entry['plugin']}: {entry['message']}")
    return EXIT_OK


def _print_report(report: SyncReport) -> None:
    for result in report.results:
        print(f"{result['plugin']}: {result['message']}")
        for warning in result["warnings"]:
            print(f"wazo-ha: warning: {warning}", file=sys.stderr)
    if not report.initialised:
        print("wazo-ha: file sync is not set up: run `wazo-ha sync init` first", file=sys.stderr)


def _terminal_progress(message: str, figures: dict) -> None:
    sys.stderr.write(f"\r{message[:100]:<100}")
    sys.stderr.flush()


def _no_progress(message: str, figures: dict) -> None:
    pass


def legacy_main(argv: list[str] | None = None) -> int:
    """``xivo-sync`` / ``wazo-sync``: sync, or ``-i``/``--init`` to set up the key."""
    parser = argparse.ArgumentParser(
        prog="wazo-sync", description="Mirror the synced directories to the slave.", parents=[common_options()]
    )
    parser.add_argument("-i", "--init", action="store_true", help="set up the sync key on the slave")
    args = parser.parse_args(argv)
    args.json = args.strict = False
    args.rotate = False
    if args.init:
        return run(cmd_sync_init, args)
    return run(lambda parsed, engine: cmd_sync(parsed, engine, legacy=True), args)
