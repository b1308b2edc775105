"""``copy-back``: bring back to the master what the slave recorded while serving (run on the master).

Exit codes: 0 everything copied (or nothing to copy); 1 not a master, a
failed run, or items left on the slave (conflicts, problems: listed);
2 usage or settings error.

``--auto`` (the master's schedule): exit 0 whether or not a copy-back was
owed or ran and succeeded, and when another check (``wazo-ha follow``'s)
is running; 1 when the attempt it made failed or left items (it is retried
at a later check, with back-off). ``--wait`` applies to a copy-back run by
hand; the automatic one waits up to 120 s for a file sync in progress.
"""

from __future__ import annotations

from .common import EXIT_FAILED, EXIT_OK, add_lock_wait_option, print_json, say_waiting

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
    parser.add_argument(
        "--auto",
        action="store_true",
        help="the schedule's check: run it only if one is owed (the slave served) and due (back-off); "
        "see docs/copy_back.rst",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_lock_wait_option(parser)  # a file sync (the follower's) or another copy-back holding the lock
    parser.set_defaults(handler=cmd_copy_back)


def cmd_copy_back(args, engine: HAEngine) -> int:
    if args.auto:
        return cmd_check(args, engine)
    report = engine.copy_back(dry_run=args.dry_run, lock_wait=getattr(args, "wait", 0.0), lock_waiting=say_waiting)
    if args.json:
        print_json(
            {
                "outcome": report.outcome,
                "message": report.message,
                "figures": report.figures,
                "warnings": report.warnings,
                "notices": report.notices,
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
        for notice in report.notices:
            print(f"  warning (files are safe): {notice}")
    return EXIT_FAILED if report.warnings and not args.dry_run else EXIT_OK


def cmd_check(args, engine: HAEngine) -> int:
    if args.dry_run:
        print("copy-back: --auto and --dry-run cannot be combined")
        return 2
    from ..errors import AlreadyRunning

    try:
        result = engine.copy_back_check()
    except AlreadyRunning as exc:  # the follower's check (or another scheduled one) runs: it does this work
        result = {"owed": None, "ran": False, "why": f"skipped: {exc}"}
        if args.json:
            print_json(result)
        elif not getattr(args, "quiet", False):
            print(f"copy-back check: {result['why']}")
        return EXIT_OK
    if args.json:
        print_json(result)
    elif not getattr(args, "quiet", False):  # cron mails any output: the journal and the notifier tell instead
        what = f"{result['outcome']}: {result.get('message', '')}" if result.get("ran") else result["why"]
        print(f"copy-back check: {'owed' if result['owed'] else 'nothing owed'}; {what}")
    return EXIT_FAILED if result.get("ran") and result.get("outcome") != "ok" else EXIT_OK
