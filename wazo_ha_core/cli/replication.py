"""``replicate``: copy the configuration database to the slave now; and the legacy script.

``xivo-master-slave-db-replication <slave_ip>`` keeps today's interface: one
argument, the slave's address; exit 0 when the slave holds the master's
configuration, 1 otherwise (any failure, including a bad argument).
"""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_FAILED, EXIT_OK, add_lock_wait_option, common_options, print_json, run, say_waiting

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from typing import Any

    from ..engine import HAEngine


def register(commands, common) -> None:
    replicate = commands.add_parser(
        "replicate", parents=[common], help="copy the configuration database to the slave now (master only)"
    )
    replicate.add_argument("--force", action="store_true", help="copy even when nothing changed since the last copy")
    replicate.add_argument(
        "--discard-slave-changes",
        action="store_true",
        help="overwrite configuration edits made on the slave since the last copy (see `slave-changes show`)",
    )
    replicate.add_argument("--json", action="store_true", help="machine-readable result")
    add_lock_wait_option(replicate)
    replicate.set_defaults(handler=cmd_replicate)


class TerminalProgress:
    """One self-overwriting line on a terminal (stderr); nothing when not a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.active = self.stream.isatty()
        self.shown = False

    def __call__(self, message: str, figures: dict[str, Any]) -> None:
        if not self.active:
            return
        where = f"table {figures.get('table_index', '?')}/{figures.get('tables', '?')}" if "table" in figures else ""
        line = f"replication: {message} {where} {figures.get('table', '')} {_size(figures.get('bytes', 0))}"
        self.stream.write("\r\033[K" + " ".join(line.split()))
        self.stream.flush()
        self.shown = True

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


def cmd_replicate(args, engine: HAEngine, peer: str | None = None) -> int:
    progress = TerminalProgress()
    try:
        discard = getattr(args, "discard_slave_changes", False)
        results = engine.replicate(
            peer=peer,
            force=args.force,
            progress=progress,
            discard_slave_changes=discard,
            lock_wait=getattr(args, "wait", 0.0),
            lock_waiting=say_waiting,
        )
    finally:
        progress.done()
    return _print_results(args, results)


def _print_results(args, results) -> int:
    if getattr(args, "json", False):
        print_json([{"outcome": r.outcome, "message": r.message, "figures": r.figures} for r in results])
    else:
        for result in results:
            print(result.message)
    return EXIT_OK


def replicate_without_engine(args, settings, peer: str | None = None) -> int | None:
    """A scheduled run skipped by the skip cache, without SQLAlchemy (:mod:`wazo_ha_core.skip_cache`);
    ``None``: build the engine and run the full path (forced runs and discards always do)."""
    if args.force or getattr(args, "discard_slave_changes", False):
        return None
    from ..skip_cache.fast_path import try_skip

    results = try_skip(settings, peer)
    return None if results is None else _print_results(args, results)


cmd_replicate.without_engine = replicate_without_engine


def legacy_db_replication(argv: list[str] | None = None) -> int:
    """``xivo-master-slave-db-replication <slave_ip>``: exit 0 on success, 1 on any failure."""
    parser = argparse.ArgumentParser(
        prog="xivo-master-slave-db-replication",
        description="Copy the configuration database to the slave (compatibility name of `wazo-ha replicate`).",
        parents=[common_options()],
    )
    parser.add_argument("slave_ip", help="the slave's IP address")
    parser.add_argument("--force", action="store_true", help="copy even when nothing changed since the last copy")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return EXIT_OK if exc.code == 0 else EXIT_FAILED
    import ipaddress  # not to build `wazo-ha`'s parser

    try:
        peer = str(ipaddress.ip_address(args.slave_ip))
    except ValueError:
        print(
            f"xivo-master-slave-db-replication: slave_ip must be an IP address, got {args.slave_ip!r}", file=sys.stderr
        )
        return EXIT_FAILED

    def handler(parsed, engine):
        return cmd_replicate(parsed, engine, peer=peer)

    handler.without_engine = lambda parsed, settings: replicate_without_engine(parsed, settings, peer=peer)
    code = run(handler, args)
    return EXIT_OK if code == EXIT_OK else EXIT_FAILED


def legacy_main() -> None:
    sys.exit(legacy_db_replication())
