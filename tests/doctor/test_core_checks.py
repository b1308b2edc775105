"""wazo-ha doctor, the core checks on real services: trunk registration expiry and UTF-8 on a real
PostgreSQL with Wazo's schema, slave → master ICMP with the real icmp probe, provd's plugin directory."""

from __future__ import annotations

import uuid

import pytest

from tests.rig.netns import TestNetwork
from wazo_ha_core import HAEngine, Settings
from wazo_ha_core.config import HASettings
from wazo_ha_core.doctor import FAIL, PASS
from wazo_ha_core.doctor_checks import local_database_utf8, trunk_expiry

SECTION = "INSERT INTO endpoint_sip_section (uuid, type, endpoint_sip_uuid)"
TENANT = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(scope="module")
def config_db(pg_cluster, wazo_schema_files):
    pg_cluster.psql("postgres", "DROP DATABASE IF EXISTS doctor_tpl WITH (FORCE)")
    pg_cluster.create_database("doctor_tpl")
    for path in wazo_schema_files:
        pg_cluster.psql_file("doctor_tpl", path)
    pg_cluster.psql("doctor_tpl", f"INSERT INTO tenant (uuid, slug) VALUES ('{TENANT}', 'acme')")
    return pg_cluster


@pytest.fixture
def database(config_db):
    config_db.psql("postgres", "DROP DATABASE IF EXISTS doctor WITH (FORCE)")
    config_db.psql("postgres", "CREATE DATABASE doctor TEMPLATE doctor_tpl")
    return config_db


def settings(tmp_path, cluster, database="doctor", **tree) -> Settings:
    url = f"postgresql://postgres@/{database}?host={cluster.socket_dir}&port={cluster.port}"
    return Settings.from_tree({"root": str(tmp_path), "config_db": {"url": url}, **tree})


def add_trunk(cluster, trunk_id: int, *, expiration: str | None, registers: bool = True, template=None) -> str:
    """A SIP trunk as wazo-confd stores it: trunkfeatures → endpoint_sip → a 'registration' section."""
    endpoint = str(uuid.uuid4())
    sql = (
        f"INSERT INTO endpoint_sip (uuid, label, name, tenant_uuid) VALUES ('{endpoint}', 'provider {trunk_id}', "
        f"'trunk{trunk_id}', '{TENANT}');"
        f"INSERT INTO trunkfeatures (id, tenant_uuid, endpoint_sip_uuid) VALUES ({trunk_id}, '{TENANT}', '{endpoint}');"
    )
    if registers:
        section = str(uuid.uuid4())
        sql += f"{SECTION} VALUES ('{section}', 'registration', '{endpoint}');"
        if expiration is not None:
            sql += (
                "INSERT INTO endpoint_sip_section_option (key, value, endpoint_sip_section_uuid) "
                f"VALUES ('expiration', '{expiration}', '{section}');"
            )
    if template:
        sql += f"INSERT INTO endpoint_sip_template (child_uuid, parent_uuid, priority) VALUES ('{endpoint}', "
        sql += f"'{template}', 0);"
    cluster.psql("doctor", sql)
    return endpoint


def add_template(cluster, expiration: str) -> str:
    endpoint, section = str(uuid.uuid4()), str(uuid.uuid4())
    cluster.psql(
        "doctor",
        f"INSERT INTO endpoint_sip (uuid, label, name, tenant_uuid, template) VALUES ('{endpoint}', 'tpl', "
        f"'tpl{endpoint[:8]}', '{TENANT}', true);"
        f"{SECTION} VALUES ('{section}', 'registration', '{endpoint}');"
        "INSERT INTO endpoint_sip_section_option (key, value, endpoint_sip_section_uuid) "
        f"VALUES ('expiration', '{expiration}', '{section}');",
    )
    return endpoint


