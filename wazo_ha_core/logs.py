"""Logging: Wazo's format, to stderr for people and to the log file for the record.

stderr shows warnings (``--verbose``: everything, ``--quiet``: errors only),
except those logged with :data:`REPORTED`, which the command prints itself;
the log file (``paths.log_file``, rotated by the shipped logrotate file) gets
info and above (``--verbose``: debug). A log file that cannot be opened is
reported on stderr and otherwise ignored: logging must never stop a failover.
"""

from __future__ import annotations

import logging
from pathlib import Path

#: Wazo's log line format (as in its other daemons).
LOG_FORMAT = "%(asctime)s [%(process)d] (%(levelname)s) (%(name)s): %(message)s"

#: ``log.warning(..., extra=REPORTED)``: the caller reports this itself (an exception it
#: raises, a warning it returns), so the command line prints it once, as its own
#: ``wazo-ha:`` line; the log file still gets the record.
REPORTED = {"wazo_ha_reported": True}


class _NotReported(logging.Filter):
    """Keeps off the console the records whose content the command prints itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "wazo_ha_reported", False)


def setup_logging(verbose: bool, quiet: bool, log_file: Path | None = None) -> None:
    """(Re)configure the root logger; safe to call more than once in a process."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "wazo_ha", False)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    formatter = logging.Formatter(LOG_FORMAT)
    console = logging.StreamHandler()
    console.setLevel(logging.DEBUG if verbose else logging.ERROR if quiet else logging.WARNING)
    console.setFormatter(formatter)
    if not verbose:
        console.addFilter(_NotReported())
    console.wazo_ha = "console"
    root.addHandler(console)
    if log_file is None:
        return
    try:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        log_file.chmod(0o640)
    except OSError as exc:
        logging.getLogger(__name__).warning("cannot write the log file %s: %s", log_file, exc)
        return
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(formatter)
    handler.wazo_ha = "file"
    root.addHandler(handler)


def show_info_on_console() -> None:
    """Long-running commands (the watch) report each state change on stderr, e.g. to systemd's journal."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "wazo_ha", None) == "console" and handler.level > logging.INFO:
            handler.setLevel(logging.INFO)
