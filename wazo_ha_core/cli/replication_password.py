"""``replication-password show|import``: the same replication password on both nodes.

The master generates it when it becomes master; copy it to the slave once::

    master# wazo-ha replication-password show
    slave#  wazo-ha replication-password import      (paste it, or pipe it over ssh)

Over ssh, name the executable by its full path (a non-interactive ssh session has a
short ``PATH``) and, when the slave's settings are not ``/etc/wazo-ha/config.yml``,
pass ``--config`` (``$WAZO_HA_CONFIG`` does not cross ssh)::

    master# wazo-ha replication-password show | ssh root@SLAVE /usr/bin/wazo-ha replication-password import

It is read from stdin (a hidden prompt on a terminal), never from arguments.
"""

from __future__ import annotations

import getpass
import sys

from .common import EXIT_FAILED, EXIT_OK, UsageError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    password = commands.add_parser(
        "replication-password", parents=[common], help="the replication password shared by both nodes"
    )
    actions = password.add_subparsers(dest="password_command", metavar="ACTION", required=True)
    actions.add_parser("show", parents=[common], help="print it (on the master, to copy it)").set_defaults(
        handler=cmd_show
    )
    actions.add_parser(
        "import", parents=[common], help="store the master's password, read from stdin (on the slave)"
    ).set_defaults(handler=cmd_import)


def cmd_show(args, engine: HAEngine) -> int:
    path = engine.settings.path("replication_password")
    from .. import replication_password

    password = replication_password.read(path)
    if password is None:
        print(
            f"wazo-ha: no replication password in {path}: it is generated when this node becomes master",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(password)
    return EXIT_OK


def cmd_import(args, engine: HAEngine) -> int:
    if sys.stdin.isatty():
        password = getpass.getpass("replication password (from `wazo-ha replication-password show` on the master): ")
    else:
        password = sys.stdin.readline()
    password = password.strip()
    if not password:
        raise UsageError("no password given on stdin")
    role_updated = engine.import_replication_password(password)
    path = engine.settings.path("replication_password")
    # Over ssh the settings file is easy to get wrong (no $WAZO_HA_CONFIG there): say which one was used.
    sources = ", ".join(engine.settings.sources) or "none found, the defaults"
    print(
        f"replication password stored in {path} (settings: {sources})"
        + ("; the replication role now uses it" if role_updated else "")
    )
    return EXIT_OK
