"""Fixtures for the edit steps: Wazo's real configuration schema on a real PostgreSQL cluster."""

from __future__ import annotations

import itertools
import uuid

import pytest

from wazo_ha_core.settings import Settings

_counter = itertools.count()


@pytest.fixture(scope="session")
def asterisk_template(pg_cluster, wazo_schema_files):
    """A database with Wazo's real schema and default data, used as a template for each test."""
    schema, data = wazo_schema_files
    pg_cluster.create_database("asterisk_template")
    pg_cluster.psql_file("asterisk_template", schema)
    pg_cluster.psql_file("asterisk_template", data)
    return "asterisk_template"


@pytest.fixture
def asterisk_db(pg_cluster, asterisk_template):
    """A fresh copy of the configuration database for one test; yields its name."""
    name = f"asterisk_{next(_counter)}"
    pg_cluster.psql("postgres", f'CREATE DATABASE "{name}" TEMPLATE "{asterisk_template}"')
    yield name
    pg_cluster.psql("postgres", f'DROP DATABASE "{name}"')


def add_tenant(cluster, database, aor_options: dict[str, str] | None, with_template: bool = True) -> str | None:
    """A tenant with a global SIP template; ``aor_options`` None: the template has no aor section.

    Returns the template's uuid (None when the tenant has no global template).
    """
    tenant, template = str(uuid.uuid4()), str(uuid.uuid4())
    sql = [f"INSERT INTO tenant (uuid, slug) VALUES ('{tenant}', 't{next(_counter)}');"]
    if with_template:
        sql.append(
            "INSERT INTO endpoint_sip (uuid, label, name, tenant_uuid, template) "
            f"VALUES ('{template}', 'global', 'global_{tenant[:8]}', '{tenant}', true);"
        )
        sql.append(f"UPDATE tenant SET global_sip_template_uuid = '{template}' WHERE uuid = '{tenant}';")
        if aor_options is not None:
            section = str(uuid.uuid4())
            sql.append(
                "INSERT INTO endpoint_sip_section (uuid, type, endpoint_sip_uuid) "
                f"VALUES ('{section}', 'aor', '{template}');"
            )
            for key, value in aor_options.items():
                sql.append(
                    "INSERT INTO endpoint_sip_section_option (key, value, endpoint_sip_section_uuid) "
                    f"VALUES ('{key}', '{value}', '{section}');"
                )
    cluster.psql(database, "\n".join(sql))
    return template if with_template else None


def sip_rows(cluster, database) -> str:
    """Every row of the two SIP section tables, in a stable order (the whole truth, uuids included)."""
    return cluster.psql(
        database,
        "SELECT s.uuid, s.type, s.endpoint_sip_uuid, o.uuid, o.key, o.value FROM endpoint_sip_section s "
        "LEFT JOIN endpoint_sip_section_option o ON o.endpoint_sip_section_uuid = s.uuid ORDER BY 1, 4;",
    )


def expiry(cluster, database, template) -> dict[str, str]:
    rows = cluster.psql(
        database,
        "SELECT o.key, o.value FROM endpoint_sip_section s JOIN endpoint_sip_section_option o "
        f"ON o.endpoint_sip_section_uuid = s.uuid WHERE s.endpoint_sip_uuid = '{template}' AND s.type = 'aor' "
        "AND o.key LIKE '%expiration' ORDER BY 1;",
    )
    return dict(line.split("|") for line in rows.splitlines())


def slave_db_settings(cluster, directory, **slave_db):
    """A slave's settings whose ``slave_db`` steps edit ``cluster`` for real (pg_hba, ``pg_ctl reload``).

    ``slave_db`` adds to the section (e.g. ``require_tls=True``); the include file and the
    replication password live in ``directory``.
    """
    pg_ctl = str(cluster.bindir / "pg_ctl")
    reload_command = ["runuser", "-u", "postgres", "--", pg_ctl, "reload", "-D", str(cluster.data)]
    return Settings.from_tree(
        {
            "root": "/",
            "config_db": {"url": cluster.socket_url("asterisk")},
            "paths": {
                "pg_hba": str(cluster.data / "pg_hba.conf"),
                "pg_listen_conf": str(directory / "conf.d/wazo-ha.conf"),
                "replication_password": str(directory / "replication-password"),
            },
            "slave_db": {
                "listen_addresses": ["localhost", "127.0.0.1"],
                "reload_command": reload_command,
                "restart_command": reload_command,
                **slave_db,
            },
        }
    )
