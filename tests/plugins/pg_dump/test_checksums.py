"""The verification checksum on real PostgreSQL: every column type counts, and equal data on two
databases (whose enum OIDs differ) gives equal checksums — it is what verify-before-commit compares."""

from __future__ import annotations

import psycopg2
import pytest

from wazo_ha_plugins.pg_dump import catalog as cat
from wazo_ha_plugins.pg_dump.checks import checksums_of, scan

TABLE = """
CREATE TYPE colour AS ENUM ('red', 'green');
CREATE TABLE public.probe (
    id integer, name varchar(40), note text, flag boolean, ref uuid, raw bytea, day date,
    at timestamptz, tags varchar[], shade colour, doc json, ratio double precision, span interval,
    amount numeric
);
INSERT INTO public.probe VALUES (1, 'a', 'b', true, '5a5a5a5a-0000-4000-8000-000000000001', '\\x00', '2024-01-01',
    '2024-01-01 10:00+00', '{x,y}', 'red', '{"k": 1}', 0.5, '1 day', 1.50);
"""
CHANGES = {
    "id": "2",
    "name": "'A'",
    "note": "'b '",
    "flag": "false",
    "ref": "'5a5a5a5a-0000-4000-8000-000000000002'",
    "raw": "'\\x01'",
    "day": "'2024-01-02'",
    "at": "'2024-01-01 10:00:01+00'",
    "tags": "'{y,x}'",
    "shade": "'green'",
    "doc": """'{"k":1}'""",  # same JSON value, other text: json keeps the text, so must the copy
    "ratio": "0.25",
    "span": "'24 hours'",  # equal to '1 day' for interval's hash, not for its text
    "amount": "1.5",  # equal to 1.50 for numeric's hash, not for its text
}


def checksum(cluster, database: str) -> list:
    connection = psycopg2.connect(host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname=database)
    try:
        with connection.cursor() as cursor:
            catalog = cat.read_catalog(cursor, set())
            [probe] = [table for table in catalog.tables if table.name == "probe"]
            return checksums_of(scan(cursor, [probe], checksums=True))["probe"]
    finally:
        connection.close()


@pytest.fixture
def probe_db(master_cluster):
    master_cluster.psql("postgres", "DROP DATABASE IF EXISTS probe")
    master_cluster.create_database("probe")
    master_cluster.psql("probe", TABLE)
    yield "probe"
    master_cluster.psql("postgres", "DROP DATABASE IF EXISTS probe")


@pytest.mark.parametrize("column", sorted(CHANGES))
def test_a_change_in_any_column_changes_the_checksum(master_cluster, probe_db, column):
    before = checksum(master_cluster, probe_db)
    master_cluster.psql(probe_db, f"UPDATE probe SET {column} = {CHANGES[column]}")
    after = checksum(master_cluster, probe_db)
    assert after[0] == before[0] == 1
    assert after[1] != before[1], column


def test_equal_data_in_databases_with_different_enum_oids_has_equal_checksums(master_cluster, slave_cluster, probe_db):
    slave_cluster.psql("postgres", "DROP DATABASE IF EXISTS probe")
    slave_cluster.create_database("probe")
    try:
        # Other objects first, so the enum labels get other OIDs than on the master.
        slave_cluster.psql("probe", "CREATE TYPE filler AS ENUM ('a', 'b', 'c', 'd');" + TABLE)
        oids = (
            "SELECT string_agg(oid::text, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumlabel IN ('red', 'green')"
        )
        assert master_cluster.psql("probe", oids) != slave_cluster.psql("probe", oids)
        assert checksum(master_cluster, "probe") == checksum(slave_cluster, "probe")
    finally:
        slave_cluster.psql("postgres", "DROP DATABASE IF EXISTS probe")


@pytest.mark.parametrize("column", ["name", "note", "ref", "tags"])
def test_values_exchanged_between_two_rows_change_the_checksum(master_cluster, probe_db, column):
    # hash_record_extended is linear in its columns' hashes: a plain sum of it did not see this.
    master_cluster.psql(
        probe_db,
        "INSERT INTO probe (id, name, note, ref, tags) VALUES (7, 'x', E'tab\\there', "
        "'5a5a5a5a-0000-4000-8000-000000000007', '{z}')",
    )
    before = checksum(master_cluster, probe_db)
    master_cluster.psql(
        probe_db,
        f"UPDATE probe AS p SET {column} = o.{column} FROM probe AS o WHERE (p.id, o.id) IN ((1, 7), (7, 1))",
    )
    after = checksum(master_cluster, probe_db)
    assert after[0] == before[0] == 2
    assert after[1] != before[1], column
