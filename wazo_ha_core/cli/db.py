"""``db upgrade|status``: the state store's schema."""

from __future__ import annotations

from .common import EXIT_FAILED, EXIT_OK

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    db = commands.add_parser("db", parents=[common], help="the state store's schema")
    actions = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    actions.add_parser("upgrade", parents=[common], help="migrate the store to this version").set_defaults(
        handler=cmd_db_upgrade
    )
    actions.add_parser("status", parents=[common], help="the store's revision").set_defaults(handler=cmd_db_status)


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
