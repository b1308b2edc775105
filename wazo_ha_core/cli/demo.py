"""``demo``: two Wazo-like nodes on this machine, HA enabled, a failover and a failback, then all removed.

The work is done by :mod:`wazo_ha_rig.demo`, imported only when the command
runs: the rest of the CLI never needs the rig. The demo builds its own nodes
and settings, so it does not read this machine's settings file or store.
"""

from __future__ import annotations

import argparse
import sys

from .common import EXIT_FAILED, EXIT_USAGE


def register(commands, common) -> None:
    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="show HA on two throwaway nodes (network namespaces) on this machine; root, about a minute",
        description=(
            "Build a master and a slave as network namespaces in 10.203.7.0/24, each with PostgreSQL "
            "loaded with Wazo's schema; enable HA, replicate, sync, cut the master, fail over and back; "
            "print a summary and remove everything (also on Ctrl-C). Run as root on Debian 12."
        ),
    )
    demo.add_argument(
        "--fixtures",
        metavar="DIR",
        help="directory holding asterisk-schema.sql and asterisk-populate-data.sql "
        "(default: $WAZO_HA_FIXTURES, else shared/fixtures beside the current directory or a parent)",
    )
    demo.add_argument(
        "--stability",
        type=_seconds,
        default=10.0,
        metavar="SECONDS",
        help="stability window before the failback (default 10; 30 in production)",
    )
    demo.add_argument(
        "--no-install", dest="install", action="store_false", help="fail instead of installing missing packages"
    )
    demo.set_defaults(standalone=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from wazo_ha_core.logs import setup_logging

    setup_logging(getattr(args, "verbose", False), getattr(args, "quiet", False))
    try:
        from wazo_ha_rig import demo, schema_fixture
    except ImportError as exc:
        print(f"wazo-ha: the demo needs the rig package wazo_ha_rig (installed with wazo-ha): {exc}", file=sys.stderr)
        return EXIT_FAILED
    try:
        schema_files = schema_fixture.find(args.fixtures)
    except schema_fixture.FixtureNotFound as exc:
        print(f"wazo-ha: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return demo.Demo(schema_files, stability=args.stability, install=args.install, out=_print).run()


def _print(line: str) -> None:
    print(line, flush=True)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not 0 < value <= 300:
        raise argparse.ArgumentTypeError(f"must be between 0 and 300 seconds, got {text!r}")
    return value
