"""What every command shares: exit codes, error handling, logging set-up, output helpers.

Exit codes: 0 done, 1 the operation failed, 2 usage, validation or settings
error. Errors are one line on stderr, never a traceback (``--verbose`` adds
the traceback for bug reports).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from ..errors import SettingsError, ValidationError, WazoHAError

TYPE_CHECKING = False  # as typing.TYPE_CHECKING, without importing typing (a third of a bare start)
if TYPE_CHECKING:  # imported by run(): parsing the command line (and --help) needs none of them
    from typing import Any

    from ..engine import HAEngine
    from ..settings import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130

Handler = Callable[[argparse.Namespace, "HAEngine"], int]


class UsageError(Exception):
    """A command line that parses but makes no sense (exit 2)."""


def common_options() -> argparse.ArgumentParser:
    """Options every command accepts, before or after the command name."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="settings file (default /etc/wazo-ha/config.yml, or $WAZO_HA_CONFIG)",
    )
    verbosity = common.add_mutually_exclusive_group()
    verbosity.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log debug details")
    verbosity.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="log errors only")
    return common


#: How long ``wazo-ha replicate``, ``sync`` and ``copy-back`` wait for a run holding their lock (the follower's, a
#: scheduled one): a follower's copy ends in seconds, a first copy of a large site in minutes.
DEFAULT_LOCK_WAIT = 120.0
MAX_LOCK_WAIT = 3600.0


def add_lock_wait_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait",
        type=_lock_wait,
        default=DEFAULT_LOCK_WAIT,
        metavar="SECONDS",
        help="when another run (the follower's, a scheduled one) holds the lock, wait up to SECONDS for it to end"
        f" (default {DEFAULT_LOCK_WAIT:g}; 0: refuse at once)",
    )


def _lock_wait(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_LOCK_WAIT:  # also refuses nan and inf
        raise argparse.ArgumentTypeError(f"--wait must be seconds from 0 to {MAX_LOCK_WAIT:g}, got {text[:40]!r}")
    return value


def say_waiting(message: str) -> None:
    """Told once by a run that finds its lock held and waits (``--wait``)."""
    print(f"wazo-ha: {message}", file=sys.stderr, flush=True)


def run_until_signalled(args: argparse.Namespace, loop) -> int:
    """A long-running command (``watch``, ``follow``): ``loop.run(stop)`` until SIGTERM or SIGINT sets ``stop``.

    Its state changes are logged on stderr (systemd's journal) unless ``--quiet``.
    """
    import signal  # the long-running commands only: not to build the parser
    import threading

    if not getattr(args, "quiet", False):
        from ..logs import show_info_on_console

        show_info_on_console()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    loop.run(stop)
    return EXIT_OK


def run(
    handler: Handler, args: argparse.Namespace, engine_factory: Callable[[Settings], HAEngine] | None = None
) -> int:
    """Load the settings, build the engine (default :class:`HAEngine`), run ``handler``; errors become exit codes.

    A handler with a ``without_engine(args, settings)`` attribute is offered the settings first (with the
    default engine only): it returns an exit code when it could do its work without the engine (and so
    without SQLAlchemy), ``None`` to have ``handler`` run as usual.
    """
    from ..logs import setup_logging
    from ..settings import Settings

    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    setup_logging(verbose, quiet)
    try:
        settings = Settings.load(getattr(args, "config", None))
        setup_logging(verbose, quiet, settings.path("log_file"))
        shortcut = getattr(handler, "without_engine", None)
        code = shortcut(args, settings) if shortcut is not None and engine_factory is None else None
        if code is None:
            if engine_factory is None:
                from ..engine import HAEngine as engine_factory
            code = handler(args, engine_factory(settings))
        sys.stdout.flush()  # here, where a reader that went away is caught below, not at interpreter exit
        return code
    except ValidationError as exc:
        for field, message in sorted(exc.errors.items()):
            print(f"wazo-ha: invalid {field}: {message}", file=sys.stderr)
        print("wazo-ha: nothing was changed", file=sys.stderr)
        return EXIT_USAGE
    except (SettingsError, UsageError) as exc:
        print(f"wazo-ha: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except WazoHAError as exc:
        fail(str(exc), verbose)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("wazo-ha: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader stopped reading (`wazo-ha status | head -1`): what it wanted, not a failure.
        _discard_stdout()
        return EXIT_OK
    except Exception as exc:
        if not _is_store_error(exc):
            raise
        fail(f"state store error: {str(getattr(exc, 'orig', None) or exc).strip().splitlines()[0]}", verbose)
        return EXIT_FAILED


def _is_store_error(exc: Exception) -> bool:
    """An SQLAlchemy error; asked without importing SQLAlchemy (a command that never loaded it raised none)."""
    errors = sys.modules.get("sqlalchemy.exc")
    return errors is not None and isinstance(exc, errors.SQLAlchemyError)


def _discard_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush does not fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def fail(message: str, verbose: bool) -> None:
    if verbose:
        import logging  # logging is set up by run(); --help and usage errors never need it

        logging.getLogger("wazo_ha").exception("failed")
    print(f"wazo-ha: {message}", file=sys.stderr)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


#: Width of the kind column: the longest kinds (failover-refused, failback-delayed) fit.
KIND_WIDTH = 16


def print_events(events: list[dict[str, Any]]) -> None:
    for event in events:
        started = event["started_at"][:19].replace("T", " ")
        duration = f"{event['duration']:.1f}s" if event["duration"] is not None else "-"
        text = event["message"] or describe_edit(event)
        message = f"  {text}" if text else ""
        print(f"  {started}  {event['kind']:<{KIND_WIDTH}} {event['outcome']:<9} {duration:>7}{message}")


def describe_edit(event: dict[str, Any]) -> str:
    """An edit journaled without a message (older versions): what it changed, from its figures."""
    figures = event.get("figures") or {}
    if event["kind"] != "edit" or "before" not in figures or "after" not in figures:
        return ""
    return f"{_settings_text(figures['before'])} -> {_settings_text(figures['after'])}"


def _settings_text(ha: dict[str, Any]) -> str:
    return " ".join(part for part in (ha.get("node_type"), ha.get("remote_address")) if part)


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value
