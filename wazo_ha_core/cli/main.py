"""``wazo-ha``: the parser, assembled from one module per group of commands."""

from __future__ import annotations

import argparse
import sys

from . import (
    copy_back,
    db,
    demo,
    devices,
    doctor,
    follow,
    ha_settings,
    plugins,
    replication,
    replication_password,
    services,
    slave_changes,
    switchover,
    sync,
    watch,
)
from .common import common_options, run

#: Each module adds its sub-commands with ``register(commands, common)``.
COMMAND_MODULES = [
    ha_settings,
    plugins,
    db,
    replication,
    slave_changes,
    sync,
    copy_back,
    watch,
    follow,
    services,
    switchover,
    devices,
    replication_password,
    doctor,
    demo,
]


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
    parser = argparse.ArgumentParser(prog="wazo-ha", description="High availability for Wazo.", parents=[common])
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(commands, common)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    standalone = getattr(args, "standalone", None)
    if standalone is not None:  # a command that builds its own nodes (demo): no settings, no store
        return standalone(args)
    return run(args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
