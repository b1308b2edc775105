"""Edit step: the per-role schedules, installed while HA is enabled and removed on disable.

* master → ``wazo-ha replicate``, ``wazo-ha sync`` and ``wazo-ha copy-back
  --auto`` (the automatic copy-back's check) every ``schedules.master_interval``
  minutes (default 1; 60 is today's "hourly at :00"), as a cron file
  (``schedules.kind: cron``) or three systemd timers.
* master in coordinated mode (a coordinator other than ``none``) → also
  ``wazo-ha-watch.service``: it holds the leader lock, without which the
  master does not serve;
* master, with ``follow.enabled`` (the default), also ``wazo-ha follow`` as
  the systemd service ``wazo-ha-follow.service`` (whatever ``schedules.kind``:
  a long-running process is a service, never a cron line); the schedule
  above stays as its fallback (docs/follow.rst).
* slave → ``wazo-ha watch`` as the systemd service ``wazo-ha-watch.service``
  (``schedules.slave_mode: watch``) or ``wazo-ha check`` every minute from a
  cron file (``check``).

Cron files keep today's names (``xivo-ha-master``, ``xivo-ha-slave``) so an
upgrade replaces the old schedule instead of running it twice. Files are
written atomically under ``root`` and only when their content changes; the
units are (de)activated with ``schedules.systemctl`` only when something
changed. Undo puts every file back exactly and reverses the activations.
"""

from __future__ import annotations

import logging
import re
import shlex
from pathlib import Path

from .config import HASettings
from .edit import EditStep
from .errors import EditStepError
from .managed_files import ExactSnapshot, remove_file, replace_file
from .setting_checks import control_problem, executable_problem
from .settings import DEFAULT_CONFIG_FILE
from .step_commands import run_step_command

log = logging.getLogger(__name__)

CRON_MASTER, CRON_SLAVE = "xivo-ha-master", "xivo-ha-slave"
TIMERS = ("wazo-ha-replicate.timer", "wazo-ha-sync.timer", "wazo-ha-copy-back.timer")
#: What the master's schedule runs, one job each (the same order as TIMERS). ``copy-back --auto`` is the
#: automatic copy-back's check: it runs a copy-back only when the slave served and gave back (docs/copy_back.rst).
MASTER_ACTIONS = ("replicate", "sync", "copy-back --auto")
WATCH = "wazo-ha-watch.service"
FOLLOW = "wazo-ha-follow.service"
HEADER = "# Written by wazo-ha for the HA role {role}; rewritten or removed on every HA edit. Do not edit.\n"


class Schedules:
    """What files (and active units) a role needs, from settings."""

    def __init__(self, settings):
        self.settings = settings
        self.cron_dir: Path = settings.path("cron_dir")
        self.systemd_dir: Path = settings.path("systemd_dir")

    def all_paths(self) -> list[Path]:
        units = [f"{name[: -len('.timer')]}.{kind}" for name in TIMERS for kind in ("service", "timer")]
        return [self.cron_dir / CRON_MASTER, self.cron_dir / CRON_SLAVE] + [
            self.systemd_dir / unit for unit in (*units, WATCH, FOLLOW)
        ]

    def active_units(self) -> list[str]:
        """The units our files on disk would have active (what an earlier edit enabled)."""
        return [path.name for path in self.all_paths() if path.name in (*TIMERS, WATCH, FOLLOW) and path.exists()]

    def wanted(self, ha: HASettings) -> tuple[dict[Path, str], list[str]]:
        """(file → content, units to activate) for ``ha``."""
        files: dict[Path, str] = {}
        units: list[str] = []
        header = HEADER.format(role=ha.node_type)
        if ha.node_type == "master":
            if self.settings.get("schedules.kind") == "cron":
                when = cron_interval(int(self.settings.get("schedules.master_interval")))
                files[self.cron_dir / CRON_MASTER] = (
                    header + _cron_env() + "".join(f"{when} root {self.command(action)}\n" for action in MASTER_ACTIONS)
                )
            else:
                calendar = timer_calendar(int(self.settings.get("schedules.master_interval")))
                for timer, action in zip(TIMERS, MASTER_ACTIONS, strict=True):
                    service = timer.replace(".timer", ".service")
                    files[self.systemd_dir / service] = header + _oneshot_unit(action, self.unit_command(action))
                    files[self.systemd_dir / timer] = header + _timer_unit(action, calendar)
                    units.append(timer)
            from .coordination.config import coordinated

            if coordinated(self.settings.tree):  # the preferred node serves only while its watch holds the lock
                files[self.systemd_dir / WATCH] = header + _watch_unit(self.unit_command("watch"))
                units.append(WATCH)
            if self.settings.get("follow.enabled"):
                files[self.systemd_dir / FOLLOW] = header + _follow_unit(self.unit_command("follow"))
                units.append(FOLLOW)
        elif ha.node_type == "slave":
            if self.settings.get("schedules.slave_mode") == "check":
                files[self.cron_dir / CRON_SLAVE] = header + _cron_env() + f"* * * * * root {self.command('check')}\n"
            else:
                files[self.systemd_dir / WATCH] = header + _watch_unit(self.unit_command("watch"))
                units.append(WATCH)
        return files, units

    def argv(self, action: str) -> list[str]:
        """The argument list a schedule runs for ``action``; refuses what no cron line or unit can hold."""
        argv = [self.settings.get("schedules.command")]
        config = self.settings.sources[0] if self.settings.sources else None
        if config and config != DEFAULT_CONFIG_FILE:
            argv += ["--config", config]
        # Both were checked at load time (the --config path by Settings.load); again here, where they are written.
        for label, problem in (
            ("schedules.command", executable_problem(argv[0])),
            ("--config", control_problem(config or "")),
        ):
            if problem:
                raise EditStepError(f"{label}: {problem}")
        return [*argv, *action.split(), "--quiet"]

    def command(self, action: str) -> str:
        """The command for a cron line (``cron_command``); see :meth:`unit_command` for a unit."""
        return cron_command(self.argv(action))

    def unit_command(self, action: str) -> str:
        return systemd_command(self.argv(action))


