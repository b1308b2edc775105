"""``slave-changes show|export FILE``: configuration edits made on the slave that a replication would overwrite."""

from __future__ import annotations

from .common import EXIT_OK, print_json

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing
if TYPE_CHECKING:
    from ..engine import HAEngine


def register(commands, common) -> None:
    group = commands.add_parser(
        "slave-changes",
        parents=[common],
        help="configuration edits made on the slave since the last copy (master only)",
    )
    actions = group.add_subparsers(dest="slave_changes_action", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show", parents=[common], help="per table: rows added, changed, removed on the slave, with their values"
    )
    show.add_argument("--json", action="store_true", help="machine-readable listing")
    show.set_defaults(handler=cmd_show)
    export = actions.add_parser(
        "export", parents=[common], help="write SQL that replays the slave's edits on the master (to review first)"
    )
    export.add_argument("file", help="the SQL file to write (mode 0600; replaced if it exists)")
    export.set_defaults(handler=cmd_export)


def cmd_show(args, engine: HAEngine) -> int:
    from ..slave_changes import format_changes

    listing = engine.slave_changes()
    if args.json:
        print_json([{key: value for key, value in backend.items() if key != "sql"} for backend in listing])
    else:
        print(format_changes(listing))
    return EXIT_OK


def cmd_export(args, engine: HAEngine) -> int:
    from pathlib import Path

    from ..slave_changes import write_export

    count = write_export(engine.slave_changes(), Path(args.file))
    print(
        f"wrote {args.file}: the slave's edits of {count} table(s); review it, then on the master "
        f"`psql asterisk -v ON_ERROR_STOP=1 -f {args.file}`"
    )
    return EXIT_OK
