"""``follow``: on the master, replicate and sync within seconds of a change (long-running, for systemd)."""

from __future__ import annotations

from .common import run_until_signalled

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    follow = commands.add_parser(
        "follow",
        parents=[common],
        help="on the master: replicate and sync within seconds of a change (long-running; cron stays the fallback)",
    )
    follow.set_defaults(handler=cmd_follow)


def cmd_follow(args, engine: HAEngine) -> int:
    return run_until_signalled(args, engine.follower())
