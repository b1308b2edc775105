"""The pg_dump plugin's ``wazo-ha doctor`` checks, run on the master through the replication connection.

* TCP from the master to the slave's PostgreSQL port;
* the TLS of that link, with the configured ``sslmode``/``sslrootcert``:
  ``clear`` (WARN), ``encrypted`` without a certificate check (WARN) or
  ``encrypted and verified`` (PASS); libpq's view, cross-checked with the
  slave's ``pg_stat_ssl`` for our own backend;
* the same Wazo version on both nodes: ``alembic_version`` of the
  configuration database and ``infos.wazo_version`` compared;
* the slave's database is UTF-8;
* the clock offset between the nodes, read from the slave PostgreSQL's
  ``clock_timestamp()`` against this node's clock, halfway through the round
  trip (the uncertainty is half the round trip, and is reported): WARN above
  ``doctor.clock_offset_warn`` (1 s), FAIL above ``doctor.clock_offset_fail``
  (30 s, ``watch.stability``'s default), both beyond that uncertainty.
"""

from __future__ import annotations

import time

import psycopg2

from wazo_ha_core import CheckResult, FunctionCheck, PluginError, TcpCheck
from wazo_ha_core.doctor_clock import judge

from . import catalog as cat
from .connection import close_quietly, connect, first_line
from .tls import CLEAR, ENCRYPTED, TlsRefused, TlsSettings

#: Above this round trip the clock offset cannot be told precisely enough to judge.


def pg_dump_checks(plugin, node_type: str, peer: str | None, preflight: bool = False) -> list:
    if node_type != "master" or not peer:
        return []
    settings = plugin.context.settings
    connect_timeout = float(settings.get("timeouts.connect"))
    port = plugin.config["slave_port"]
    doctor = _Doctor(plugin, peer, connect_timeout, preflight)
    return [
        TcpCheck(
            f"master → slave TCP {port}",
            peer,
            port,
            connect_timeout,
            f"open TCP {port} from the master to the slave {peer} (firewall) and make the slave's PostgreSQL "
            "listen there (enable HA on the slave first: it sets listen_addresses and pg_hba.conf)",
            # Before the slave is enabled its PostgreSQL listens on localhost only: refused is expected then.
            refused=("WARN", NOT_YET_FIX) if preflight else None,
        ),
        FunctionCheck("master → slave TLS", doctor.link_tls),
        FunctionCheck("same Wazo version", doctor.same_version),
        FunctionCheck("slave database UTF-8", doctor.slave_utf8),
        FunctionCheck(
            "clock offset",
            lambda: doctor.clock_offset(
                float(settings.get("doctor.clock_offset_warn")), float(settings.get("doctor.clock_offset_fail"))
            ),
        ),
    ]


class _Doctor:
    def __init__(self, plugin, peer: str, connect_timeout: float, preflight: bool = False):
        self.plugin, self.peer, self.connect_timeout = plugin, peer, connect_timeout
        self.preflight = preflight

    def _run(self, what, *, master: bool) -> CheckResult:
        connections = []
        try:
            slave = connect(self.plugin.slave_endpoint(self.peer), self.connect_timeout, self.connect_timeout * 2)
            connections.append(slave)
            if master:
                source = connect(self.plugin.master_endpoint(), self.connect_timeout, self.connect_timeout * 2)
                connections.append(source)
                return what(slave.cursor(), source.cursor())
            return what(slave.cursor())
        except TlsRefused as exc:
            return CheckResult.fail(str(exc), TLS_FIX)
        except PluginError as exc:
            if self.preflight:  # no replication login before both nodes are enabled: said, not failed
                return CheckResult.warn(f"not measurable yet: {exc}", NOT_YET_FIX)
            return CheckResult.fail(str(exc), REACH_FIX)
        except psycopg2.Error as exc:
            return CheckResult.fail(f"query failed: {first_line(exc)}", REACH_FIX)
        finally:
            for connection in connections:
                close_quietly(connection)

    def link_tls(self) -> CheckResult:
        return self._run(lambda cursor: _link_tls(cursor, self.plugin.slave_tls()), master=False)

    def same_version(self) -> CheckResult:
        return self._run(_compare_versions, master=True)

    def slave_utf8(self) -> CheckResult:
        return self._run(_slave_encoding, master=False)

    def clock_offset(self, warn_above: float, fail_above: float) -> CheckResult:
        return self._run(lambda cursor: _clock_offset(cursor, warn_above, fail_above), master=False)


REACH_FIX = (
    "check plugin_config.pg_dump (slave_user, slave_password_file), that HA is enabled on the slave, and "
    "'wazo-ha replication-password' on both nodes"
)

