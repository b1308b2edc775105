"""The library's own settings: one YAML file plus ``conf.d/*.yml`` overrides.

Every option is declared once in :data:`OPTIONS` with its default, its type and
one line of documentation; the settings reference in ``docs/`` is generated
from that list. Files are deep-merged over the defaults in this order: the
defaults, the main file, then ``conf.d/*.yml`` beside it in name order.

Every filesystem path the library touches is an absolute path in ``paths.*``
and is resolved under ``root`` by :meth:`Settings.path`, so a test or the demo
can run the whole library inside a sandbox directory.

Each plugin reads its own section, ``plugin_config.<plugin name>``; the keys in
there are the plugin's business (its class declares its defaults).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import setting_checks
from .errors import SettingsError

DEFAULT_CONFIG_FILE = "/etc/wazo-ha/config.yml"
CONFIG_ENV_VAR = "WAZO_HA_CONFIG"

PLUGIN_NAMESPACES = {
    "replication": "wazo_ha.replication",
    "file_sync": "wazo_ha.file_sync",
    "health_probes": "wazo_ha.health_probes",
    "device_provisioners": "wazo_ha.device_provisioners",
    "service_managers": "wazo_ha.service_managers",
    "coordinators": "wazo_ha.coordinators",
}


@dataclass(frozen=True)
class Option:
    key: str  # dotted path, e.g. "paths.ha_conf"
    default: Any
    kind: str  # "str", "path", "number", "bool", "names", "paths", "mapping", "str-or-null", "names-or-null"
    doc: str


OPTIONS: tuple[Option, ...] = (
    Option(
        "root",
        "/",
        "path",
        "Directory every path below resolves under. `/` on a real node; a sandbox in tests and the demo.",
    ),
    Option(
        "store.url",
        None,
        "str-or-null",
        "SQLAlchemy URL of the state store, e.g. `postgresql://wazo-ha@/asterisk`. "
        "Empty: the embedded SQLite file `paths.state_db`.",
    ),
    Option(
        "store.schema",
        "wazo_ha",
        "str",
        "PostgreSQL schema holding the library's tables (never `public`, so a copy of `public` "
        "never carries them). Ignored on SQLite.",
    ),
    Option(
        "paths.ha_conf",
        "/etc/xivo/ha.conf",
        "path",
        "Wazo's HA settings file (JSON), rewritten after every edit for the rest of Wazo.",
    ),
    Option(
        "paths.metrics_file",
        "/var/lib/prometheus/node-exporter/wazo_ha.prom",
        "path",
        "Prometheus text file for node_exporter's textfile collector, rewritten after every journal event.",
    ),
    Option("paths.primary_sentinel", "/var/lib/wazo/is-primary", "path", "Present while this node is the master."),
    Option("paths.secondary_sentinel", "/var/lib/wazo/is-secondary", "path", "Present while this node is the slave."),
    Option(
        "paths.state_db",
        "/var/lib/wazo-ha/state.db",
        "path",
        "The embedded SQLite store, used when `store.url` is empty.",
    ),
    Option("paths.log_file", "/var/log/wazo-ha.log", "path", "Log file of the long-running and scheduled commands."),
    Option("paths.cron_dir", "/etc/cron.d", "path", "Where the per-role schedules are written."),
    Option("paths.run_dir", "/run/wazo-ha", "path", "Lock files and other run-time state."),
    Option("paths.systemd_dir", "/etc/systemd/system", "path", "Where the per-role systemd units are written."),
    Option(
        "paths.pg_hba",
        "/etc/postgresql/15/main/pg_hba.conf",
        "path",
        "The slave's `pg_hba.conf`; wazo-ha keeps one marked block in it.",
    ),
    Option(
        "paths.pg_listen_conf",
        "/etc/postgresql/15/main/conf.d/wazo-ha.conf",
        "path",
        "Include file (in PostgreSQL's `conf.d`) where a slave's `listen_addresses` is set.",
    ),
    Option(
        "paths.replication_password",
        "/etc/wazo-ha/replication-password",
        "path",
        "The replication role's password, mode 0600, the same on both nodes (see `wazo-ha replication-password`).",
    ),
    Option(
        "plugins.replication", ["pg_dump"], "names", "Replication backends, in order (namespace `wazo_ha.replication`)."
    ),
    Option("plugins.file_sync", ["rsync"], "names", "File sync backends, in order (namespace `wazo_ha.file_sync`)."),
    Option(
        "plugins.health_probes",
        ["icmp", "sip"],
        "names",
        "Health probes, in order (namespace `wazo_ha.health_probes`).",
    ),
    Option(
        "plugins.device_provisioners",
        ["provd"],
        "names",
        "Device provisioners, in order (namespace `wazo_ha.device_provisioners`).",
    ),
    Option(
        "plugins.service_managers",
        ["wazo_services", "berofos"],
        "names",
        "Service managers, in take-over order; give-back runs them in reverse (namespace `wazo_ha.service_managers`).",
    ),
    Option(
        "plugins.coordinators",
        ["none"],
        "names",
        "The leader-lock coordinator, one name (namespace `wazo_ha.coordinators`): `none` (two nodes, no lock, "
        "as before) or `tooz` (a lease-backed lock on etcd, see docs/coordination.rst).",
    ),
    Option("plugin_config", {}, "mapping", "One section per plugin name; each plugin documents its own keys."),
    Option("timeouts.connect", 5.0, "number", "Seconds allowed to open any network connection to the peer."),
    Option("timeouts.command", 120.0, "number", "Seconds allowed for one external command or remote call."),
    Option(
        "local_addresses",
        None,
        "names-or-null",
        "This node's own addresses, refused as `remote_address`. Empty: read from the network interfaces.",
    ),
    Option(
        "standbys",
        [],
        "names",
        "N nodes: the addresses of the standbys after the first, in priority order. The master replicates and "
        "syncs to `remote_address` (the first standby), then to each of these. Empty: two nodes, as today.",
    ),
    Option(
        "notifications.mail_to",
        "root",
        "str-or-null",
        "Who gets a mail on a failed replication or sync, a failover or a failback. Empty: no mail.",
    ),
    Option(
        "notifications.sendmail",
        "/usr/sbin/sendmail",
        "path",
        "The sendmail program used for those mails; when it does not exist, no mail is sent (logged once).",
    ),
    Option(
        "file_sync.directories",
        [
            "/etc/asterisk/extensions_extra.d",
            "/etc/xivo/asterisk",
            "/root/.config/wazo-auth-cli",
            "/var/lib/asterisk/agi-bin",
            "/var/lib/asterisk/moh",
            "/var/lib/wazo-auth-keys",
        ],
        "paths",
        "Directories the master mirrors to the slave (`wazo-ha sync`), as today's `wazo-sync`.",
    ),
    Option(
        "file_sync.tenant_sounds_dir",
        "/var/lib/wazo/sounds/tenants",
        "path-or-null",
        "Each `<tenant>/<dir>` below it is mirrored too, discovered at every run. Empty: none.",
    ),
    Option(
        "file_sync.tenant_sounds_excluded",
        ["monitor", "recording"],
        "names",
        "Tenant sound directories never mirrored (call recordings stay on the node that made them).",
    ),
    Option(
        "file_sync.voicemail",
        True,
        "bool",
        "Mirror the voicemail spool (`copy_back.voicemail_dir`) to the slave with each sync, only while the "
        "slave holds nothing the master lacks (docs/voicemail.rst); needs `wazo-ha sync init` again after upgrading.",
    ),
    # --- copy-back (docs/copy_back.rst) ---
    Option(
        "copy_back.voicemail_dir",
        "/var/spool/asterisk/voicemail",
        "path",
        "app_voicemail's spool: messages the slave recorded while serving are merged into the master's "
        "(renumbered where numbers clash).",
    ),
    Option(
        "copy_back.tenant_sounds_names",
        ["monitor"],
        "names",
        "Directories `<file_sync.tenant_sounds_dir>/<tenant>/<name>` copied back (call recordings).",
    ),
    Option(
        "copy_back.directories",
        [],
        "paths",
        "More directories copied back slave → master with the same rules (missing files added, none "
        "overwritten, none deleted).",
    ),
    Option(
        "copy_back.staging_dir",
        "/var/lib/wazo-ha/copy-back",
        "path",
        "On the master: where the slave's copy-back directories are pulled before the merge (kept between "
        "runs so a rerun transfers only what changed).",
    ),
    Option(
        "copy_back.max_messages",
        100,
        "number",
        "app_voicemail's `maxmsg` per folder: slave messages beyond it are left on the slave and reported.",
    ),
    Option(
        "copy_back.refresh_mwi",
        True,
        "bool",
        "After a copy-back, ask Asterisk to recount each voicemail mailbox whose folders changed on the master "
        "(AMI `VoicemailRefresh` through the service manager, `wazo_services`: wazo-amid), so message-waiting "
        "lamps follow at once. A failure is a warning; the copy-back stays `ok`.",
    ),
    Option(
        "copy_back.automatic",
        True,
        "bool",
        "On the master: the automatic check (`wazo-ha follow` every `follow.copy_back_interval` s, the schedule's "
        "`wazo-ha copy-back --auto`) runs the copy-back by itself once the slave served and gave back (retried "
        "with back-off until it succeeds). Off: it only records that one is owed.",
    ),
    Option(
        "copy_back.retry_min",
        60.0,
        "number",
        "Seconds before the first retry of a failed automatic copy-back; doubled at each failure in a row.",
    ),
    Option(
        "copy_back.retry_max",
        3600.0,
        "number",
        "At most this many seconds between two automatic copy-back attempts.",
    ),
    Option(
        "copy_back.gap",
        None,
        "number-or-null",
        "A master whose last copy-back check is older than this many seconds (it was down or cut off) assumes "
        "the slave may have served meanwhile: a copy-back is owed. Must exceed `schedules.master_interval`. "
        "Empty: three intervals, at least 300 s.",
    ),
    Option("history.default_limit", 20, "number", "How many journal events `status` and `history` show by default."),
    # --- enabling / disabling HA (docs/enabling.rst) ---
    Option(
        "config_db.url",
        "postgresql://postgres@/asterisk?host=/run/postgresql",
        "str",
        "SQLAlchemy URL of this node's configuration database (Wazo's `asterisk`). The edit steps "
        "`SIP registration expiry` and `replication role` use it; the role step needs a superuser.",
    ),
    Option("sip_expiry.enabled", True, "bool", "Set the SIP registration expiry values below while HA is enabled."),
    Option("sip_expiry.minimum", 180, "number", "`minimum_expiration` (seconds) of each tenant's global SIP template."),
    Option("sip_expiry.default", 240, "number", "`default_expiration` (seconds) of each tenant's global SIP template."),
    Option("sip_expiry.maximum", 300, "number", "`maximum_expiration` (seconds) of each tenant's global SIP template."),
    Option("slave_db.enabled", True, "bool", "On a slave, open the configuration database to the master."),
    Option("slave_db.database", "asterisk", "str", "The database the master replicates into."),
    Option("slave_db.role", "wazo_ha_replication", "str", "The PostgreSQL role the master's replication logs in as."),
    Option(
        "slave_db.require_tls",
        False,
        "bool",
        "Accept the master's replication over TLS only: the `pg_hba.conf` line is `hostssl` instead of `host` "
        "(still `scram-sha-256`), written when HA is enabled on this slave. PostgreSQL must have `ssl = on` "
        "(enabling refuses otherwise); on the master set `plugin_config.pg_dump.sslmode: verify-full`.",
    ),
    Option(
        "slave_db.grant_roles",
        ["asterisk"],
        "names",
        "Roles granted to the replication role when it is created (the owner of the replicated tables).",
    ),
    Option(
        "slave_db.listen_addresses",
        None,
        "names-or-null",
        "PostgreSQL `listen_addresses` on a slave. Empty: `localhost` plus this node's address on the route "
        "to the master (the VoIP address).",
    ),
    Option(
        "slave_db.reload_command",
        ["systemctl", "reload", "postgresql"],
        "names",
        "Argument list that makes PostgreSQL re-read `pg_hba.conf`.",
    ),
    Option(
        "slave_db.restart_command",
        ["systemctl", "restart", "postgresql"],
        "names",
        "Argument list that restarts PostgreSQL (needed when `listen_addresses` changes).",
    ),
    Option("schedules.enabled", True, "bool", "Install the per-role schedules while HA is enabled."),
    Option(
        "schedules.kind",
        "cron",
        "str",
        "`cron` (files in `paths.cron_dir`) or `systemd` (units in `paths.systemd_dir`).",
    ),
    Option(
        "schedules.master_interval",
        1,
        "number",
        "Minutes between two replications (and file syncs) on the master: a divisor of 60; "
        "60 is today's `hourly at :00`.",
    ),
    Option(
        "schedules.slave_mode",
        "watch",
        "str",
        "`watch` (the long-running `wazo-ha watch` as the systemd unit `wazo-ha-watch.service`) or `check` "
        "(the one-shot `wazo-ha check` every minute from a cron file).",
    ),
    Option("schedules.command", "/usr/bin/wazo-ha", "str", "The `wazo-ha` executable the schedules run."),
    Option("schedules.systemctl", ["systemctl"], "names", "Argument list prefix used to (de)activate systemd units."),
    Option(
        "follow.enabled",
        True,
        "bool",
        "On the master, run `wazo-ha follow` as the systemd unit `wazo-ha-follow.service`: replicate and sync "
        "within seconds of a change; the schedule stays as the fallback (docs/follow.rst).",
    ),
    Option(
        "follow.poll_interval",
        1.0,
        "number",
        "Seconds between two readings of the master database's change signal by `wazo-ha follow` (at most 60).",
    ),
    Option(
        "follow.min_interval",
        2.0,
        "number",
        "Least seconds between the starts of two follow-mode replications (and of two file syncs): "
        "a burst of edits is one or two runs (at most 600).",
    ),
    Option(
        "follow.debounce",
        0.5,
        "number",
        "Seconds `wazo-ha follow` waits after a file event before syncing, so that one save is one sync (at most 60).",
    ),
    Option(
        "follow.max_backoff",
        300.0,
        "number",
        "After failed runs `wazo-ha follow` waits `min_interval` * 2^failures, at most this many seconds "
        "(at least `follow.min_interval`).",
    ),
    Option(
        "follow.copy_back_interval",
        2.0,
        "number-or-null",
        "Seconds between two automatic copy-back checks by `wazo-ha follow` (as `wazo-ha copy-back --auto`, in a "
        "thread of its own): the copy-back owed after a failover runs within seconds of the failback. Null: left "
        "to the schedule (at most 60; docs/copy_back.rst).",
    ),
    Option("watch.interval", 1.0, "number", "Seconds between two rounds of health probes on the slave."),
    Option("watch.fall", 3, "number", "Consecutive failed rounds before the master is declared down (an integer)."),
    Option("watch.rise", 3, "number", "Consecutive good rounds needed before a failback (an integer)."),
    Option(
        "watch.stability",
        30.0,
        "number",
        "Seconds the master must stay good, besides `watch.rise` rounds, before the slave gives back.",
    ),
    Option(
        "watch.courtesy_max",
        600.0,
        "number",
        "While this node carries calls a failback waits for them to end, at most this many seconds.",
    ),
    Option(
        "watch.witnesses",
        [],
        "names",
        "Addresses (e.g. the gateway) probed before a failover; if none answers this node is the one cut off "
        "and does not take over. Empty: no witness check.",
    ),
    Option("watch.retry", 10.0, "number", "Seconds before a failed take-over or give-back is tried again."),
    # --- planned switchover (docs/runbook.rst) ---
    Option(
        "switchover.timeout",
        60.0,
        "number",
        "`wazo-ha switchover`: seconds to wait for the slave to answer SIP once telephony stopped here; "
        "past it telephony is started here again.",
    ),
    Option(
        "switchover.switchback_timeout",
        900.0,
        "number",
        "`wazo-ha switchback`: seconds to wait for the slave to give back (its `watch.rise` rounds, "
        "`watch.stability` and up to `watch.courtesy_max` for calls).",
    ),
    Option(
        "switchover.peer_store_url",
        None,
        "str-or-null",
        "SQLAlchemy URL of the slave's state store, read by switchover/switchback to refuse while the slave's "
        "watch is paused. Empty: the pause is not checked beforehand (a paused slave makes the switchover time out "
        "and telephony start here again).",
    ),
    # --- coordinated mode (docs/coordination.rst); used only when plugins.coordinators is not `none` ---
    Option(
        "coordination.endpoints",
        [],
        "names",
        "The etcd members' client URLs, `http://host:2379` or `https://host:2379` (all of them: a call that "
        "fails on one member is tried on the next). Required with a coordinator.",
    ),
    Option("coordination.ca_file", None, "path-or-null", "CA bundle that signed the etcd members' certificates."),
    Option("coordination.cert_file", None, "path-or-null", "Client certificate presented to etcd (with `key_file`)."),
    Option("coordination.key_file", None, "path-or-null", "The client certificate's private key (mode 0600)."),
    Option(
        "coordination.key_prefix",
        "wazo-ha",
        "str",
        "etcd key prefix of this HA cluster; give each cluster sharing one etcd its own.",
    ),
    Option(
        "coordination.node",
        None,
        "str-or-null",
        "This node's name in the lock (unique in the cluster). Empty: the host name.",
    ),
    Option(
        "coordination.priority",
        None,
        "number-or-null",
        "A standby's rank: 1 takes over first, 2 waits `standby_delay` more, and so on. Empty: 1. "
        "The master (preferred node) is always rank 0.",
    ),
    Option(
        "coordination.lease_ttl",
        5,
        "number",
        "Seconds of the leader lease (whole seconds); must exceed `stop_margin + 2 x timeout`.",
    ),
    Option("coordination.timeout", 1, "number", "Seconds one etcd call may take (whole seconds)."),
    Option(
        "coordination.stop_margin",
        2.0,
        "number",
        "The active node stops its telephony this many seconds before its lease could expire when it cannot "
        "renew (self-fencing): the time a stop takes plus clock-rate drift.",
    ),
    Option(
        "coordination.standby_delay",
        3.0,
        "number",
        "Seconds each standby rank after the first waits before trying to take the lock.",
    ),
    Option(
        "coordination.fence_guard",
        True,
        "bool",
        "Run the fence guard (`wazo-ha fence-guard`, started by the watch): a process apart from the watch that "
        "stops telephony when the watch stops renewing (frozen, killed), before the lease can expire. A node "
        "whose guard cannot start does not take the lock. Turn off only to test without it.",
    ),
    Option(
        "coordination.guard_deadline",
        None,
        "number-or-null",
        "Seconds after the last renewal sent at which the fence guard stops telephony. Empty: "
        "`lease_ttl - stop_margin - guard_poll` (the keeper's own fencing point, one poll early). Must exceed "
        "the renewal period plus `timeout`, and `guard_deadline + guard_poll` must not exceed "
        "`lease_ttl - stop_margin`.",
    ),
    Option("coordination.guard_poll", 0.2, "number", "Seconds between two looks of the fence guard (0.05 to 1)."),
    # --- wazo-ha doctor (docs/prerequisites.rst) ---
    Option("doctor.check_timeout", 15.0, "number", "Seconds one `wazo-ha doctor` check may take before it is a FAIL."),
    Option(
        "doctor.clock_offset_warn",
        1.0,
        "number",
        "`wazo-ha doctor` warns when the nodes' clocks differ by more than this many seconds.",
    ),
    Option(
        "doctor.clock_offset_fail",
        30.0,
        "number",
        "`wazo-ha doctor` fails when the nodes' clocks differ by more than this many seconds "
        "(the default `watch.stability`).",
    ),
    Option(
        "doctor.disk_free_warn_mb",
        1024,
        "number",
        "`wazo-ha doctor` warns when a filesystem holding the synced directories, the voicemail spool, "
        "the state or the log has less than this many MiB free.",
    ),
    Option(
        "doctor.disk_free_fail_mb",
        100,
        "number",
        "`wazo-ha doctor` fails when one of those filesystems has less than this many MiB free.",
    ),
    Option(
        "doctor.spool_dirs",
        ["/var/spool/asterisk"],
        "paths",
        "Directories a serving node writes to (voicemail, old recordings), checked for free space by `wazo-ha doctor`.",
    ),
)

_OPTION_BY_KEY = {option.key: option for option in OPTIONS}
_SECTIONS = {option.key.split(".")[0] for option in OPTIONS if "." in option.key}


def default_tree() -> dict[str, Any]:
    """The defaults as a nested dict (a fresh copy each call)."""
    tree: dict[str, Any] = {}
    for option in OPTIONS:
        node = tree
        *parents, leaf = option.key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(option.default)
    return tree


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``: mappings merge, anything else replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


class Settings:
    """Validated, merged settings. Read with :meth:`get`, resolve paths with :meth:`path`."""

    def __init__(self, tree: dict[str, Any], sources: list[str] | None = None):
        self.tree = tree
        self.sources = list(sources or [])

    @classmethod
    def load(cls, config_file: str | os.PathLike | None = None) -> Settings:
        """Load the main file (or the default one), its ``conf.d`` and the defaults.

        An explicitly named file that does not exist is an error; the default
        file may be absent (a node with nothing but defaults).
        """
        explicit = config_file is not None or CONFIG_ENV_VAR in os.environ
        path = Path(config_file or os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_FILE)
        tree = default_tree()
        sources: list[str] = []
        if path.exists():
            _check_trusted(path.parent, setting_checks.config_dir_problem)
            _check_trusted(path, setting_checks.config_file_problem)
            tree = _merge_file(tree, path)
            sources.append(str(path))
        elif explicit:
            raise SettingsError(str(path), None, "file not found")
        conf_d = path.parent / "conf.d"
        if conf_d.is_dir():
            _check_trusted(path.parent, setting_checks.config_dir_problem)
            _check_trusted(conf_d, setting_checks.config_dir_problem)
            for override in sorted(conf_d.glob("*.yml")):
                _check_trusted(override, setting_checks.config_file_problem)
                tree = _merge_file(tree, override)
                sources.append(str(override))
        return cls.from_tree(tree, sources)

    @classmethod
    def from_tree(cls, tree: dict[str, Any], sources: list[str] | None = None) -> Settings:
        """Validate an already merged tree (used by tests and the demo)."""
        source = sources[-1] if sources else "<settings>"
        tree = deep_merge(default_tree(), tree)
        _validate(tree, source)
        return cls(tree, sources)

    def get(self, key: str) -> Any:
        node: Any = self.tree
        for part in key.split("."):
            node = node[part]
        return node

    @property
    def root(self) -> Path:
        return Path(self.tree["root"])

    def path(self, key: str) -> Path:
        """The path setting ``paths.<key>`` resolved under ``root``."""
        return self.resolve(self.get(f"paths.{key}"), key=f"paths.{key}")

    def resolve(self, absolute: str | os.PathLike, key: str | None = None) -> Path:
        """Any absolute node path (e.g. ``/etc/asterisk``) resolved under ``root``.

        ``..`` is resolved lexically first, and a path that would end up
        outside ``root`` raises :class:`SettingsError` naming ``key`` (the
        setting it came from). Symbolic links below ``root`` are not looked
        at: ``root`` confines our own path arithmetic (tests, the demo), it
        is not a security boundary against whoever can write inside it.
        """
        joined = setting_checks.normalised_under(str(self.root), str(absolute))
        if joined is None:
            source = self.sources[-1] if self.sources else "<settings>"
            raise SettingsError(
                source, key, f"{setting_checks.shown(str(absolute))} resolves outside root {str(self.root)!r}"
            )
        return Path(joined)

    def plugin_config(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.tree["plugin_config"].get(name) or {})

    def enabled_plugins(self, group: str) -> list[str]:
        return list(self.tree["plugins"][group])


def _merge_file(tree: dict[str, Any], path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SettingsError(str(path), None, f"cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise SettingsError(str(path), None, "not UTF-8 text") from None
    import yaml  # only where a file is read: `wazo-ha --help` and plain imports skip it

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SettingsError(str(path), None, f"invalid YAML: {where}{problem}") from None
    if data is None:
        return tree
    if not isinstance(data, dict):
        raise SettingsError(str(path), None, f"the top level must be a mapping, got {type(data).__name__}")
    _validate(deep_merge(default_tree(), data), str(path))
    return deep_merge(tree, data)


def _validate(tree: dict[str, Any], source: str) -> None:
    for key in _flatten_keys(tree):
        if key not in _OPTION_BY_KEY:
            raise SettingsError(source, key, "unknown setting")
    for option in OPTIONS:
        node: Any = tree
        for part in option.key.split("."):
            node = node[part]
        reason = _type_problem(option, node)
        if reason:
            raise SettingsError(source, option.key, reason)
    if not str(tree["root"]).startswith("/"):
        raise SettingsError(source, "root", f"must be an absolute path, got {tree['root']!r}")
    for name, section in tree["plugin_config"].items():
        if section is not None and not isinstance(section, dict):
            raise SettingsError(source, f"plugin_config.{name}", f"must be a mapping, got {type(section).__name__}")
    schema = tree["store"]["schema"]
    if schema == "public" or not schema.isidentifier():
        raise SettingsError(source, "store.schema", f"must be a plain identifier other than 'public', got {schema!r}")
    for key, choices in (("schedules.kind", ("cron", "systemd")), ("schedules.slave_mode", ("watch", "check"))):
        value = tree[key.split(".")[0]][key.split(".")[1]]
        if value not in choices:
            raise SettingsError(source, key, f"must be one of {', '.join(choices)}, got {value!r}")
    interval = tree["schedules"]["master_interval"]
    if interval != int(interval) or 60 % int(interval):
        raise SettingsError(source, "schedules.master_interval", f"must divide 60 (1, 2, 5, 10… 60), got {interval!r}")
    copy_back = tree["copy_back"]
    if copy_back["retry_max"] < copy_back["retry_min"]:
        raise SettingsError(
            source,
            "copy_back.retry_max",
            f"must be at least copy_back.retry_min ({copy_back['retry_min']!r}), got {copy_back['retry_max']!r}",
        )
    if copy_back["gap"] is not None and copy_back["gap"] <= 60 * interval:
        raise SettingsError(
            source,
            "copy_back.gap",
            f"must exceed schedules.master_interval ({interval!r} min = {60 * interval} s), got {copy_back['gap']!r}",
        )
    follow = tree["follow"]
    limits = (("poll_interval", 60), ("min_interval", 600), ("debounce", 60), ("max_backoff", 86400))
    for key, limit in (*limits, ("copy_back_interval", 60)):
        if not isinstance(follow[key], bool) and isinstance(follow[key], (int, float)) and follow[key] > limit:
            raise SettingsError(source, f"follow.{key}", f"must be at most {limit}, got {follow[key]!r}")
    if follow["max_backoff"] < follow["min_interval"]:
        raise SettingsError(
            source,
            "follow.max_backoff",
            f"must be at least follow.min_interval ({follow['min_interval']!r}), got {follow['max_backoff']!r}",
        )
    role = tree["slave_db"]["role"]
    if not role.isidentifier() or role != role.lower():
        raise SettingsError(source, "slave_db.role", f"must be a plain lower-case identifier, got {role!r}")
    coordinators = tree["plugins"]["coordinators"]
    if len(coordinators) > 1:
        raise SettingsError(source, "plugins.coordinators", f"names at most one coordinator, got {coordinators!r}")
    problem = setting_checks.tree_problem(tree, OPTIONS)
    if problem:
        raise SettingsError(source, *problem)
    from .coordination import config as coordination_config  # light: pure checks

    problem = coordination_config.problem(tree)
    if problem:
        raise SettingsError(source, *problem)


def _check_trusted(path: Path, check) -> None:
    """Refuse a configuration file or directory anyone but root (or us) could write."""
    problem = check(path)
    if problem:
        raise SettingsError(str(path), None, f"refused: {problem}")


def _flatten_keys(tree: dict[str, Any], prefix: str = ""):
    for key, value in tree.items():
        dotted = f"{prefix}{key}"
        if dotted in _OPTION_BY_KEY:
            yield dotted
        elif isinstance(value, dict) and dotted in _SECTIONS:
            yield from _flatten_keys(value, dotted + ".")
        else:
            yield dotted


def _type_problem(option: Option, value: Any) -> str | None:
    kind = option.kind
    if kind.endswith("-or-null"):
        if value is None:
            return None
        kind = kind[: -len("-or-null")]
    if kind in ("str", "path"):
        if not isinstance(value, str) or not value:
            return f"must be a non-empty string, got {value!r}"
        if kind == "path" and not value.startswith("/"):
            return f"must be an absolute path, got {value!r}"
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            return f"must be a positive number, got {value!r}"
    elif kind == "bool":
        if not isinstance(value, bool):
            return f"must be true or false, got {value!r}"
    elif kind == "names":
        if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
            return f"must be a list of names, got {value!r}"
        if len(set(value)) != len(value):
            return f"lists a name twice: {value!r}"
    elif kind == "paths":
        if not isinstance(value, list) or not all(isinstance(item, str) and item.startswith("/") for item in value):
            return f"must be a list of absolute paths, got {value!r}"
        if any("/../" in item + "/" for item in value):
            return f"must not contain '..': {value!r}"
    elif kind == "mapping":
        if not isinstance(value, dict):
            return f"must be a mapping, got {value!r}"
    return None
