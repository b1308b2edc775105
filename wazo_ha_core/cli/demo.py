"""``demo``: Wazo-like nodes on this machine, HA shown end to end, then all removed.

Two nodes (the default): HA enabled, replication, follow mode, a failover and a
failback, a planned switchover and switchback. ``--nodes 3 --coordinator etcd``:
three nodes and a three-member etcd, the partition two nodes split on and the
coordinated mode not splitting.

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
        help="show HA on throwaway nodes (network namespaces) on this machine; root, about a minute",
        description=(
            "Build a master and a slave as network namespaces in 10.203.7.0/24, each with PostgreSQL "
            "loaded with Wazo's schema; enable HA, replicate, follow, cut the master, fail over and back, "
            "switch over and back; print a summary and remove everything (also on Ctrl-C). "
            "With --nodes 3 --coordinator etcd: three nodes and a three-member etcd in 10.203.23.0/24, "
            "a master-slave link cut in two-node mode (a split) and in coordinated mode (none). "
            "Run as root on Debian 12."
        ),
    )
    demo.add_argument(
        "--nodes",
        default="2",
        metavar="N",
        help="2 (master and slave, the default) or 3 (with --coordinator etcd)",
    )
    demo.add_argument(
        "--coordinator",
        default="none",
        metavar="NAME",
        help="none (two-node mode, the default) or etcd (three etcd members; needs --nodes 3)",
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
        default=None,
        metavar="SECONDS",
        help="stability window before a failback (default 10 with two nodes, 5 with three; 30 in production)",
    )
    demo.add_argument(
        "--no-install", dest="install", action="store_false", help="fail instead of installing missing packages"
    )
    demo.set_defaults(standalone=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from wazo_ha_core.logs import setup_logging

    setup_logging(getattr(args, "verbose", False), getattr(args, "quiet", False))
    problem = layout_problem(args.nodes, args.coordinator)
    if problem:
        print(f"wazo-ha demo: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        from wazo_ha_rig import demo, schema_fixture
    except ImportError as exc:
        print(f"wazo-ha: the demo needs the rig package wazo_ha_rig (installed with wazo-ha): {exc}", file=sys.stderr)
        return EXIT_FAILED
    if args.nodes == "3":
        from wazo_ha_rig.demo_coordinated import CoordinatedDemo

        return CoordinatedDemo(stability=args.stability or 5.0, install=args.install, out=_print).run()
    try:
        schema_files = schema_fixture.find(args.fixtures)
    except schema_fixture.FixtureNotFound as exc:
        print(f"wazo-ha: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return demo.Demo(schema_files, stability=args.stability or 10.0, install=args.install, out=_print).run()


NODES = ("2", "3")
COORDINATORS = ("none", "etcd")


def layout_problem(nodes: str, coordinator: str) -> str | None:
    """Why ``--nodes``/``--coordinator`` cannot run together (``None``: they can). Nothing is built before."""
    if nodes not in NODES:
        return f"--nodes must be 2 or 3, got {_shown(nodes)}"
    if coordinator not in COORDINATORS:
        return f"--coordinator must be none or etcd, got {_shown(coordinator)}"
    if coordinator == "etcd" and nodes != "3":
        return "--coordinator etcd needs --nodes 3 (a three-member etcd and three Wazo nodes; got --nodes 2)"
    if nodes == "3" and coordinator != "etcd":
        return (
            "--nodes 3 needs --coordinator etcd: without a coordinator HA has one master and one slave "
            "(got --coordinator none)"
        )
    return None


def _shown(value: str) -> str:
    return repr(value if len(value) <= 40 else value[:40] + "...")


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
