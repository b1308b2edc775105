"""``sync``, ``sync init``, ``sync host-key show|pin``; legacy ``xivo-sync`` / ``wazo-sync``.

``sync init`` sends the slave's root password only to a host key that is
pinned (``host-key show`` on the slave piped into ``host-key pin`` here),
matches ``--host-key-fingerprint``, is confirmed with ``yes`` on a terminal,
or is accepted unverified with ``--accept-new``.

Exit codes: 0 synced (or not set up yet, as today's ``wazo-sync``); 1 not a
master, a failed transfer, a refused host key, or — with ``--strict`` — not
set up yet or a partial transfer; 2 usage or settings error.
"""

from __future__ import annotations

import argparse
import os
import sys

from .common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_lock_wait_option,
    common_options,
    print_json,
    run,
    say_waiting,
)

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # the engine imports SQLAlchemy: only the command that runs needs it
    from ..engine import HAEngine
    from ..file_sync import SyncReport

#: ``host-key pin`` reads at most this much from stdin (``host-key show`` prints a few hundred bytes).
MAX_PIN_INPUT = 64 * 1024


def register(commands, common) -> None:
    sync = commands.add_parser("sync", parents=[common], help="mirror the synced directories to the slave")
    sync.add_argument("--strict", action="store_true", help="exit 1 when not set up yet or on a partial transfer")
    sync.add_argument("--json", action="store_true", help="machine-readable output")
    add_lock_wait_option(sync)
    sync.set_defaults(handler=cmd_sync)
    actions = sync.add_subparsers(dest="sync_command", metavar="ACTION")
    init = actions.add_parser("init", parents=[common], help="set up the sync key on the slave (master only)")
    init.add_argument("--rotate", action="store_true", help="replace the key on both sides")
    init.add_argument("--peer", metavar="ADDRESS", help="which standby (N nodes: one of remote_address and standbys)")
    init.add_argument("--json", action="store_true", help="machine-readable output")
    trust = init.add_mutually_exclusive_group()
    trust.add_argument(
        "--host-key-fingerprint",
        metavar="SHA256:…",
        help="the slave's host key fingerprint, as `wazo-ha sync host-key show` prints it on the slave",
    )
    trust.add_argument(
        "--accept-new",
        action="store_true",
        help="trust an unpinned slave host key without verification (logged and journaled as a warning)",
    )
    init.set_defaults(handler=cmd_sync_init)
    host_key = actions.add_parser("host-key", parents=[common], help="show (slave) or pin (master) sshd host keys")
    host_key_actions = host_key.add_subparsers(dest="host_key_command", metavar="ACTION", required=True)
    show = host_key_actions.add_parser("show", parents=[common], help="print this node's sshd host keys (on the slave)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    show.set_defaults(handler=cmd_host_key_show)
    pin = host_key_actions.add_parser(
        "pin", parents=[common], help="pin the slave's host keys read from stdin (on the master)"
    )
    pin.add_argument("--replace", action="store_true", help="replace a pin that shares no key with the new one")
    pin.add_argument("--peer", metavar="ADDRESS", help="which standby (N nodes: one of remote_address and standbys)")
    pin.add_argument("--json", action="store_true", help="machine-readable output")
    pin.set_defaults(handler=cmd_host_key_pin)


def cmd_sync(args, engine: HAEngine, *, legacy: bool = False) -> int:
    show_progress = sys.stderr.isatty() and not args.json
    report = engine.sync_files(
        progress=_terminal_progress if show_progress else _no_progress,
        lock_wait=getattr(args, "wait", 0.0),
        lock_waiting=say_waiting,
    )
    if show_progress:
        sys.stderr.write("\n")
    if args.json:
        print_json({"initialised": report.initialised, "results": report.results})
    else:
        _print_report(report)
    if not report.initialised:
        return EXIT_FAILED if args.strict else EXIT_OK
    if report.partial and (args.strict or legacy):
        return EXIT_FAILED
    return EXIT_OK


def cmd_sync_init(args, engine: HAEngine) -> int:
    from ..extensions import PeerVerification

    verification = PeerVerification(
        fingerprint=getattr(args, "host_key_fingerprint", None),
        accept_new=getattr(args, "accept_new", False),
        confirm=_terminal_confirm if _has_terminal() else None,
    )
    entries = engine.init_file_sync(rotate=args.rotate, verification=verification, peer=getattr(args, "peer", None))
    if getattr(args, "json", False):
        print_json(entries)
    else:
        for entry in entries:
            print(f"{entry['plugin']}: {entry['message']}")
            for warning in entry["warnings"]:
                print(f"wazo-ha: warning: {warning}", file=sys.stderr)
    return EXIT_OK


def cmd_host_key_show(args, engine: HAEngine) -> int:
    entries = engine.show_host_keys()
    if args.json:
        print_json(entries)
    else:
        sys.stdout.write("".join(entry["text"] for entry in entries))
    return EXIT_OK


def cmd_host_key_pin(args, engine: HAEngine) -> int:
    if sys.stdin.isatty():
        print("paste the output of `wazo-ha sync host-key show` run on the slave, then Ctrl-D:", file=sys.stderr)
    text = sys.stdin.read(MAX_PIN_INPUT + 1)
    if not text.strip():
        raise UsageError("no host key given on stdin: pipe in the output of `wazo-ha sync host-key show`")
    entries = engine.pin_host_keys(text, replace=args.replace, peer=getattr(args, "peer", None))
    if args.json:
        print_json(entries)
    else:
        for entry in entries:
            print(f"{entry['plugin']}: {entry['message']}")
    return EXIT_OK


def _has_terminal() -> bool:
    """True when a controlling terminal can be opened to ask the operator (never guessed from stdin)."""
    try:
        os.close(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
    except OSError:
        return False
    return True


def _terminal_confirm(question: str) -> bool:
    """Ask ``question`` on the controlling terminal; only the word ``yes`` confirms (no default)."""
    try:
        with open(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY), "r+b", buffering=0) as terminal:
            terminal.write(question.encode())
            answer = terminal.readline(256)
    except OSError:
        return False
    return answer.decode(errors="replace").strip() == "yes"


def _print_report(report: SyncReport) -> None:
    for result in report.results:
        print(f"{result['plugin']}: {result['message']}")
        for warning in result["warnings"]:
            print(f"wazo-ha: warning: {warning}", file=sys.stderr)
    if not report.initialised:
        print("wazo-ha: file sync is not set up: run `wazo-ha sync init` first", file=sys.stderr)


def _terminal_progress(message: str, figures: dict) -> None:
    sys.stderr.write(f"\r{message[:100]:<100}")
    sys.stderr.flush()


def _no_progress(message: str, figures: dict) -> None:
    pass


def legacy_main(argv: list[str] | None = None) -> int:
    """``xivo-sync`` / ``wazo-sync``: sync, or ``-i``/``--init`` to set up the key."""
    parser = argparse.ArgumentParser(
        prog="wazo-sync", description="Mirror the synced directories to the slave.", parents=[common_options()]
    )
    parser.add_argument("-i", "--init", action="store_true", help="set up the sync key on the slave")
    args = parser.parse_args(argv)
    args.json = args.strict = False
    args.rotate = False
    if args.init:
        return run(cmd_sync_init, args)
    return run(lambda parsed, engine: cmd_sync(parsed, engine, legacy=True), args)
