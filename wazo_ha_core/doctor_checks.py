"""The core's own doctor checks, and the assembly with the plugins' checks.

Which checks run depends on the role (docs/prerequisites.rst lists them):

* every node: plugins load, schedules installed for the role, trunk
  registration expiry below 300 s (read from this node's configuration DB),
  free disk space (:mod:`.doctor_disk`), the clock offset to the peer
  (ICMP timestamps, :mod:`.doctor_clock`);
* master: the plugins' checks towards the slave (the pg_dump plugin: same
  Wazo version, slave DB UTF-8, clock offset, TCP 5432; the rsync plugin: the
  slave's sshd and its login methods, the key and its restrictions, TCP 22;
  the provd plugin: provd answers with its token);
* slave: each enabled health probe answers from here (slave → master ICMP
  with the icmp probe), this node's configuration DB is UTF-8, the
  witnesses (none configured: a warning), and the plugins' checks (the provd
  plugin: no provisioning plugins installed; the rsync plugin: what this
  node's sshd allows the master's root login).

Before enabling, ``wazo-ha doctor --as master|slave --peer ADDRESS`` runs the
checks of that role and peer (a *preflight*): instead of "schedules
installed" (enabling writes them), the configuration database answers and
the command the schedules will run exists; in both modes, a
``schedules.systemctl`` that does nothing (``true``, a stub, no systemd
running) is a warning, never reported as units enabled.
"""

from __future__ import annotations

import os
import shutil
from collections import defaultdict
from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .config import HASettings
from .config_db import config_db_engine, describe
from .doctor import Check, CheckReport, CheckResult, FunctionCheck, run_checks
from .doctor_clock import clock_offset_check
from .doctor_disk import disk_space
from .errors import PluginLoadError
from .extensions import EXTENSION_POINTS
from .schedules import Schedules

if TYPE_CHECKING:
    from .engine import HAEngine

#: Trunks must re-register at least this often so the provider learns the new node soon after a failover.
TRUNK_EXPIRY_LIMIT = 300
#: Asterisk's PJSIP ``registration`` ``expiration`` when none is set.
PJSIP_DEFAULT_EXPIRATION = 3600


def run_doctor(engine: HAEngine, planned: HASettings | None = None) -> list[CheckReport]:
    return run_checks(doctor_checks(engine, planned), float(engine.settings.get("doctor.check_timeout")))


def doctor_checks(engine: HAEngine, planned: HASettings | None = None) -> list[Check]:
    """The checks for the settings in force, or for ``planned`` ones before enabling them (preflight)."""
    ha = planned or engine.current_settings()
    role, peer = ha.node_type, ha.remote_address or None
    checks: list[Check] = [FunctionCheck("plugins loaded", lambda: plugins_loaded(engine))]
    if role == "disabled":
        checks.append(FunctionCheck("HA enabled", lambda: CheckResult.warn("HA is disabled on this node", ENABLE_FIX)))
        return checks
    if planned is not None:
        checks.append(FunctionCheck("configuration database", lambda: config_database(engine.settings)))
        checks.append(FunctionCheck("schedules command", lambda: schedules_command(engine.settings)))
    else:
        checks.append(FunctionCheck("schedules installed", lambda: schedules_installed(engine.settings, ha)))
        # Installed files that run a command which is not there (a virtualenv install) would fail every minute.
        checks.append(FunctionCheck("schedules command", lambda: schedules_command(engine.settings)))
    checks.append(FunctionCheck("systemctl", lambda: systemctl_works(engine.settings, ha)))
    checks.append(FunctionCheck("trunk registration expiry", lambda: trunk_expiry(engine.settings)))
    checks.append(FunctionCheck("disk space", lambda: disk_space(engine.settings, role)))
    if peer:
        checks.append(FunctionCheck("clock offset", lambda: clock_offset(engine.settings, peer)))
    from .coordination.config import coordinated

    if coordinated(engine.settings.tree):
        from .coordination.doctor import coordination_checks

        checks += coordination_checks(engine.settings)
    if role == "slave":
        checks.append(FunctionCheck("slave database UTF-8", lambda: local_database_utf8(engine.settings)))
        checks += probe_checks(engine, peer)
        checks += witness_checks(engine)
    checks += plugin_checks(engine, role, peer, preflight=planned is not None)
    return checks