NOT_YET_FIX = (
    "expected before HA is enabled on the slave (enabling opens its PostgreSQL to this node and creates the "
    "replication role, with the password this master generates): enable the master, import the password on "
    "the slave and enable it, then run `wazo-ha doctor` here again"
)

TLS_FIX = (
    "turn TLS on in the slave's PostgreSQL (ssl = on with a certificate; on Debian the snakeoil one of ssl-cert), "
    "then on the master plugin_config.pg_dump.sslmode: verify-full with sslrootcert: the certificate that signs "
    "the slave's, and on the slave slave_db.require_tls: true (docs/plugins/pg_dump.rst, 'TLS')"
)


def _link_tls(slave, settings: TlsSettings) -> CheckResult:
    """Which the link is: clear, encrypted (certificate not checked), or encrypted and verified."""
    kind = settings.link_kind(slave.connection)
    slave.execute("SELECT ssl, version, cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    server_ssl, version, cipher = slave.fetchone() or (False, None, None)
    if kind != CLEAR and not server_ssl:
        # Our TLS ends before the slave's PostgreSQL: something in between holds the session in clear.
        return CheckResult.warn(
            f"this side's connection is encrypted ({settings.describe()}) but the slave's PostgreSQL sees it in "
            "clear (pg_stat_ssl): something between the nodes terminates TLS",
            "find what terminates TLS on the way (a proxy?); with sslmode: verify-full it cannot pose as the slave",
        )
    if kind == CLEAR:
        return CheckResult.warn(
            f"the link is clear ({settings.describe()}): the configuration database, SIP passwords included, "
            "crosses the network unencrypted"
            + ("" if settings.sslmode in ("disable", "allow") else "; the slave's PostgreSQL offers no TLS"),
            TLS_FIX,
        )
    shown = f"{version}, {cipher}; {settings.describe()}"
    if kind == ENCRYPTED:
        return CheckResult.warn(
            f"the link is encrypted ({shown}) but the slave's certificate is not checked: "
            "a man in the middle can pose as the slave and read the copy",
            "set plugin_config.pg_dump.sslmode: verify-full and sslrootcert: the CA certificate that signed the "
            "slave's (or the slave's own certificate); docs/plugins/pg_dump.rst, 'TLS'",
        )
    note = "" if settings.sslmode == "verify-full" else "; verify-ca accepts any certificate of that CA, whatever name"
    return CheckResult.passed(f"the link is encrypted and verified ({shown}){note}")


def _versions(cursor, role: str) -> tuple[str, str]:
    schema = cat.schema_version(cursor, role)
    cursor.execute("SELECT to_regclass('public.infos') IS NOT NULL")
    wazo = "(no infos table)"
    if cursor.fetchone()[0]:
        cursor.execute("SELECT string_agg(DISTINCT wazo_version, ',') FROM public.infos")
        wazo = cursor.fetchone()[0] or "(empty)"
    return schema, wazo


def _compare_versions(slave, master) -> CheckResult:
    master_schema, master_wazo = _versions(master, "master")
    slave_schema, slave_wazo = _versions(slave, "slave")
    shown = f"master {master_wazo} (schema {master_schema}), slave {slave_wazo} (schema {slave_schema})"
    if master_schema != slave_schema:
        return CheckResult.fail(
            shown, "upgrade both nodes to the same Wazo version (docs/runbook.rst, 'Upgrading both nodes')"
        )
    if master_wazo != slave_wazo:
        # infos is replicated by today's Wazo, so it may only say what the master last copied.
        return CheckResult.warn(
            shown + ": same schema, different infos.wazo_version",
            "make sure both nodes run the same Wazo version (wazo-upgrade on both)",
        )
    return CheckResult.passed(shown)


def _slave_encoding(slave) -> CheckResult:
    encoding = cat.database_encoding(slave)
    if encoding != "UTF8":
        return CheckResult.fail(
            f"the slave's database is encoded {encoding}",
            "recreate the slave's cluster with a UTF-8 locale (docs/runbook.rst, 'Locale and UTF-8 errors')",
        )
    return CheckResult.passed("the slave's database is UTF8")


def _clock_offset(slave, warn_above: float, fail_above: float) -> CheckResult:
    """WARN above ``warn_above`` seconds, FAIL above ``fail_above``, beyond the measurement's uncertainty."""
    before = time.time()
    slave.execute("SELECT extract(epoch FROM clock_timestamp())::float8")
    remote = float(slave.fetchone()[0])
    after = time.time()
    round_trip = after - before
    offset = remote - (before + after) / 2
    return judge(offset, round_trip, warn_above, fail_above, "the slave")
