"""Users' statuses (DND, forwards, …) changed on a serving slave go back to the master (issue 18).

Real PostgreSQL clusters with Wazo's schema; the statuses change through SQL as
Wazo's services write them (userfeatures columns).
"""

from __future__ import annotations

import psycopg2
import pytest

from wazo_ha_core.errors import SlaveChangesPending
from wazo_ha_core.user_statuses.merge import StatusUpdate
from wazo_ha_plugins.pg_dump import user_statuses

from .conftest import DATABASE, content


@pytest.fixture
def copied(pair):
    plugin = pair.plugin(pair.store())
    assert plugin.replicate(pair.peer).outcome == "copied"
    return plugin


def first_user(pair) -> str:
    return pair.master_sql("SELECT uuid FROM userfeatures ORDER BY id LIMIT 1").strip()


def statuses(cluster_sql, uuid: str) -> str:
    return cluster_sql(
        f"SELECT enablednd, enablebusy, destbusy, firstname FROM userfeatures WHERE uuid = '{uuid}'"
    ).strip()


def test_dnd_turned_on_on_the_serving_slave_reaches_the_master_and_stays_on_the_slave(pair, copied):
    uuid = first_user(pair)
    pair.slave_sql(f"UPDATE userfeatures SET enablednd = 1 WHERE uuid = '{uuid}'")

    result = copied.replicate(pair.peer)

    assert result.outcome == "copied"
    assert result.figures["statuses_to_master"] == 1
    assert "1 users' statuses carried back" in result.message
    assert pair.master_sql(f"SELECT enablednd FROM userfeatures WHERE uuid = '{uuid}'").strip() == "1"
    assert pair.slave_sql(f"SELECT enablednd FROM userfeatures WHERE uuid = '{uuid}'").strip() == "1"
    assert content(pair.slave)["userfeatures"] == content(pair.master)["userfeatures"]


def test_a_forward_set_on_both_sides_keeps_the_slave_s_whole_and_a_master_only_change_reaches_the_slave(pair, copied):
    first, second = pair.master_sql("SELECT uuid FROM userfeatures ORDER BY id LIMIT 2").split()
    pair.master_sql(f"UPDATE userfeatures SET enablebusy = 1, destbusy = '2000' WHERE uuid = '{first}'")
    pair.master_sql(f"UPDATE userfeatures SET enablednd = 1 WHERE uuid = '{second}'")
    pair.slave_sql(f"UPDATE userfeatures SET enablebusy = 1, destbusy = 'tab\there é' WHERE uuid = '{first}'")

    result = copied.replicate(pair.peer)

    assert result.figures["statuses_to_master"] == 1 and result.figures["status_conflicts"] == 1
    assert result.figures["statuses_to_slave"] == 1
    for side in (pair.master_sql, pair.slave_sql):
        assert side(f"SELECT destbusy FROM userfeatures WHERE uuid = '{first}'") == "tab\there é\n"
        assert side(f"SELECT enablednd FROM userfeatures WHERE uuid = '{second}'").strip() == "1"


def test_a_configuration_column_changed_on_the_slave_is_not_carried_back(pair, copied):
    uuid = first_user(pair)
    before = statuses(pair.master_sql, uuid)
    pair.slave_sql(f"UPDATE userfeatures SET firstname = 'Renamed on the slave' WHERE uuid = '{uuid}'")

    with pytest.raises(SlaveChangesPending):  # a configuration edit: the operator decides (slave_changes)
        copied.replicate(pair.peer)
    assert statuses(pair.master_sql, uuid) == before
    result = copied.replicate(pair.peer, discard_slave_changes=True)
    assert result.figures["statuses_to_master"] == 0
    assert statuses(pair.master_sql, uuid) == before


def test_the_next_run_after_a_carry_back_has_nothing_more_to_carry(pair, copied):
    uuid = first_user(pair)
    pair.slave_sql(f"UPDATE userfeatures SET incallfilter = 1 WHERE uuid = '{uuid}'")
    assert copied.replicate(pair.peer).figures["statuses_to_master"] == 1

    again = copied.replicate(pair.peer)

    assert again.outcome == "skipped"


def test_before_any_verified_copy_there_is_no_baseline_and_nothing_is_carried(pair):
    plugin = pair.plugin(pair.store())
    result = plugin.replicate(pair.peer)
    assert "statuses_to_master" not in result.figures
    assert plugin.context.state.get(user_statuses.BASELINE_KEY) is not None  # kept for the next run


def test_the_master_is_only_written_if_it_still_holds_what_was_planned(pair):
    uuid = first_user(pair)
    pair.master_sql(f"UPDATE userfeatures SET enablednd = 1 WHERE uuid = '{uuid}'")  # changed since planning
    connection = psycopg2.connect(
        host=str(pair.master.socket_dir), port=pair.master.port, user="postgres", dbname=DATABASE
    )
    try:
        cursor = connection.cursor()
        applied = user_statuses._compare_and_set(cursor, StatusUpdate(uuid, "dnd", (0,), expected=(0,)))
        connection.commit()
    finally:
        connection.close()
    assert applied is False
    assert pair.master_sql(f"SELECT enablednd FROM userfeatures WHERE uuid = '{uuid}'").strip() == "1"


def _slave_cursor_run(pair, work):
    connection = psycopg2.connect(
        host=str(pair.slave.socket_dir), port=pair.slave.port, user="postgres", dbname=DATABASE
    )
    try:
        return work(connection.cursor())
    finally:
        connection.close()


def test_a_slave_holding_the_baseline_costs_no_master_session_and_a_master_change_still_reaches_the_slave(pair, copied):
    uuid = first_user(pair)
    pair.master_sql(f"UPDATE userfeatures SET enablebusy = 1, destbusy = 'é\t2000' WHERE uuid = '{uuid}'")
    sessions = []

    def connect_master():
        sessions.append("opened")
        raise AssertionError("the master was read although the slave changed no status")

    plan = _slave_cursor_run(
        pair, lambda cursor: user_statuses.carry_back(connect_master, cursor, copied.context.state)
    )

    assert sessions == [] and plan.figures() == {"statuses_to_master": 0, "status_conflicts": 0}
    result = copied.replicate(pair.peer)
    assert result.outcome == "copied" and result.figures["statuses_to_master"] == 0
    assert statuses(pair.slave_sql, uuid) == statuses(pair.master_sql, uuid)
    assert "é\t2000" in statuses(pair.slave_sql, uuid)


def test_the_slave_s_non_default_statuses_as_the_server_filters_them_are_the_full_read_compacted(pair, copied):
    first, second, third = pair.master_sql("SELECT uuid FROM userfeatures ORDER BY id LIMIT 3").split()
    pair.slave_sql(
        f"UPDATE userfeatures SET destunc = 'tab\there \\ é' WHERE uuid = '{first}';"  # destination only, switch off
        f"UPDATE userfeatures SET enablevoicemail = 1 WHERE uuid = '{second}';"
        f"UPDATE userfeatures SET enablerna = 1, destrna = '' WHERE uuid = '{third}';"
    )

    def both(cursor):
        return (
            user_statuses.compact(user_statuses.read_statuses(cursor)),
            user_statuses.compact(user_statuses.read_statuses(cursor, not_defaults=True)),
        )

    full, filtered = _slave_cursor_run(pair, both)
    assert filtered == full and set(full) == {first, second, third}
    # and a slave change is still carried back through the full comparison
    assert copied.replicate(pair.peer).figures["statuses_to_master"] == 3