# Characters a word may hold bare in a systemd command line (no quoting, no specifier, no variable).
_SYSTEMD_BARE = re.compile(r"[A-Za-z0-9_+=:,./@-]+")


def cron_command(argv: list[str]) -> str:
    """``argv`` as the command field of a cron line: ``/bin/sh -c`` reads back exactly ``argv``.

    cron first cuts the command at the first unescaped ``%`` (crontab(5)) and
    turns ``\\%`` into ``%``: each ``%`` is written ``\\%`` outside any shell
    quotes, and the pieces around it are shell-quoted (a quoted piece ends with
    ``'``, a bare one holds no backslash, so no backslash ever precedes our
    ``\\%``). Control characters must have been refused before.
    """
    return " ".join(_cron_word(word) for word in argv)


def _cron_word(word: str) -> str:
    if word == "":
        return "''"
    return "\\%".join(shlex.quote(piece) if piece else "" for piece in word.split("%"))


def systemd_command(argv: list[str]) -> str:
    """``argv`` as an ``ExecStart=`` value, per systemd.service "Command lines" and systemd.syntax.

    Specifiers are expanded on the whole line first (``%`` is written ``%%``),
    then the line is split into words (a word that is not plainly safe is
    double-quoted, ``\\`` and ``"`` escaped C-style), then each word's ``$``
    variables are substituted (``$`` is written ``$$``). The executable comes
    first, bare (it is an absolute path checked by the caller, so no ``-@:+!`` prefix).
    """
    return " ".join(_systemd_word(word) for word in argv)


def _systemd_word(word: str) -> str:
    # The executable takes no variables (see Schedules.argv): its '$' never needs doubling; arguments' do.
    if _SYSTEMD_BARE.fullmatch(word) and not word.startswith("@"):
        return word
    escaped = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return f'"{escaped}"'


def _was_present(snapshots: list[ExactSnapshot], unit: str) -> bool:
    return any(snapshot.path.name == unit and snapshot.content is not None for snapshot in snapshots)


def _changed(unit: str, changed_units: list[str]) -> bool:
    """A timer's or the watch's own file, or (for a timer) its service, was rewritten."""
    return unit in changed_units or unit.replace(".timer", ".service") in changed_units


def cron_interval(minutes: int) -> str:
    if minutes == 1:
        return "* * * * *"
    if minutes == 60:
        return "0 * * * *"  # hourly at :00, as Wazo does today
    return f"*/{minutes} * * * *"


def timer_calendar(minutes: int) -> str:
    if minutes == 60:
        return "*-*-* *:00:00"
    return f"*-*-* *:00/{minutes}:00"


def _cron_env() -> str:
    return "SHELL=/bin/sh\nPATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"


def _oneshot_unit(action: str, command: str) -> str:
    return f"[Unit]\nDescription=wazo-ha {action} (HA master)\n\n[Service]\nType=oneshot\nExecStart={command}\n"


def _timer_unit(action: str, calendar: str) -> str:
    return (
        f"[Unit]\nDescription=wazo-ha {action} on schedule (HA master)\n\n"
        f"[Timer]\nOnCalendar={calendar}\nAccuracySec=1s\n\n"
        "[Install]\nWantedBy=timers.target\n"
    )


