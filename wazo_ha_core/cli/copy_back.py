"""``copy-back``: bring back to the master what the slave recorded while serving (run on the master).

Exit codes: 0 everything copied (or nothing to copy); 1 not a master, a
failed run, or items left on the slave (conflicts, problems: listed);
2 usage or settings error.
"""

from __future__ import annotations

from .common import EXIT_FAILED, EXIT_OK, print_json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from ..engine import HAEngine


def register(commands, common) -> None:
    parser = commands.add_parser(
        "copy-back",
        parents=[common],
        help="pull the voicemail, recordings and cel/queue_log rows the slave recorded while serving (master only)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="list what would move; writes nothing but the staging copy on this node",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(handler=cmd_copy_back)


def cmd_copy_back(args, engine: HAEngine) -> int:
    report = engine.copy_back(dry_run=args.dry_run)
    if args.json:
        print_json(
            {
                "outcome": report.outcome,
                "message": report.message,
                "figures": report.figures,
                "warnings": report.warnings,
                "would_copy": report.would_copy,
            }
        )
    else:
        print(f"copy-back: {report.message}")
        for key, value in sorted(report.figures.items()):
            print(f"  {key}: {value}")
        for path in report.would_copy:
            print(f"  would copy {path}")
        for warning in report.warnings:
            print(f"  warning: {warning}")
    return EXIT_FAILED if report.warnings and not args.dry_run else EXIT_OK
