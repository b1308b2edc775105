"""``watch``, ``check``, ``pause``, ``resume`` and the legacy ``xivo-check-master-status``."""

from __future__ import annotations

import argparse
import os
import sys

from .common import EXIT_FAILED, EXIT_OK, common_options, print_json, run, run_until_signalled

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine


def register(commands, common) -> None:
    watch = commands.add_parser(
        "watch", parents=[common], help="on the slave: watch the master, fail over and back (long-running)"
    )
    watch.set_defaults(handler=cmd_watch)

    guard = commands.add_parser(
        "fence-guard",
        parents=[common],
        help="coordinated mode: stop telephony when the watch stops renewing (long-running; the watch starts it)",
    )
    guard.set_defaults(handler=cmd_fence_guard)

    check = commands.add_parser("check", parents=[common], help="on the slave: a few rounds of the watch (for cron)")
    check.add_argument("master", nargs="?", help="the master's address (default: remote_address)")
    check.set_defaults(handler=cmd_check)

    pause = commands.add_parser("pause", parents=[common], help="stop the watch from failing over or back")
    pause.add_argument("--reason", default="", help="shown in status and the journal")
    pause.set_defaults(handler=cmd_pause)
    commands.add_parser("resume", parents=[common], help="let the watch act again").set_defaults(handler=cmd_resume)

    status = commands.add_parser("watch-status", parents=[common], help="the watch's last verdict and pause state")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_watch_status)


def cmd_watch(args, engine: HAEngine) -> int:
    return run_until_signalled(args, engine.watcher())


def cmd_fence_guard(args, engine: HAEngine) -> int:
    """Run the fence guard until SIGTERM/SIGINT; exit 0 at once when another guard runs on this node."""
    import logging
    import signal
    import threading

    guard = engine.fence_guard()
    if not guard.lock():
        print("wazo-ha: a fence guard already runs on this node")
        return EXIT_OK
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log = logging.getLogger("wazo_ha")
    log.warning("fence guard started (pid %d)", os.getpid())
    try:
        guard.run(stop)
    except BaseException:  # its stderr is /dev/null (started by the watch): leave the reason in the log
        log.exception("fence guard ended on an error")
        raise
    log.warning("fence guard stopped (pid %d)", os.getpid())
    return EXIT_OK


def cmd_check(args, engine: HAEngine) -> int:
    from ..watch import Action

    watcher = engine.watcher(args.master)
    decision = watcher.check()
    role = watcher.watch.role.value if watcher.watch else "-"
    verdict = decision.verdict.value if decision.verdict else "-"
    action = decision.action.value if decision.action is not Action.NONE else "nothing to do"
    print(f"master round {verdict}: {decision.reason}; role {role}; {action}")
    if watcher.last_action and not watcher.last_action[1]:
        print(f"wazo-ha: {watcher.last_action[0]} failed (see wazo-ha history)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def cmd_pause(args, engine: HAEngine) -> int:
    changed = engine.pause_watch(args.reason)
    print("watch paused: it keeps watching but will not fail over or back" if changed else "watch already paused")
    return EXIT_OK


def cmd_resume(args, engine: HAEngine) -> int:
    print("watch resumed" if engine.resume_watch() else "watch was not paused")
    return EXIT_OK


def cmd_watch_status(args, engine: HAEngine) -> int:
    status = engine.watch_status()
    if args.json:
        print_json(status)
        return EXIT_OK
    paused, last = status["paused"], status["last"]
    print(f"paused      {'since ' + paused['since'] + ' ' + paused['reason'] if paused else 'no'}")
    if last:
        print(f"last change {last['at']}: role {last['role']}, round {last['verdict']}: {last['reason']}")
    else:
        print("last change none recorded")
    return EXIT_OK


# --- legacy: xivo-check-master-status <master_ip> -----------------------------------------


def check_master_status_main(argv: list[str] | None = None) -> int:
    """Cron-compatible: exit 0 when checked (or not a slave), 1 when a take over/give back failed, 2 usage."""
    parser = argparse.ArgumentParser(
        prog="xivo-check-master-status",
        description="Check the master once and fail over or back (wazo-ha check).",
        parents=[common_options()],
    )
    parser.add_argument("master_ip")
    args = parser.parse_args(argv)
    return run(_legacy_check, args)


def _legacy_check(args, engine: HAEngine) -> int:
    if not engine.compat.secondary_sentinel.exists():
        print(f"{engine.compat.secondary_sentinel} is missing: this node is not a slave, nothing to check")
        return EXIT_OK
    args.master = args.master_ip
    return cmd_check(args, engine)
