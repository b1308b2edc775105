"""TLS of the replication link, against the real slave cluster serving real certificates.

The slave's PostgreSQL is switched between TLS off, a certificate signed by the
CA the master trusts (subjectAltName ``IP:127.0.0.1``, the address the master
connects to), a certificate of another CA, and one of the right CA naming
another address (:mod:`wazo_ha_rig.certificates`; each switch restarts it, so
it serves exactly that certificate). The master's ``sslrootcert`` is a node
path resolved under ``root``, like the plugin's other paths.
"""

from __future__ import annotations

import shutil

import psycopg2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.rig.waiting import wait_for
from wazo_ha_core import PluginError, PreflightError
from wazo_ha_core.doctor import FAIL, PASS, WARN, run_checks
from wazo_ha_plugins.pg_dump import tls
from wazo_ha_plugins.pg_dump.connection import APPLICATION_NAME
from wazo_ha_rig.certificates import (
    CertificateAuthority,
    certificate_from_another_authority,
    debian_snakeoil_certificate,
    self_signed_certificate,
)
from wazo_ha_rig.postgres import SUPERUSER_PASSWORD, as_postgres

from .conftest import Pair, content
from .test_engine import engine_for

ROOT_CERT = "/etc/wazo-ha/slave-root.crt"  # node path of sslrootcert, resolved under the pair's root
TLS_CHECK = "master → slave TLS"


class SlaveTls:
    """What the slave cluster serves; a restart only when that changes."""

    def __init__(self, cluster):
        self.cluster, self.serving = cluster, None

    def serve(self, certificate) -> None:
        if certificate != self.serving:
            self.cluster.use_tls(certificate)
            self.serving = certificate


@pytest.fixture(scope="module")
def authority():
    authority = CertificateAuthority.create("slave")
    yield authority
    authority.remove()


@pytest.fixture(scope="module")
def right_certificate(authority):
    return authority.issue(f"IP:{Pair.peer}")


@pytest.fixture(scope="module")
def slave_tls(slave_cluster):
    tls = SlaveTls(slave_cluster)
    yield tls
    tls.serve(None)  # the other modules find the slave as the rig made it: TLS off


@pytest.fixture
def loaded(master_cluster, slave_cluster, tmp_path) -> Pair:
    """The pair without a fresh copy of the databases: for settings refused before any connection."""
    return Pair(master_cluster, slave_cluster, tmp_path)


def install_root_certificate(pair, source) -> str:
    """Copy ``source`` to the master's ROOT_CERT (under the pair's root); returns that node path."""
    target = pair.root / ROOT_CERT.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, target)
    return ROOT_CERT


@pytest.fixture
def trusted(pair, authority):
    """The CA certificate installed on the master at ROOT_CERT; returns the settings that use it."""
    return {"sslmode": "verify-full", "sslrootcert": install_root_certificate(pair, authority.certificate)}


def replication_backends(pair) -> list[tuple[str, str]]:
    """(ssl, protocol) of each replication session on the slave, from the server's pg_stat_ssl."""
    rows = pair.slave.psql(
        "postgres",
        "SELECT s.ssl, coalesce(s.version, '-') FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        f"WHERE a.application_name = '{APPLICATION_NAME}'",
    )
    return [tuple(line.split("|")) for line in rows.splitlines()]


def refused(pair, match: str, **config) -> str:
    """The run is refused with ``match`` in a PreflightError, and the slave's database is left exactly as it was."""
    before = content(pair.slave)
    with pytest.raises(PreflightError, match=match) as failure:
        pair.plugin(**config).replicate(pair.peer)
    assert content(pair.slave) == before
    return str(failure.value)


def tls_report(pair, **config):
    checks = pair.plugin(**config).doctor_checks("master", pair.peer)
    return {report.name: report for report in run_checks(checks, default_timeout=20)}[TLS_CHECK]


# --- (a) verify-full with the right root certificate ------------------------------------------


def test_verify_full_with_the_right_root_certificate_replicates_over_tls(pair, slave_tls, right_certificate, trusted):
    slave_tls.serve(right_certificate)
    seen = []

    def progress(message, figures):
        if not seen and message in ("copying", "table"):
            seen.extend(replication_backends(pair))

    result = pair.plugin(**trusted).replicate(pair.peer, progress=progress)

    assert result.outcome == "copied" and result.figures["tls"] == "verified"
    assert seen and all(ssl == "t" and version.startswith("TLSv1.") for ssl, version in seen), seen
    assert content(pair.slave)["userfeatures"] == content(pair.master)["userfeatures"]


# --- (b) a certificate the master must not accept ----------------------------------------------


def test_a_certificate_from_another_authority_is_refused_and_nothing_changes(pair, slave_tls, trusted):
    impostor_certificate, impostor = certificate_from_another_authority(f"IP:{Pair.peer}")
    try:
        slave_tls.serve(impostor_certificate)
        message = refused(pair, "TLS to the slave PostgreSQL", **trusted)
    finally:
        impostor.remove()
    assert "certificate verify failed" in message and "sslmode=verify-full" in message


