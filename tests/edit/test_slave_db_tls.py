"""``slave_db.require_tls`` on a real cluster with TLS on: the master's role gets in over TLS only.

As in ``test_slave_db_access.py``, the "master" is 127.0.0.1 and the cluster's
own ``pg_hba.conf`` is cut down to ``local all all trust``, so the only way in
over TCP is the block the step writes. The cluster serves a certificate of a
throwaway CA naming 127.0.0.1 (:mod:`wazo_ha_rig.certificates`), so the TLS
logins below are ``verify-full``, as the master's should be.
"""

from __future__ import annotations

import psycopg2
import pytest

from tests.rig.waiting import wait_for
from wazo_ha_core import replication_password
from wazo_ha_core.config import DISABLED, HASettings
from wazo_ha_core.errors import EditStepError
from wazo_ha_core.settings import Settings
from wazo_ha_core.slave_db import ReplicationRoleStep, SlaveDBAccessStep
from wazo_ha_rig.certificates import CertificateAuthority

from .conftest import slave_db_settings

SLAVE = HASettings("slave", "127.0.0.1")
ROLE = "wazo_ha_replication"
ORIGINAL_HBA = "# the site's own rules\nlocal all all trust\n"


@pytest.fixture(scope="module")
def authority():
    authority = CertificateAuthority.create("edit")
    yield authority
    authority.remove()


def prepared(cluster):
    (cluster.data / "pg_hba.conf").write_text(ORIGINAL_HBA)
    cluster.psql("postgres", "CREATE DATABASE asterisk; CREATE ROLE asterisk NOLOGIN; SELECT pg_reload_conf();")
    return cluster


@pytest.fixture(scope="module")
def tls_cluster(pg_cluster_factory, authority):
    return prepared(pg_cluster_factory(tls=authority.issue("IP:127.0.0.1")))


@pytest.fixture(scope="module")
def clear_cluster(pg_cluster_factory):
    return prepared(pg_cluster_factory())


def slave_settings(cluster, directory, *, require_tls: bool) -> Settings:
    return slave_db_settings(cluster, directory, require_tls=require_tls)


def login(cluster, password, **tls):
    """The replication role's login from 127.0.0.1; returns (ssl_in_use, the server's pg_stat_ssl.ssl)."""
    connection = psycopg2.connect(
        host="127.0.0.1", port=cluster.port, dbname="asterisk", user=ROLE, password=password, connect_timeout=5, **tls
    )
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            return connection.info.ssl_in_use, cursor.fetchone()[0]
    finally:
        connection.close()


def leave(settings, cluster):
    ReplicationRoleStep(settings).apply(SLAVE, DISABLED)
    SlaveDBAccessStep(settings).apply(SLAVE, DISABLED)
    cluster.psql("postgres", f"REVOKE SET ON PARAMETER session_replication_role FROM {ROLE}; DROP ROLE {ROLE};")


def test_require_tls_writes_hostssl_and_postgresql_refuses_the_role_in_clear(tls_cluster, authority, tmp_path):
    settings = slave_settings(tls_cluster, tmp_path, require_tls=True)
    password = replication_password.generate()
    replication_password.write(settings.path("replication_password"), password)
    verify_full = {"sslmode": "verify-full", "sslrootcert": str(authority.certificate)}

    ReplicationRoleStep(settings).apply(DISABLED, SLAVE)
    SlaveDBAccessStep(settings).apply(DISABLED, SLAVE)
    try:
        hba = settings.path("pg_hba").read_text()
        assert "\nhostssl    asterisk    wazo_ha_replication    127.0.0.1/32    scram-sha-256\n" in hba
        assert "\nhost " not in hba and "trust" not in hba.replace(ORIGINAL_HBA, "")
        # pg_ctl reload returns before the postmaster re-reads pg_hba.conf: wait until the block is in force.
        assert wait_for(lambda: login(tls_cluster, password, **verify_full), 10, "TLS login accepted") == (True, True)
        with pytest.raises(psycopg2.OperationalError, match=r"no pg_hba\.conf entry .*no encryption"):
            login(tls_cluster, password, sslmode="disable")
        with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
            login(tls_cluster, password[::-1], **verify_full)  # TLS is not instead of the password
    finally:
        leave(settings, tls_cluster)
    assert settings.path("pg_hba").read_text() == ORIGINAL_HBA


def test_without_require_tls_the_line_is_host_and_a_clear_login_works(tls_cluster, tmp_path):
    settings = slave_settings(tls_cluster, tmp_path, require_tls=False)
    password = replication_password.generate()
    replication_password.write(settings.path("replication_password"), password)
    ReplicationRoleStep(settings).apply(DISABLED, SLAVE)
    SlaveDBAccessStep(settings).apply(DISABLED, SLAVE)
    try:
        assert "\nhost    asterisk    wazo_ha_replication    127.0.0.1/32" in settings.path("pg_hba").read_text()
        clear = wait_for(lambda: login(tls_cluster, password, sslmode="disable"), 10, "clear login accepted")
        assert clear == (False, False)
    finally:
        leave(settings, tls_cluster)


def test_require_tls_on_a_server_without_tls_is_refused_and_nothing_changes(clear_cluster, tmp_path):
    settings = slave_settings(clear_cluster, tmp_path, require_tls=True)
    hba = settings.path("pg_hba")
    before = hba.read_bytes()
    with pytest.raises(EditStepError, match=r"slave_db\.require_tls is true but this node's PostgreSQL has ssl = off"):
        SlaveDBAccessStep(settings).apply(DISABLED, SLAVE)
    assert hba.read_bytes() == before and not settings.path("pg_listen_conf").exists()