# Role-neutral: the doctor cannot know which role this node is meant for.
ENABLE_FIX = (
    "check first with `wazo-ha doctor --as master --peer <slave>` (on the master) or "
    "`wazo-ha doctor --as slave --peer <master>` (on the slave), then enable: "
    "`wazo-ha config set node_type=master remote_address=<slave>` on the master, "
    "`wazo-ha config set node_type=slave remote_address=<master>` on the slave (or PUT /ha through wazo-confd)"
)


# --- plugins -------------------------------------------------------------------------------


def plugins_loaded(engine: HAEngine) -> CheckResult:
    reports = engine.loader.inventory()
    broken = [f"{r.group}/{r.name}: {r.error}" for r in reports if r.enabled and r.error]
    enabled = [f"{r.group}/{r.name}" for r in reports if r.enabled and not r.error]
    if broken:
        return CheckResult.fail(
            "; ".join(broken),
            "install the missing plugin or fix its settings (plugin_config.<name>), or remove it from plugins.<group>",
        )
    return CheckResult.passed(f"{len(enabled)} enabled: {', '.join(enabled) or 'none'}")


def plugin_checks(engine: HAEngine, role: str, peer: str | None, preflight: bool = False) -> list[Check]:
    """Each loaded plugin's optional ``doctor_checks(node_type, peer[, preflight])``; a plugin that fails to
    load is skipped (``plugins loaded`` reports it)."""
    checks: list[Check] = []
    for group in EXTENSION_POINTS:
        try:
            plugins = engine.loader.load(group)
        except PluginLoadError:
            continue
        for plugin in plugins:
            try:
                if preflight and _accepts_preflight(plugin.doctor_checks):
                    offered = list(plugin.doctor_checks(role, peer, preflight=True))
                else:
                    offered = list(plugin.doctor_checks(role, peer))
            except Exception as exc:  # a plugin's bug must not hide the other checks
                checks.append(_broken_offer(plugin.name, exc))
                continue
            for check in offered:
                if not check.name.startswith(f"{plugin.name}:"):
                    check.name = f"{plugin.name}: {check.name}"
                checks.append(check)
    return checks


def _accepts_preflight(method) -> bool:
    """Whether a plugin's ``doctor_checks`` takes ``preflight`` (plugins written before it existed do not)."""
    import inspect

    try:
        parameters = inspect.signature(method).parameters
    except (TypeError, ValueError):
        return False
    return "preflight" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _broken_offer(name: str, exc: Exception) -> Check:
    message = f"could not list its checks: {type(exc).__name__}: {exc}"
    return FunctionCheck(f"{name}: checks", lambda: CheckResult.fail(message, "fix the plugin's settings"))


# --- schedules -----------------------------------------------------------------------------


def schedules_installed(settings, ha) -> CheckResult:
    if not settings.get("schedules.enabled"):
        return CheckResult.warn(
            "schedules.enabled is false: nothing runs replication/sync (master) or the watch (slave) on its own",
            "set schedules.enabled: true, or make sure your own scheduler runs them",
        )
    files, units = Schedules(settings).wanted(ha)
    missing = [str(path) for path in files if not path.exists()]
    changed = [str(path) for path, content in files.items() if path.exists() and path.read_text() != content]
    fix = "re-apply the HA settings: wazo-ha config set node_type=" + ha.node_type
    if missing:
        return CheckResult.fail(f"missing: {', '.join(missing)}", fix)
    if changed:
        return CheckResult.warn(f"edited by hand (differs from what wazo-ha writes): {', '.join(changed)}", fix)
    extra = f" (units {', '.join(units)} enabled by wazo-ha)" if units else ""
    if units and systemctl_problem(settings):
        extra = f" (units {', '.join(units)} written, not enabled: see the systemctl check)"
    return CheckResult.passed(f"{', '.join(str(p) for p in files)}{extra}")


def systemctl_problem(settings) -> str | None:
    """Why ``schedules.systemctl`` would not really (de)activate units, or ``None`` when it would."""
    argv = list(settings.get("schedules.systemctl"))
    found = shutil.which(argv[0]) if argv else None
    if found is None:
        return f"schedules.systemctl {argv!r} is not found"
    real = os.path.realpath(found)
    if os.path.basename(real) != "systemctl":
        return f"schedules.systemctl runs {real}, not systemd's systemctl: it enables nothing"
    if not os.path.isdir("/run/systemd/system"):
        return "systemd is not running on this machine (no /run/systemd/system): systemctl enables nothing"
    return None