def test_a_certificate_naming_another_address_is_refused_under_verify_full_only(pair, slave_tls, authority, trusted):
    slave_tls.serve(authority.issue("IP:192.0.2.1"))
    message = refused(pair, "TLS to the slave PostgreSQL", **trusted)
    assert 'server certificate for "192.0.2.1" does not match host name "127.0.0.1"' in message
    # verify-ca checks the signature only: the same certificate passes, and the link counts as verified.
    result = pair.plugin(**{**trusted, "sslmode": "verify-ca"}).replicate(pair.peer)
    assert result.outcome == "copied" and result.figures["tls"] == "verified"


def test_a_self_signed_certificate_naming_the_address_is_verified_by_verify_full_with_itself_as_root(pair, slave_tls):
    # The docs' recipe for a site without a CA: one openssl command on the slave, the .crt copied to the master.
    own = self_signed_certificate(f"IP:{Pair.peer}")
    try:
        slave_tls.serve(own)
        pinned = {"sslmode": "verify-full", "sslrootcert": install_root_certificate(pair, own.certificate)}
        result = pair.plugin(**pinned).replicate(pair.peer)
        assert result.outcome == "copied" and result.figures["tls"] == "verified"
    finally:
        shutil.rmtree(own.certificate.parent)


def test_a_debian_snakeoil_certificate_is_verified_by_verify_ca_with_itself_as_root(pair, slave_tls):
    # What docs/plugins/pg_dump.rst says for a slave that keeps Debian's snakeoil certificate.
    snakeoil = debian_snakeoil_certificate()
    try:
        slave_tls.serve(snakeoil)
        pinned = {"sslrootcert": install_root_certificate(pair, snakeoil.certificate)}
        # It names the host, not the address the master connects to: verify-full cannot pass.
        refused(pair, "does not match host name", sslmode="verify-full", **pinned)
        result = pair.plugin(sslmode="verify-ca", **pinned).replicate(pair.peer)
        assert result.outcome == "copied" and result.figures["tls"] == "verified"
    finally:
        shutil.rmtree(snakeoil.certificate.parent)


def test_the_journal_records_a_verified_copy_and_a_refused_one(pair, slave_tls, authority, right_certificate, trusted):
    slave_tls.serve(right_certificate)
    engine_for(pair, **trusted).replicate()
    slave_tls.serve(authority.issue("IP:192.0.2.1"))
    with pytest.raises(PreflightError):
        engine_for(pair, **trusted).replicate(force=True)
    refused_event, copied = engine_for(pair).store.events(kind="replication")  # newest first
    assert copied.outcome == "ok" and copied.figures["tls"] == "verified"
    assert refused_event.outcome == "refused" and refused_event.message.startswith("TLS to the slave PostgreSQL")


# --- (c) the default, prefer ---------------------------------------------------------------------


def test_prefer_encrypts_when_the_slave_offers_tls(pair, slave_tls, right_certificate):
    slave_tls.serve(right_certificate)
    result = pair.plugin().replicate(pair.peer)
    assert result.outcome == "copied" and result.figures["tls"] == "encrypted"


def test_prefer_still_replicates_in_clear_to_a_slave_without_tls(pair, slave_tls):
    slave_tls.serve(None)
    result = pair.plugin().replicate(pair.peer)
    assert result.outcome == "copied" and result.figures["tls"] == "clear"


# --- (d) require against a slave without TLS ------------------------------------------------------


def test_require_refuses_a_slave_without_tls(pair, slave_tls):
    slave_tls.serve(None)
    message = refused(pair, "TLS to the slave PostgreSQL", sslmode="require")
    assert "server does not support SSL, but SSL was required" in message


def test_verify_full_refuses_a_slave_without_tls(pair, slave_tls, trusted):
    slave_tls.serve(None)
    refused(pair, "does not support SSL", **trusted)


# --- (f) the doctor says which the link is --------------------------------------------------------


def test_doctor_reports_clear_encrypted_and_verified(pair, slave_tls, right_certificate, trusted):
    slave_tls.serve(None)
    clear = tls_report(pair)
    assert clear.status == WARN and "the link is clear (sslmode=prefer)" in clear.detail
    assert "ssl = on" in clear.fix and "verify-full" in clear.fix and "slave_db.require_tls" in clear.fix

    slave_tls.serve(right_certificate)
    encrypted = tls_report(pair)
    assert encrypted.status == WARN and "the link is encrypted (TLSv1." in encrypted.detail
    assert "not checked" in encrypted.detail and "verify-full" in encrypted.fix

    verified = tls_report(pair, **trusted)
    assert verified.status == PASS and "encrypted and verified (TLSv1." in verified.detail


def test_doctor_fails_on_a_certificate_that_does_not_verify(pair, slave_tls, authority, trusted):
    slave_tls.serve(authority.issue("IP:192.0.2.1"))
    report = tls_report(pair, **trusted)
    assert report.status == FAIL and "does not match host name" in report.detail and "ssl = on" in report.fix


