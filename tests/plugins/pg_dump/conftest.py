"""Two real PostgreSQL clusters (master, slave) loaded with Wazo's real schema, shared by the session.

Each cluster keeps a template database built once; every test gets a fresh
``asterisk`` database cloned from it (a file copy, well under a second).
The master is reached over its Unix socket (it is the local node), the slave
over TCP with a scram-sha-256 password read from a 0600 file, as in production:
by default as the NOSUPERUSER replication role that enabling HA creates
(:class:`ReplicationRoleStep`, member of ``asterisk``, the owner of the slave's
tables as on a Wazo node), with the password at ``paths.replication_password``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import psycopg2
import pytest

from tests.rig import wazo_data
from tests.rig.postgres import PgCluster
from wazo_ha_core import Settings, replication_password
from wazo_ha_core.config import DISABLED, HASettings
from wazo_ha_core.extensions import PluginContext
from wazo_ha_core.slave_db import ReplicationRoleStep
from wazo_ha_core.store import Store
from wazo_ha_plugins.pg_dump import PgDumpReplication

TEMPLATE = "asterisk_tpl"
DATABASE = "asterisk"
SLAVE_UUID = "5a5a5a5a-0000-4000-8000-000000000042"
PASSWORD_FILE = "/etc/wazo-ha/replication-password"  # the default paths.replication_password
REPLICATION_ROLE = "wazo_ha_replication"  # the default slave_db.role
REPLICATION_PASSWORD = "test-replication-password-0123456789"
# As on a Wazo node: the configuration tables belong to role asterisk.
OWNED_BY_ASTERISK = """
DO $$
DECLARE name text;
BEGIN
  FOR name IN SELECT tablename FROM pg_tables WHERE schemaname = 'public' LOOP
    EXECUTE format('ALTER TABLE public.%I OWNER TO asterisk', name);
  END LOOP;
  -- sequences owned by a column followed their table; the others now
  FOR name IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' AND sequenceowner <> 'asterisk' LOOP
    EXECUTE format('ALTER SEQUENCE public.%I OWNER TO asterisk', name);
  END LOOP;