def systemctl_works(settings, ha) -> CheckResult:
    """Only when this role has systemd units: a no-op systemctl would leave them written but never run."""
    if not settings.get("schedules.enabled"):
        return CheckResult.passed("schedules.enabled is false: systemctl is not used")
    _, units = Schedules(settings).wanted(ha)
    if not units:
        return CheckResult.passed(f"no systemd unit for a {ha.node_type} with these settings (cron)")
    problem = systemctl_problem(settings)
    if problem:
        return CheckResult.warn(
            f"{problem}; the units {', '.join(units)} would not run",
            "set schedules.systemctl to systemd's systemctl on a node booted with systemd",
        )
    argv = list(settings.get("schedules.systemctl"))
    return CheckResult.passed(f"{shutil.which(argv[0])} with systemd running (units {', '.join(units)})")


def schedules_command(settings) -> CheckResult:
    """The command the units and cron files will run exists and is executable."""
    if not settings.get("schedules.enabled"):
        return CheckResult.passed("schedules.enabled is false: no schedule will run it")
    command = str(settings.get("schedules.command"))
    if os.path.isfile(command) and os.access(command, os.X_OK):
        return CheckResult.passed(f"{command} is executable")
    here = shutil.which("wazo-ha")
    hint = f" (this installation's is {here})" if here and here != command else ""
    return CheckResult.fail(
        f"the schedules would run {command}, which is not an executable file{hint}",
        "set schedules.command to the wazo-ha the schedules must run (e.g. in a virtualenv, its bin/wazo-ha)",
    )


def config_database(settings) -> CheckResult:
    """This node's configuration database answers, and with which PostgreSQL version."""
    engine = config_db_engine(settings)
    try:
        with engine.connect() as connection:
            version = connection.execute(text("SHOW server_version")).scalar_one()
    except SQLAlchemyError as exc:
        return _db_unreachable(engine, exc)
    finally:
        engine.dispose()
    return CheckResult.passed(f"{describe(engine)}: PostgreSQL {version}")


def clock_offset(settings, peer: str) -> CheckResult:
    """This node's clock against the peer's, by ICMP timestamps (:mod:`.doctor_clock`)."""
    return clock_offset_check(
        peer,
        float(settings.get("timeouts.connect")),
        float(settings.get("doctor.clock_offset_warn")),
        float(settings.get("doctor.clock_offset_fail")),
    )


# --- slave: probes and local database -------------------------------------------------------


def probe_checks(engine: HAEngine, master: str | None) -> list[Check]:
    try:
        probes = engine.loader.load("health_probes")
    except PluginLoadError:
        return []
    if not master:
        return []
    return [_ProbeCheck(probe, master) for probe in probes]


class _ProbeCheck(Check):
    def __init__(self, probe, master: str):
        self.probe, self.master = probe, master
        self.name = f"master answers {probe.name}"

    def run(self) -> CheckResult:
        try:
            answer = self.probe.probe(self.master)
        except Exception as exc:
            return CheckResult.fail(
                f"the {self.probe.name} probe itself is broken: {exc}", f"fix plugin_config.{self.probe.name}"
            )
        if answer.up:
            latency = f" in {answer.latency * 1000:.1f} ms" if answer.latency is not None else ""
            return CheckResult.passed(f"{self.master} answered{latency}")
        what = "ICMP echo (ping)" if self.probe.name == "icmp" else f"the {self.probe.name} probe"
        return CheckResult.fail(
            f"{self.master} did not answer: {answer.reason or 'down'}",
            f"let {what} through from this slave to the master (firewall), and check the master is up",
        )


def witness_checks(engine: HAEngine) -> list[Check]:
    """Each witness answers the host probes; none configured: a warning (a cut-off slave would take over)."""
    witnesses = list(engine.settings.get("watch.witnesses"))
    if not witnesses:
        return [
            FunctionCheck(
                "witnesses",
                lambda: CheckResult.warn(
                    "watch.witnesses is empty: a slave cut off from the master takes over while the master serves",
                    "set watch.witnesses to an address both nodes reach (e.g. the gateway)",
                ),
            )
        ]
    try:
        probes = engine.loader.load("health_probes")
    except PluginLoadError:
        return []
    host_probes = [probe for probe in probes if probe.checks == "host"] or probes
    checks: list[Check] = []
    for witness in witnesses:
        for probe in host_probes:
            check = _ProbeCheck(probe, witness)
            check.name = f"witness {witness} answers {probe.name}"
            checks.append(check)
    return checks