def _watch_unit(command: str) -> str:
    # KillMode=process: the fence guard the watch starts (coordinated mode) must outlive a watch that crashed,
    # so that it still stops telephony before the lease can expire; the watch stops telephony itself on SIGTERM.
    return (
        "[Unit]\nDescription=wazo-ha watch: take over telephony when the HA master fails\n"
        "After=network-online.target postgresql.service\nWants=network-online.target\n\n"
        f"[Service]\nType=simple\nExecStart={command}\nRestart=always\nRestartSec=5\nKillMode=process\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


def _follow_unit(command: str) -> str:
    return (
        "[Unit]\nDescription=wazo-ha follow: replicate and sync within seconds of a change (HA master)\n"
        "After=network-online.target postgresql.service\nWants=network-online.target\n\n"
        f"[Service]\nType=simple\nExecStart={command}\nRestart=always\nRestartSec=5\n\n"
        "[Install]\nWantedBy=multi-user.target\n"
    )


class ScheduleStep(EditStep):
    name = "schedules"

    def __init__(self, settings):
        self.settings = settings
        self.schedules = Schedules(settings)
        self.snapshots: list[ExactSnapshot] = []
        self.done: dict[str, list[str]] = {}

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.snapshots, self.done = [], {}
        if not self.settings.get("schedules.enabled"):
            log.info("schedules left alone (schedules.enabled is false)")
            return
        files, units = self.schedules.wanted(after)
        units_before = [unit for unit in self.schedules.active_units() if unit not in units]
        snapshots = [ExactSnapshot.take(path) for path in self.schedules.all_paths()]
        done: dict[str, list[str]] = {"stopped": [], "started": [], "restarted": []}
        try:
            if units_before:
                self._systemctl("disable", "--now", *units_before)
                done["stopped"] = units_before
            changed_units, written, removed = [], [], []
            for path in self.schedules.all_paths():
                if path in files:
                    changed = replace_file(path, files[path].encode(), 0o644)
                    if changed:
                        written.append(str(path))
                else:
                    changed = remove_file(path)
                    if changed:
                        removed.append(str(path))
                if changed and path.parent == self.schedules.systemd_dir:
                    changed_units.append(path.name)
            if changed_units:
                self._systemctl("daemon-reload")
            new = [unit for unit in units if unit in changed_units and not _was_present(snapshots, unit)]
            rewritten = [unit for unit in units if unit not in new and _changed(unit, changed_units)]
            if new:
                self._systemctl("enable", "--now", *new)
                done["started"] = new
            if rewritten:
                self._systemctl("restart", *rewritten)
                done["restarted"] = rewritten
        except Exception:
            self._put_back(snapshots, done)
            raise
        self.snapshots, self.done = snapshots, done
        _log_changes(written, removed, done)

    def undo(self, before: HASettings, after: HASettings) -> None:
        if self.snapshots:
            self._put_back(self.snapshots, self.done)

    def _put_back(self, snapshots: list[ExactSnapshot], done: dict[str, list[str]]) -> None:
        """Reverse what apply did; every part is tried even if one fails (files first of all)."""
        if done["started"]:
            self._best_effort("disable", "--now", *done["started"])
        for snapshot in snapshots:
            snapshot.restore()
        if any(done.values()):
            self._best_effort("daemon-reload")
        if done["restarted"]:
            self._best_effort("restart", *done["restarted"])
        if done["stopped"]:
            self._best_effort("enable", "--now", *done["stopped"])

    def _best_effort(self, *args: str) -> None:
        try:
            self._systemctl(*args)
        except EditStepError as exc:
            log.error("while putting the schedules back: %s", exc)

    def _systemctl(self, *args: str) -> None:
        argv = [*self.settings.get("schedules.systemctl"), *args]
        run_step_command(argv, "schedules.systemctl", float(self.settings.get("timeouts.command")))


def _log_changes(written: list[str], removed: list[str], done: dict[str, list[str]]) -> None:
    parts = [f"wrote {', '.join(written)}"] if written else []
    parts += [f"removed {', '.join(removed)}"] if removed else []
    parts += [f"{action} {', '.join(units)}" for action, units in done.items() if units]
    if parts:
        log.info("schedules: %s", "; ".join(parts))


SHIPPED_HEADER = (
    "# Shipped with wazo-ha (contrib/{path}); generated from wazo_ha_core/schedules.py by contrib/gen_units.py.\n"
    "# Enabling HA writes the same file itself ({installed}); install by hand only to run without the edit step.\n"
)


def shipped_files() -> dict[str, str]:
    """``contrib/`` path → content: the units and cron files the edit step writes, with the default settings."""
    from .settings import Settings

    shipped: dict[str, str] = {}
    for kind, slave_mode in (("systemd", "watch"), ("cron", "check")):
        settings = Settings.from_tree({"schedules": {"kind": kind, "slave_mode": slave_mode}})
        schedules = Schedules(settings)
        for role in ("master", "slave"):
            files, _ = schedules.wanted(HASettings(role, "192.0.2.1"))
            for path, content in files.items():
                folder = "systemd" if path.parent == schedules.systemd_dir else "cron.d"
                body = content.split("\n", 1)[1]  # the per-edit header does not apply to a shipped file
                shipped[f"{folder}/{path.name}"] = (
                    SHIPPED_HEADER.format(path=f"{folder}/{path.name}", installed=path) + body
                )
    return shipped