# --- (g) bad settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config, named",
    [
        ({"sslmode": "verify_full"}, "verify-ca, verify-full, got 'verify_full'"),
        ({"sslmode": True}, "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, got True"),
        ({"sslmode": "verify-full"}, "sslmode 'verify-full' needs plugin_config.pg_dump.sslrootcert"),
        ({"sslmode": "verify-ca", "sslrootcert": None}, "sslmode 'verify-ca' needs plugin_config.pg_dump.sslrootcert"),
        ({"sslrootcert": "relative/ca.crt"}, "sslrootcert must be an absolute path or null, got 'relative/ca.crt'"),
        ({"sslcrl": "/etc/crl\n.pem"}, "sslcrl must be an absolute path or null, got '/etc/crl\\n.pem'"),
        ({"sslmode": "x" * 10_000}, "got 'xxxxxxxx"),
    ],
)
def test_bad_tls_settings_are_refused_with_the_key_and_the_value(loaded, config, named):
    with pytest.raises(PluginError, match=r"plugin_config\.pg_dump\.ssl") as failure:
        loaded.plugin(**config)
    assert named in str(failure.value)
    assert len(str(failure.value)) < 400  # a huge value is cut, not echoed whole


def test_a_missing_root_certificate_is_refused_with_its_path_and_nothing_changes(pair):
    message = refused(pair, "sslrootcert", sslmode="verify-full", sslrootcert="/etc/wazo-ha/no-such-ca.crt")
    assert message == (
        f"plugin_config.pg_dump.sslrootcert '{pair.root}/etc/wazo-ha/no-such-ca.crt': No such file or directory"
    )


# --- a slave that accepts us over TLS only (slave_db.require_tls: hostssl) ---------------------------


@pytest.fixture
def hostssl_only(pair):
    """The slave's pg_hba.conf lets TCP in over TLS only, as enabling HA writes it with slave_db.require_tls."""
    hba = pair.slave.data / "pg_hba.conf"
    original = hba.read_text()

    def clear_refused() -> bool:
        try:
            psycopg2.connect(host=pair.peer, port=pair.slave.port, user="postgres", password=SUPERUSER_PASSWORD,
                             dbname="postgres", sslmode="disable", connect_timeout=5).close()  # fmt: skip
        except psycopg2.OperationalError as exc:
            return "no encryption" in str(exc)
        return False

    as_postgres(["sh", "-c", f"cat > {hba}"], input="local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n")
    pair.slave.psql("postgres", "SELECT pg_reload_conf()")
    wait_for(clear_refused, 10, "the slave refusing clear-text logins")
    yield
    as_postgres(["sh", "-c", f"cat > {hba}"], input=original)
    pair.slave.psql("postgres", "SELECT pg_reload_conf()")
    wait_for(lambda: not clear_refused(), 10, "the slave accepting clear-text logins again")


def test_a_slave_that_requires_tls_refuses_a_clear_master_and_accepts_the_default(
    pair, slave_tls, right_certificate, hostssl_only
):
    slave_tls.serve(right_certificate)
    message = refused(pair, "TLS to the slave PostgreSQL", sslmode="disable")
    assert "no encryption" in message
    assert pair.plugin().replicate(pair.peer).figures["tls"] == "encrypted"


# --- the validator, for any value ----------------------------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=300),
    st.lists(st.text(max_size=5), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
    st.sampled_from([*tls.SSLMODES, "/etc/ca.crt", "/etc/ca.crt\n", "/etc/\x00ca.crt", "VERIFY-FULL", " prefer"]),
)


@settings(max_examples=300, deadline=None)
@given(sslmode=ANY_VALUE, sslrootcert=ANY_VALUE, sslcrl=ANY_VALUE)
def test_the_tls_validator_accepts_only_libpq_modes_and_clean_absolute_paths(sslmode, sslrootcert, sslcrl):
    config = {"sslmode": sslmode, "sslrootcert": sslrootcert, "sslcrl": sslcrl}

    def clean_path(value) -> bool:
        return value is None or (
            isinstance(value, str) and value.startswith("/") and not any(ord(c) < 32 or c == "\x7f" for c in value)
        )

    valid = (
        isinstance(sslmode, str)
        and sslmode in tls.SSLMODES
        and clean_path(sslrootcert)
        and clean_path(sslcrl)
        and not (sslmode in tls.VERIFYING_MODES and sslrootcert is None)
    )
    try:
        tls.validate(config, "plugin_config.pg_dump")
    except PluginError as exc:
        assert not valid, exc
        message = str(exc)
        assert message.startswith("plugin_config.pg_dump.ssl") and len(message) < 500
        assert "\n" not in message  # the value is shown as its repr, on one line
    else:
        assert valid, config


def test_a_root_certificate_others_may_rewrite_is_refused(pair, slave_tls, right_certificate, trusted):
    slave_tls.serve(right_certificate)
    path = pair.root / ROOT_CERT.lstrip("/")
    path.chmod(0o666)
    message = refused(pair, "sslrootcert", **trusted)
    assert message.startswith(f"plugin_config.pg_dump.sslrootcert '{path}' has mode 0666;") and "chmod go-w" in message