def local_database_utf8(settings) -> CheckResult:
    engine = config_db_engine(settings)
    try:
        with engine.connect() as connection:
            encoding = connection.execute(
                text("SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = current_database()")
            ).scalar_one()
    except SQLAlchemyError as exc:
        return _db_unreachable(engine, exc)
    finally:
        engine.dispose()
    if encoding != "UTF8":
        return CheckResult.fail(f"{describe(engine)} is encoded {encoding}", UTF8_FIX)
    return CheckResult.passed(f"{describe(engine)} is UTF8")


UTF8_FIX = (
    "recreate the cluster with a UTF-8 locale (docs/runbook.rst, 'Locale and UTF-8 errors'): "
    "pg_dropcluster + pg_createcluster --locale=en_US.UTF-8, then re-enable HA"
)


def _db_unreachable(engine, exc: SQLAlchemyError) -> CheckResult:
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    return CheckResult.fail(
        f"cannot read {describe(engine)}: {reason}", "check config_db.url and that PostgreSQL runs on this node"
    )


# --- trunks ------------------------------------------------------------------------------

_TRUNK_SECTIONS = text(
    "SELECT t.id, coalesce(e.label, e.name), e.uuid::text FROM trunkfeatures t "
    "JOIN endpoint_sip e ON e.uuid = t.endpoint_sip_uuid ORDER BY t.id"
)
_REGISTRATION_OPTIONS = text(
    "SELECT s.endpoint_sip_uuid::text, o.key, o.value FROM endpoint_sip_section s "
    "LEFT JOIN endpoint_sip_section_option o ON o.endpoint_sip_section_uuid = s.uuid "
    "WHERE s.type = 'registration'"
)
_PARENTS = text("SELECT child_uuid::text, parent_uuid::text FROM endpoint_sip_template ORDER BY priority NULLS LAST")


def trunk_expiry(settings) -> CheckResult:
    """Each SIP trunk that registers: its effective ``registration`` ``expiration`` is below 300 s.

    A trunk registers when it (or a template it inherits from) has a
    ``registration`` section; the value is the trunk's own ``expiration``
    option, else the first template's that sets one (templates in priority
    order, depth first), else Asterisk's default of 3600 s.
    """
    engine = config_db_engine(settings)
    try:
        with engine.connect() as connection:
            trunks = connection.execute(_TRUNK_SECTIONS).all()
            options = connection.execute(_REGISTRATION_OPTIONS).all()
            parents_rows = connection.execute(_PARENTS).all()
    except SQLAlchemyError as exc:
        return _db_unreachable(engine, exc)
    finally:
        engine.dispose()
    registers: set[str] = set()
    expiration: dict[str, str] = {}
    for endpoint, key, value in options:
        registers.add(endpoint)
        if key == "expiration":
            expiration[endpoint] = value
    parents: dict[str, list[str]] = defaultdict(list)
    for child, parent in parents_rows:
        parents[child].append(parent)
    too_long, fine, unreadable = [], 0, []
    for trunk_id, label, endpoint in trunks:
        chain = _inheritance(endpoint, parents)
        if not any(node in registers for node in chain):
            continue  # this trunk does not register
        value = next((expiration[node] for node in chain if node in expiration), None)
        seconds = PJSIP_DEFAULT_EXPIRATION if value is None else _int(value)
        name = f"trunk {trunk_id} ({label})"
        if seconds is None:
            unreadable.append(f"{name}: expiration {value!r}")
        elif seconds >= TRUNK_EXPIRY_LIMIT:
            shown = f"{seconds} s" + (" (Asterisk's default, none set)" if value is None else "")
            too_long.append(f"{name}: {shown}")
        else:
            fine += 1
    fix = (
        f"set the registration 'expiration' of these trunks below {TRUNK_EXPIRY_LIMIT} s (e.g. 240) "
        "in wazo-confd (PUT /endpoints/sip/<uuid>, registration_section_options)"
    )
    if too_long or unreadable:
        return CheckResult.fail("; ".join(too_long + unreadable), fix)
    if not fine:
        return CheckResult.passed("no SIP trunk registers")
    return CheckResult.passed(f"{fine} registering trunk(s), each below {TRUNK_EXPIRY_LIMIT} s")


def _inheritance(endpoint: str, parents: dict[str, list[str]]) -> list[str]:
    """The endpoint then its templates, depth first in priority order; cycles cut."""
    chain: list[str] = []
    stack = [endpoint]
    while stack:
        node = stack.pop(0)
        if node in chain:
            continue
        chain.append(node)
        stack[0:0] = parents.get(node, [])
    return chain


def _int(value: str) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None
