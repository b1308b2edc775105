"""The state store on the embedded SQLite file and on a real PostgreSQL cluster.

Same tests on both backends: migrations up and down, the tables matching the
migrations, the journal, plugin state, and (PostgreSQL) the store's own schema.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text

from wazo_ha_core.config import HASettings
from wazo_ha_core.errors import StoreError, StoreNotMigrated
from wazo_ha_core.journal import Event
from wazo_ha_core.store import Store
from wazo_ha_core.store.store import VERSION_TABLE
from wazo_ha_core.store.tables import metadata

TABLES = {"ha_settings", "event", "plugin_state"}


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "sqlite":
        store = Store(f"sqlite:///{tmp_path}/state/state.db")
    else:
        cluster = request.getfixturevalue("pg_cluster")
        database = f"store_{abs(hash(request.node.name)) % 10**8}"
        cluster.psql("postgres", f'DROP DATABASE IF EXISTS "{database}"')
        cluster.create_database(database)
        store = Store(cluster.tcp_url(database), schema="wazo_ha")
    yield store
    store.close()


def table_names(store: Store) -> set[str]:
    return set(inspect(store.engine).get_table_names(schema=store.schema))


def test_migrations_up_down_up(store):
    assert store.current_revision() is None
    with pytest.raises(StoreNotMigrated, match="never migrated"):
        store.read_ha_settings()
    store.upgrade()
    assert store.current_revision() == store.head_revision() == "0001"
    assert table_names(store) >= TABLES | {VERSION_TABLE}
    store.write_ha_settings(HASettings("master", "10.0.0.2"))
    store.downgrade("base")
    assert store.current_revision() is None
    assert not (table_names(store) & TABLES)
    with pytest.raises(StoreNotMigrated):
        store.events()
    store.upgrade()
    assert store.read_ha_settings() is None


def test_tables_match_the_migrations(store):
    store.upgrade()
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_schemas": bool(store.schema),
                "include_name": lambda name, type_, parent: type_ != "schema" or name == store.schema,
                "include_object": lambda obj, name, type_, reflected, compare_to: name != VERSION_TABLE,
            },
        )
        # Reflection ignores the schema translate map: compare against the tables moved into the schema.
        target = MetaData()
        for table in metadata.tables.values():
            table.to_metadata(target, schema=store.schema)
        differences = compare_metadata(context, target)
    assert differences == []


def test_ha_settings_single_row(store):
    store.upgrade()
    assert store.read_ha_settings() is None
    store.write_ha_settings(HASettings("slave", "2001:db8::2"))
    store.write_ha_settings(HASettings("master", "10.0.0.2"))
    assert store.read_ha_settings() == HASettings("master", "10.0.0.2")
    with store.engine.connect() as connection:
        table = f"{store.schema}.ha_settings" if store.schema else "ha_settings"
        assert connection.execute(text(f"SELECT count(*) FROM {table}")).scalar() == 1


def test_journal_is_ordered_filtered_and_round_trips_figures(store):
    store.upgrade()
    start = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    for minutes, kind in [(0, "edit"), (5, "replication"), (10, "replication"), (15, "failover")]:
        store.append_event(
            Event(
                kind=kind,
                started_at=start + timedelta(minutes=minutes),
                ended_at=start + timedelta(minutes=minutes, seconds=2.5),
                outcome="ok",
                message="données répliquées\tligne 2\n",
                figures={"rows": minutes, "tables": ["tenant", "endpoint_sip"], "ratio": 0.5},
            )
        )
    events = store.events()
    assert [e.kind for e in events] == ["failover", "replication", "replication", "edit"]
    assert events[0].duration == 2.5
    assert events[0].started_at.tzinfo is not None
    assert events[1].message == "données répliquées\tligne 2\n"
    assert events[1].figures == {"rows": 10, "tables": ["tenant", "endpoint_sip"], "ratio": 0.5}
    assert [e.figures["rows"] for e in store.events(kind="replication")] == [10, 5]
    assert [e.kind for e in store.events(since=start + timedelta(minutes=10))] == ["failover", "replication"]
    assert len(store.events(limit=2)) == 2


def test_settings_and_event_written_together(store):
    store.upgrade()
    event = Event(kind="edit", started_at=datetime.now(UTC), ended_at=datetime.now(UTC), figures={"x": 1})
    store.write_ha_settings(HASettings("master", "10.0.0.2"), event)
    assert store.events()[0].figures == {"x": 1}


def test_plugin_state(store):
    store.upgrade()
    provd = store.plugin_state("device_provisioners.provd")
    other = store.plugin_state("service_managers.berofos")
    assert provd.get("default", "absent") == "absent"
    provd.set("default", {"registrar_backup": "10.0.0.9", "proxy_backup": None})
    other.set("default", 1)
    provd.set("default", {"registrar_backup": "10.0.0.8", "proxy_backup": None})
    assert provd.get("default") == {"registrar_backup": "10.0.0.8", "proxy_backup": None}
    assert other.get("default") == 1
    provd.delete("default")
    provd.delete("default")
    assert provd.get("default") is None and other.get("default") == 1


def test_reading_and_writing_never_loads_the_orm(store):
    """The store is SQLAlchemy Core: a fresh interpreter writing and reading it on this backend never
    imports ``sqlalchemy.orm`` (nor alembic: only migrations need it)."""
    store.upgrade()
    code = textwrap.dedent(
        """
        import sys
        from datetime import UTC, datetime
        from wazo_ha_core.config import HASettings
        from wazo_ha_core.journal import Event
        from wazo_ha_core.store import Store

        store = Store(sys.argv[1], schema="wazo_ha")
        event = Event(kind="edit", started_at=datetime.now(UTC), ended_at=None, figures={"x": 1})
        store.write_ha_settings(HASettings("master", "10.0.0.2"), event)
        store.plugin_state("test").set("key", [1])
        assert store.plugin_state("test").get("key") == [1] and store.events()[0].figures == {"x": 1}
        store.close()
        print(sorted(name for name in sys.modules if name.startswith(("sqlalchemy.orm", "alembic"))))
        """
    )
    url = store.url.render_as_string(hide_password=False)
    result = subprocess.run(
        [sys.executable, "-c", code, url], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_postgresql_store_lives_in_its_own_schema(request):
    cluster = request.getfixturevalue("pg_cluster")
    cluster.create_database("own_schema")
    store = Store(cluster.tcp_url("own_schema"), schema="ha_state")
    try:
        store.upgrade()
        store.write_ha_settings(HASettings("master", "10.0.0.2"))
        public = cluster.psql("own_schema", "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        assert public.strip() == ""
        ours = set(cluster.psql("own_schema", "SELECT tablename FROM pg_tables WHERE schemaname = 'ha_state'").split())
        assert ours == TABLES | {VERSION_TABLE}
        assert "master" in cluster.psql("own_schema", "SELECT node_type FROM ha_state.ha_settings")
    finally:
        store.close()


def test_wrong_password_is_a_store_error_without_the_password(request):
    cluster = request.getfixturevalue("pg_cluster")
    store = Store(cluster.tcp_url("postgres", password="not-the-password"))
    with pytest.raises(StoreError) as caught:
        store.current_revision()
    assert "not-the-password" not in str(caught.value)
    assert "password authentication failed" in str(caught.value)


def test_sqlite_file_is_private(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/private/state.db")
    store.upgrade()
    assert oct((tmp_path / "private/state.db").stat().st_mode & 0o777) == "0o600"
    store.close()
