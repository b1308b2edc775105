"""Skip by markers (since_verified.py): no scan when neither server committed anything since the last verified
run; every change, on either side, in flight or not, still copied."""

from __future__ import annotations

import time

import psycopg2
import pytest

from wazo_ha_core.errors import SlaveChangesPending
from wazo_ha_plugins.pg_dump.since_verified import STATE_KEY

from .conftest import DATABASE


def settle(pair) -> None:
    """Leave autovacuum nothing to do: its ANALYZE takes a transaction id, which moves the markers (a run
    then scans: right, but not what these tests look at)."""
    pair.master_sql("VACUUM ANALYZE")
    pair.slave_sql("VACUUM ANALYZE")


def verify_unchanged(pair, plugin) -> None:
    """Runs until one verified the pair unchanged by the fingerprints and recorded the markers (a transaction
    committed on the slave during its scan, e.g. autovacuum's, leaves them unrecorded), within a deadline."""
    deadline = time.monotonic() + 60
    while True:
        result = plugin.replicate(pair.peer)
        assert (result.outcome, result.figures["unchanged_by"]) == ("skipped", "fingerprints")
        if plugin.context.state.get(STATE_KEY) is not None:
            return
        assert time.monotonic() < deadline, "no run recorded the markers within 60 s"


@pytest.fixture
def verified(pair):
    """A pair after a good copy and a run that verified it unchanged by the fingerprints (markers recorded)."""
    store = pair.store()
    plugin = pair.plugin(store)
    assert plugin.replicate(pair.peer).outcome == "copied"
    assert plugin.context.state.get(STATE_KEY) is None  # a copy records none: its commit moved the slave's
    settle(pair)
    verify_unchanged(pair, plugin)
    return plugin


def master_connection(pair):
    return psycopg2.connect(host=str(pair.master.socket_dir), port=pair.master.port, user="postgres", dbname=DATABASE)


def test_nothing_committed_is_skipped_by_the_markers(pair, verified):
    result = verified.replicate(pair.peer)
    assert (result.outcome, result.figures["unchanged_by"]) == ("skipped", "markers")
    assert result.figures["tables"] > 0 and "cel" in result.figures["excluded"]  # reported as a scan would
    assert verified.replicate(pair.peer).figures["unchanged_by"] == "markers"


@pytest.mark.parametrize(
    "change, check, expected",
    [
        (
            "UPDATE userfeatures SET firstname = 'Zoë' WHERE id = 100007",
            "SELECT firstname FROM userfeatures WHERE id = 100007",
            "Zoë",
        ),
        ("DELETE FROM extensions WHERE id = 100003", "SELECT count(*) FROM extensions WHERE id = 100003", "0"),
        ("SELECT nextval('userfeatures_id_seq')", "SELECT last_value FROM userfeatures_id_seq", "100041"),
    ],
    ids=["update", "delete", "sequence-only"],
)
def test_any_replicated_change_on_the_master_is_copied(pair, verified, change, check, expected):
    pair.master_sql(change)

    assert verified.replicate(pair.peer).outcome == "copied"
    assert pair.slave_sql(check).strip() == expected


def test_a_nextval_that_takes_no_transaction_id_is_copied(pair):
    """nextval logs (and takes a transaction id) once per 32 values: the others move no snapshot, only the value."""
    pair.master_sql("SELECT nextval('userfeatures_id_seq')")  # logged: the next 32 are not
    plugin = pair.plugin(pair.store())
    assert plugin.replicate(pair.peer).outcome == "copied"
    settle(pair)
    verify_unchanged(pair, plugin)
    assert pair.master_sql(
        "SELECT nextval('userfeatures_id_seq'); SELECT pg_current_xact_id_if_assigned() IS NULL"
    ).split() == ["100042", "t"]  # the premise: no transaction id

    assert plugin.replicate(pair.peer).outcome == "copied"
    assert pair.slave_sql("SELECT last_value FROM userfeatures_id_seq").strip() == "100042"


def test_an_edit_on_the_slave_is_never_skipped_by_the_markers(pair, verified):
    pair.slave_sql("UPDATE userfeatures SET firstname = 'edited on the slave' WHERE id = 100001")

    with pytest.raises(SlaveChangesPending):  # not skipped: seen, and refused as a slave-side edit
        verified.replicate(pair.peer)
    assert verified.replicate(pair.peer, discard_slave_changes=True).outcome == "copied"
    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100001").strip() == "Prénom 1"


def test_a_change_in_an_excluded_table_falls_back_to_the_fingerprints(pair, verified):
    pair.master_sql("DELETE FROM queue_log WHERE id IN (SELECT min(id) FROM queue_log)")

    result = verified.replicate(pair.peer)
    assert (result.outcome, result.figures["unchanged_by"]) == ("skipped", "fingerprints")


def test_a_transaction_in_flight_when_the_markers_were_recorded_is_copied_once_committed(pair):
    """The in-flight transaction's id is below the snapshot's xmax (a later one committed first): only the
    in-progress list shows it. A marker of xmax (or of the WAL position at the run) alone would skip its commit."""
    store = pair.store()
    plugin = pair.plugin(store)
    assert plugin.replicate(pair.peer).outcome == "copied"
    settle(pair)
    in_flight = master_connection(pair)
    try:
        with in_flight.cursor() as cursor:
            cursor.execute("UPDATE userfeatures SET firstname = 'committed late' WHERE id = 100002")
            cursor.execute("SELECT pg_current_xact_id_if_assigned()::text")
            late = int(cursor.fetchone()[0])
        pair.master_sql("UPDATE cel SET userfield = 'later, committed first' WHERE id IN (SELECT min(id) FROM cel)")
        verify_unchanged(pair, plugin)  # records the markers with the update in flight
        xmax = int(pair.master_sql("SELECT pg_snapshot_xmax(pg_current_snapshot())").strip())
        assert late < xmax  # the premise: its commit will not move xmax
        in_flight.commit()
    finally:
        in_flight.close()

    assert plugin.replicate(pair.peer).outcome == "copied"
    assert pair.slave_sql("SELECT firstname FROM userfeatures WHERE id = 100002").strip() == "committed late"


def test_markers_of_another_peer_or_exclusion_list_are_not_used(pair, verified):
    other = pair.plugin(pair.store(), exclude_tables_add=["extensions"])
    result = other.replicate(pair.peer)
    assert result.figures.get("unchanged_by") != "markers"
