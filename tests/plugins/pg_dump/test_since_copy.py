"""The copy after a copy (:mod:`wazo_ha_plugins.pg_dump.since_copy`): tables neither server changed are left
out, the others' differing keys come from the master's row versions written since the last good copy.

Each test checks which tables were left out or how they were compared (the figures), and that the slave
ends equal to the master (every row read back as text, :func:`.conftest.content`).
"""

from __future__ import annotations

import psycopg2
import pytest
from psycopg2 import sql

from wazo_ha_core import SlaveChangesPending
from wazo_ha_plugins.pg_dump import since_copy

from .conftest import DATABASE, content


@pytest.fixture
def copied(pair):
    plugin = pair.plugin(pair.store())
    assert plugin.replicate(pair.peer).outcome == "copied"
    return plugin


def assert_equal(pair, tables) -> None:
    slave, master = content(pair.slave), content(pair.master)
    for table in tables:
        assert slave[table] == master[table], table


def test_tables_neither_server_changed_are_left_out(pair, copied):
    pair.master_sql(
        "UPDATE userfeatures SET firstname = E'Zoé\\t\\\\n' WHERE id = 100002;"
        "INSERT INTO extensions (id, context, exten, type, typeval) "
        "VALUES (900001, 'acme-internal', E'é\\t1', 'user', '0');"
        "DELETE FROM endpoint_sip_section_option "
        "WHERE uuid = (SELECT min(uuid::text)::uuid FROM endpoint_sip_section_option);"
        "INSERT INTO endpoint_sip_section_option (uuid, key, value, endpoint_sip_section_uuid) "
        "VALUES (md5('since copy')::uuid, 'odd', E'new\\nline', md5('sectionendpoint4')::uuid)"
    )

    result = copied.replicate(pair.peer)

    figures = result.figures
    assert result.outcome == "copied"
    changed = {"userfeatures", "extensions", "endpoint_sip_section_option"}
    assert figures["methods"] == dict.fromkeys(changed, "since copy")
    assert figures["unchanged_tables"] == figures["tables"] - len(changed)
    # userfeatures 1 edited, extensions 1 added, options 1 removed and 1 added
    assert (figures["keys"], figures["rows"], figures["deleted"]) == (4, 3, 2)
    assert figures["rewritten_after_verification"] == []
    assert_equal(pair, changed)


def test_the_copy_after_that_one_leaves_out_what_it_wrote(pair, copied):
    pair.master_sql("UPDATE userfeatures SET firstname = 'Once' WHERE id = 100002")
    assert copied.replicate(pair.peer).figures["methods"] == {"userfeatures": "since copy"}
    pair.master_sql("UPDATE linefeatures SET description = 'elsewhere' WHERE id = (SELECT min(id) FROM linefeatures)")

    figures = copied.replicate(pair.peer).figures

    assert figures["methods"] == {"linefeatures": "since copy"}
    assert figures["keys"] == 1
    assert_equal(pair, ["userfeatures", "linefeatures"])


def test_a_transaction_still_open_during_the_copy_is_found_after_it_commits(pair, copied):
    # Its row versions carry a transaction id below the copy snapshot's xmax, listed in progress: only the
    # snapshot's in-progress list tells them from the rows the copy saw.
    late = psycopg2.connect(host=str(pair.master.socket_dir), port=pair.master.port, user="postgres", dbname=DATABASE)
    try:
        with late.cursor() as cursor:
            cursor.execute("UPDATE userfeatures SET firstname = 'Late' WHERE id = 100003")  # takes an id now
            pair.master_sql("UPDATE userfeatures SET firstname = 'Early' WHERE id = 100004")  # a later id
            during = copied.replicate(pair.peer)
            assert during.figures["keys"] == 1
            assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100003").strip() != "Late"
        late.commit()
    finally:
        late.close()

    result = copied.replicate(pair.peer)

    assert result.figures["methods"] == {"userfeatures": "since copy"}
    assert result.figures["keys"] == 1
    assert result.figures["rewritten_after_verification"] == []
    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100003").strip() == "Late"
    assert_equal(pair, ["userfeatures"])


def test_rows_frozen_and_rewritten_by_vacuum_after_an_edit_are_still_found(pair, copied):
    pair.master_sql("UPDATE userfeatures SET lastname = 'Frozen' WHERE id = 100005")
    pair.master_sql("VACUUM (FREEZE) userfeatures")
    pair.master_sql("VACUUM FULL userfeatures")

    result = copied.replicate(pair.peer)

    assert result.figures["methods"] == {"userfeatures": "since copy"}
    assert result.figures["keys"] == 1
    assert_equal(pair, ["userfeatures"])