def test_trunk_expiry_passes_below_300_and_fails_at_or_above(database, tmp_path):
    assert trunk_expiry(settings(tmp_path, database)).detail == "no SIP trunk registers"
    add_trunk(database, 1, expiration="120")
    add_trunk(database, 2, expiration=None, registers=False)  # a trunk that does not register: not concerned
    result = trunk_expiry(settings(tmp_path, database))
    assert result.status == PASS and "1 registering trunk" in result.detail
    add_trunk(database, 3, expiration="300")
    result = trunk_expiry(settings(tmp_path, database))
    assert result.status == FAIL and "trunk 3 (provider 3): 300 s" in result.detail and "trunk 1" not in result.detail


def test_trunk_without_expiration_gets_asterisks_default_and_fails(database, tmp_path):
    add_trunk(database, 4, expiration=None)
    result = trunk_expiry(settings(tmp_path, database))
    assert result.status == FAIL and "3600 s (Asterisk's default, none set)" in result.detail


def test_trunk_inherits_expiration_from_its_template(database, tmp_path):
    short = add_template(database, "180")
    add_trunk(database, 5, expiration=None, template=short)
    assert trunk_expiry(settings(tmp_path, database)).status == PASS
    long = add_template(database, "3600")
    add_trunk(database, 6, expiration=None, template=long)
    result = trunk_expiry(settings(tmp_path, database))
    assert result.status == FAIL and "trunk 6" in result.detail and "trunk 5" not in result.detail


def test_local_database_utf8(database, tmp_path):
    assert local_database_utf8(settings(tmp_path, database)).status == PASS
    database.psql("postgres", "DROP DATABASE IF EXISTS doctor_ascii WITH (FORCE)")
    database.create_database("doctor_ascii", encoding="SQL_ASCII")
    result = local_database_utf8(settings(tmp_path, database, database="doctor_ascii"))
    assert result.status == FAIL and "SQL_ASCII" in result.detail and "UTF-8" in result.fix


def test_unreachable_database_fails_naming_it(tmp_path):
    tree = {"root": str(tmp_path), "config_db": {"url": "postgresql://postgres@/asterisk?host=/nonexistent"}}
    result = trunk_expiry(Settings.from_tree(tree))
    assert result.status == FAIL and "cannot read" in result.detail and "config_db.url" in result.fix


# --- a slave's whole doctor: ICMP to the master, provd plugins, the database --------------------------


def slave_engine(tmp_path, cluster, master: str) -> HAEngine:
    tree = {
        "plugins": {
            "replication": [],
            "file_sync": [],
            "health_probes": ["icmp"],
            "device_provisioners": ["provd"],
            "service_managers": [],
        },
        "schedules": {"enabled": False},
    }
    engine = HAEngine(settings(tmp_path, cluster, **tree))
    engine.store.upgrade()
    engine.store.write_ha_settings(HASettings("slave", master))
    return engine


def by_name(engine) -> dict:
    return {report.name: report for report in engine.doctor()}


def test_slave_doctor_icmp_to_a_live_master_passes(database, tmp_path):
    found = by_name(slave_engine(tmp_path, database, "127.0.0.1"))
    assert found["master answers icmp"].status == PASS, found["master answers icmp"]
    assert found["provd: no provisioning plugins on the slave"].status == PASS
    assert found["slave database UTF-8"].status == PASS
    assert found["schedules installed"].status != PASS  # disabled in settings: a warning
    assert found["plugins loaded"].status == PASS


def test_slave_doctor_fails_on_a_silent_master_and_installed_provd_plugins(database, tmp_path):
    (tmp_path / "var/lib/wazo-provd/plugins/xivo-aastra-4.3.0").mkdir(parents=True)
    # An address of a test subnet nobody holds: the rig's unreachable route keeps the ping on this machine.
    with TestNetwork("10.203.9.0/29", "dr") as network:
        silent = str(next(network.subnet.hosts()))
        found = by_name(slave_engine(tmp_path, database, silent))
    assert found["master answers icmp"].status == FAIL and "ICMP" in found["master answers icmp"].fix
    provd = found["provd: no provisioning plugins on the slave"]
    assert provd.status == FAIL and "xivo-aastra-4.3.0" in provd.detail