END $$;
"""
LIBRARY_SCHEMA_SQL = """
CREATE SCHEMA wazo_ha;
CREATE TABLE wazo_ha.event (id serial PRIMARY KEY, what text);
INSERT INTO wazo_ha.event (what) VALUES ({what});
"""


def _load(cluster: PgCluster, schema_files, extra_sql: str) -> None:
    schema, data = schema_files
    cluster.create_database(TEMPLATE)
    cluster.psql_file(TEMPLATE, schema)
    cluster.psql_file(TEMPLATE, data)
    cluster.psql(TEMPLATE, extra_sql)


@pytest.fixture(scope="session")
def master_cluster(pg_cluster_factory, wazo_schema_files) -> PgCluster:
    cluster = pg_cluster_factory()
    extra = (
        wazo_data.awkward_sql()
        + wazo_data.users_sql(40)
        + wazo_data.excluded_rows_sql(20)
        + LIBRARY_SCHEMA_SQL.format(what="'master journal'")
    )
    _load(cluster, wazo_schema_files, extra)
    return cluster


def create_replication_role(cluster: PgCluster, directory: Path) -> None:
    """The role as enabling HA on a slave creates it (issue 6's step, not a copy of it)."""
    password_file = directory / "replication-password"
    replication_password.write(password_file, REPLICATION_PASSWORD)
    settings = Settings.from_tree(
        {
            "root": "/",
            "config_db": {"url": cluster.socket_url("postgres")},
            "paths": {"replication_password": str(password_file)},
        }
    )
    ReplicationRoleStep(settings).apply(DISABLED, HASettings("slave", "127.0.0.1"))


@pytest.fixture(scope="session")
def slave_cluster(pg_cluster_factory, wazo_schema_files, tmp_path_factory) -> PgCluster:
    cluster = pg_cluster_factory()
    cluster.psql("postgres", "CREATE ROLE asterisk NOLOGIN")
    # The slave's own identity, an older copy of the site, its own call records and journal.
    extra = (
        f"UPDATE infos SET uuid = '{SLAVE_UUID}', timezone = 'Europe/Paris';"
        + wazo_data.tenant_sql()
        + wazo_data.users_sql(5, first=500)
        + wazo_data.excluded_rows_sql(6)
        + "SELECT setval('cel_id_seq', 9999);"
        + LIBRARY_SCHEMA_SQL.format(what="'slave journal'")
        + OWNED_BY_ASTERISK
    )
    _load(cluster, wazo_schema_files, extra)
    create_replication_role(cluster, tmp_path_factory.mktemp("slave-role"))
    return cluster


def reset_database(cluster: PgCluster) -> None:
    cluster.psql("postgres", f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    cluster.psql("postgres", f"CREATE DATABASE {DATABASE} TEMPLATE {TEMPLATE}")


@dataclass
class Pair:
    master: PgCluster
    slave: PgCluster
    root: Path

    peer = "127.0.0.1"

    def settings(self, **tree) -> Settings:
        return Settings.from_tree({"root": str(self.root), "timeouts": {"connect": 2}, **tree})

    def plugin_config(self, **overrides) -> dict:
        return {
            "master_host": str(self.master.socket_dir),
            "master_port": self.master.port,
            "slave_port": self.slave.port,
            **overrides,
        }

    def plugin(self, store: Store | None = None, **overrides) -> PgDumpReplication:
        store = store or self.store()
        context = PluginContext(
            name="pg_dump",
            namespace="wazo_ha.replication",
            config=self.plugin_config(**overrides),
            settings=self.settings(),
            state=store.plugin_state("replication.pg_dump"),
            log=__import__("logging").getLogger("wazo_ha.plugin.pg_dump"),
        )
        return PgDumpReplication(context)

    def store(self) -> Store:
        store = Store(f"sqlite:///{self.root}/var/lib/wazo-ha/state.db")
        store.upgrade()
        return store

    def master_sql(self, text: str) -> str:
        return self.master.psql(DATABASE, text)

    def slave_sql(self, text: str) -> str:
        return self.slave.psql(DATABASE, text)

    def slave_row(self, query: str) -> tuple:
        """One row read with psycopg2 (psql's text output would fold a carriage return)."""
        connection = psycopg2.connect(
            host=str(self.slave.socket_dir), port=self.slave.port, user="postgres", dbname=DATABASE
        )
        try:
            with connection.cursor() as cursor:
                cursor.execute(query)
                return cursor.fetchone()
        finally:
            connection.close()


def write_password_file(root: Path, password: str = REPLICATION_PASSWORD, mode: int = 0o600) -> Path:
    path = root / PASSWORD_FILE.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(password + "\n")
    os.chmod(path, mode)
    return path


def forget_last_copy_record(plugin, peer: str = Pair.peer) -> None:
    """Make the next run compare every table by hash (keys, buckets), as when the slave's copy was not made
    by this node: the record the since-copy method relies on (:mod:`wazo_ha_plugins.pg_dump.since_copy`) is
    dropped."""
    from wazo_ha_plugins.pg_dump import since_copy

    plugin.context.state.delete(since_copy.state_key(peer))


@pytest.fixture
def pair(master_cluster, slave_cluster, tmp_path) -> Pair:
    reset_database(master_cluster)
    reset_database(slave_cluster)
    write_password_file(tmp_path)
    return Pair(master_cluster, slave_cluster, tmp_path)


# --- reading a database in full, to compare before/after -------------------------------------


def content(cluster: PgCluster, database: str = DATABASE) -> dict[str, list[str]]:
    """Every row of every table of schemas public and wazo_ha (sorted text), and every sequence's state."""
    connection = psycopg2.connect(host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname=database)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET extra_float_digits = 3; SET TimeZone = 'UTC'")
            cursor.execute(
                "SELECT n.nspname, c.relname, c.relkind FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname IN ('public', 'wazo_ha') AND c.relkind IN ('r', 'S') ORDER BY 1, 2"
            )
            relations = cursor.fetchall()
            result: dict[str, list[str]] = {}
            for schema, name, kind in relations:
                query = f'SELECT t::text FROM "{schema}"."{name}" AS t'
                if kind == "S":
                    query = f'SELECT last_value::text || \',\' || is_called::text FROM "{schema}"."{name}"'
                cursor.execute(query)
                key = name if schema == "public" else f"{schema}.{name}"
                result[key] = sorted(row[0] for row in cursor.fetchall())
            return result
    finally:
        connection.close()