def test_a_new_version_the_condition_misses_is_caught_by_the_verification(pair, copied, monkeypatch):
    # Test hook: the master's new row versions are never found, so the edited row looks unchanged; the
    # verification's checksums must see userfeatures differ and have it rewritten whole.
    monkeypatch.setattr(since_copy.NewVersions, "condition", lambda self: sql.SQL("false"))
    pair.master_sql("UPDATE userfeatures SET firstname = 'Missed' WHERE id = 100003")

    result = copied.replicate(pair.peer)

    assert result.outcome == "copied"
    assert result.figures["rewritten_after_verification"] == ["userfeatures"]
    assert result.figures["methods"] == {"userfeatures": "whole"}
    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100003").strip() == "Missed"
    assert_equal(pair, ["userfeatures"])


def restart(pair) -> None:
    # Stands for a restore from a backup: its transaction ids may repeat those of a lost timeline.
    pair.master.restart()


def create_again(pair) -> None:
    # A database made from a template (or a file copy) keeps its rows' xmin: only its identity tells it apart.
    pair.master.psql("postgres", "CREATE DATABASE branch TEMPLATE asterisk")
    pair.master.psql("postgres", "DROP DATABASE asterisk WITH (FORCE)")
    pair.master.psql("postgres", "CREATE DATABASE asterisk TEMPLATE branch")
    pair.master.psql("postgres", "DROP DATABASE branch")


def damage_the_record(pair, plugin, damaged: dict) -> None:
    key = since_copy.state_key(pair.peer)
    plugin.context.state.set(key, {**plugin.context.state.get(key), **damaged})


@pytest.mark.parametrize("another_master", [restart, create_again], ids=["restarted", "database created again"])
def test_another_incarnation_of_the_master_has_every_table_examined(pair, copied, another_master):
    another_master(pair)
    pair.master_sql("UPDATE userfeatures SET firstname = 'Another' WHERE id = 100002")

    result = copied.replicate(pair.peer)

    assert result.figures["unchanged_tables"] == 0
    assert result.figures["methods"] == {"userfeatures": "keys"}
    assert_equal(pair, ["userfeatures"])


@pytest.mark.parametrize(
    "damaged",
    [{"master": "not a side"}, {"columns": None}, {"slave": {"cluster": 7, "tables": {}}}],
    ids=["side", "columns", "cluster"],
)
def test_a_damaged_record_is_no_record(pair, copied, damaged):
    damage_the_record(pair, copied, damaged)
    pair.master_sql("UPDATE userfeatures SET firstname = 'Damaged' WHERE id = 100002")

    result = copied.replicate(pair.peer)

    assert result.figures["unchanged_tables"] == 0
    assert result.figures["methods"] == {"userfeatures": "keys"}
    assert_equal(pair, ["userfeatures"])


@pytest.mark.parametrize("snapshot", ["garbage", "1:2", "1:x:", None, "5:9999999999999:"])
def test_a_recorded_snapshot_that_does_not_parse_or_is_too_old_falls_back_to_hashing(pair, copied, snapshot):
    key = since_copy.state_key(pair.peer)
    record = copied.context.state.get(key)
    damage_the_record(pair, copied, {"master": {**record["master"], "snapshot": snapshot}})
    pair.master_sql("UPDATE userfeatures SET firstname = 'Snapshot' WHERE id = 100002")

    result = copied.replicate(pair.peer)

    assert result.figures["unchanged_tables"] == result.figures["tables"] - 1  # the record itself still holds
    assert result.figures["methods"] == {"userfeatures": "keys"}
    assert_equal(pair, ["userfeatures"])


def test_a_slave_edit_of_a_table_the_master_left_alone_is_still_refused(pair, copied):
    pair.slave_sql(
        "UPDATE linefeatures SET description = 'edited on the slave' WHERE id = (SELECT min(id) FROM linefeatures)"
    )
    pair.master_sql("UPDATE userfeatures SET firstname = 'Master' WHERE id = 100002")

    with pytest.raises(SlaveChangesPending) as refused:
        copied.replicate(pair.peer)

    assert "linefeatures" in str(refused.value)
    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100002").strip() != "Master"


def test_a_slave_edit_of_a_table_the_master_also_changed_is_refused(pair, copied):
    pair.slave_sql("UPDATE userfeatures SET lastname = 'Slave' WHERE id = 100004")
    pair.master_sql("UPDATE userfeatures SET firstname = 'Master' WHERE id = 100002")

    with pytest.raises(SlaveChangesPending) as refused:
        copied.replicate(pair.peer)

    assert "userfeatures" in str(refused.value)


def test_a_forced_run_compares_every_table_by_checksum(pair, copied):
    # --force is the operator's full check: no table is left out on the record's word.
    pair.master_sql("UPDATE userfeatures SET firstname = 'Forced' WHERE id = 100002")

    result = copied.replicate(pair.peer, force=True)

    assert result.figures["unchanged_tables"] == 0
    assert result.figures["methods"] == {"userfeatures": "keys"}
    assert_equal(pair, ["userfeatures"])
    pair.master_sql("UPDATE userfeatures SET firstname = 'Scheduled' WHERE id = 100003")
    assert copied.replicate(pair.peer).figures["methods"] == {"userfeatures": "since copy"}  # the record was kept
