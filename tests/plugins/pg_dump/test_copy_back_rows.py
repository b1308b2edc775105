"""Copy-back of cel and queue_log rows, slave → master, on two real clusters with Wazo's schema: exactly once.

The master pulls (connects to the slave as the replication role, like
replication does); "exactly once" is checked as multisets of row contents
(every column but the id and cel.call_log_id), so a lost row and a duplicate
both show.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest

from wazo_ha_core import AlreadyRunning, PluginError
from wazo_ha_plugins.pg_dump.connection import connect
from wazo_ha_plugins.pg_dump.copy_back import LEDGER, LEDGER_SCHEMA, MASTER_LOCK_KEY, copy_back_rows
from wazo_ha_rig.waiting import wait_for

from .conftest import DATABASE

CHILD = Path(__file__).with_name("copy_back_child.py")
CEL_DATA = (
    "eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten, context, channame, "
    "appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, peer, extra"
)
QUEUE_LOG_DATA = '"time", callid, queuename, agent, event, data1, data2, data3, data4, data5'
SERVING_ROWS = """
INSERT INTO cel (eventtype, eventtime, userdeftype, cid_name, cid_num, cid_ani, cid_rdnis, cid_dnid, exten, context,
                 channame, appname, appdata, amaflags, accountcode, peeraccount, uniqueid, linkedid, userfield, peer,
                 call_log_id)
SELECT 'ANSWER', timestamptz '2030-06-01 10:00:00+00' + i * interval '1 ms', '', 'Slave caller ' || i, '2' || i,
       '', '', '', 's', 'acme-internal', 'PJSIP/slave-' || i, 'Dial', '', 3, '', '', '1800000000.' || i,
       '1800000000.' || (i / 3), '', '', 77
FROM generate_series(1, {cel}) AS i;
INSERT INTO queue_log ("time", callid, queuename, agent, event, data1)
SELECT timestamptz '2030-06-01 10:00:00+00' + i * interval '1 ms', '1800000000.' || i, 'support', 'Agent/7',
       'ENTERQUEUE', E'caller \\u00e9 ' || i
FROM generate_series(1, {queue_log}) AS i;
"""


def sql(cluster, text: str) -> str:
    return cluster.psql(DATABASE, text).strip()


def rows(cluster, table: str, columns: str) -> Counter:
    text = cluster.psql(DATABASE, f"COPY (SELECT ROW({columns})::text FROM {table}) TO STDOUT")
    return Counter(text.splitlines())


def history(cluster) -> dict[str, Counter]:
    return {"cel": rows(cluster, "cel", CEL_DATA), "queue_log": rows(cluster, "queue_log", QUEUE_LOG_DATA)}


def expected_after(pair) -> dict[str, Counter]:
    master, slave = history(pair.master), history(pair.slave)
    return {table: master[table] + slave[table] for table in master}


def connections(pair):
    plugin = pair.plugin()
    master = connect(plugin.master_endpoint(), 5, 60)
    slave = connect(plugin.slave_endpoint(pair.peer), 5, 60)
    return master, slave


def run(pair, **kwargs):
    master, slave = connections(pair)
    try:
        return copy_back_rows(master, slave, **kwargs)
    finally:
        master.close()
        slave.close()


def test_rows_written_on_the_slave_are_appended_with_new_ids_and_call_log_id_cleared(pair):
    sql(pair.slave, SERVING_ROWS.format(cel=30, queue_log=20))
    expected = expected_after(pair)
    master_ids_before = set(sql(pair.master, "SELECT id FROM queue_log").split())

    report = run(pair)

    assert history(pair.master) == expected
    assert report.tables["cel"].copied == 3 + 30 and report.tables["queue_log"].copied == 3 + 20
    # The slave's queue_log ids 1..23 clash with the master's 1..10: the master's rows kept theirs, ids unique.
    ids = sql(pair.master, "SELECT id FROM queue_log").split()
    assert len(ids) == len(set(ids)) == 10 + 23 and master_ids_before <= set(ids)
    assert sql(pair.master, "SELECT count(*) FROM cel WHERE call_log_id IS NOT NULL") == "0"
    # The master's sequence is past every id it handed out: the next call's row does not clash.
    assert int(sql(pair.master, "SELECT last_value FROM cel_id_seq")) == int(
        sql(pair.master, "SELECT max(id) FROM cel")
    )
    assert sql(pair.master, f"SELECT count(*) FROM {LEDGER_SCHEMA}.{LEDGER}") == str(33 + 23)


def test_a_second_run_copies_nothing_and_a_row_added_since_is_copied_once(pair):
    sql(pair.slave, SERVING_ROWS.format(cel=10, queue_log=10))
    run(pair)
    again = run(pair)
    assert again.copied == 0 and again.tables["cel"].already == 13
    sql(pair.slave, "INSERT INTO queue_log (time, callid, event) VALUES ('2030-06-02 00:00:00+00', 'late', 'ABANDON')")
    expected = history(pair.master)
    expected["queue_log"] += Counter(rows(pair.slave, "queue_log WHERE callid = 'late'", QUEUE_LOG_DATA))
    third = run(pair)
    assert third.copied == 1
    assert history(pair.master) == expected


def test_a_reused_slave_id_with_other_content_is_copied(pair):
    """A slave reinstalled (its ids restart) must not hide its new rows behind the ledger of the old ones."""
    sql(pair.slave, SERVING_ROWS.format(cel=0, queue_log=5))
    run(pair)
    sql(pair.slave, "UPDATE queue_log SET data1 = 'other call' WHERE id = 2")
    assert run(pair).tables["queue_log"].copied == 1
    assert sql(pair.master, "SELECT count(*) FROM queue_log WHERE data1 = 'other call'") == "1"


def test_dry_run_counts_and_writes_nothing(pair):
    sql(pair.slave, SERVING_ROWS.format(cel=4, queue_log=2))
    before = history(pair.master)
    report = run(pair, dry_run=True)
    assert (report.tables["cel"].copied, report.tables["queue_log"].copied) == (7, 5)
    assert history(pair.master) == before
    assert sql(pair.master, f"SELECT to_regclass('{LEDGER_SCHEMA}.{LEDGER}') IS NULL") == "t"
    run(pair)
    assert run(pair, dry_run=True).copied == 0


def test_since_limits_the_rows_to_the_serving_period(pair):
    sql(pair.slave, SERVING_ROWS.format(cel=5, queue_log=5))
    report = run(pair, since=datetime(2030, 6, 1, tzinfo=UTC))
    assert (report.tables["cel"].copied, report.tables["queue_log"].copied) == (5, 5)


def test_a_second_copy_back_into_the_same_master_is_refused(pair):
    holder = psycopg2.connect(host=str(pair.master.socket_dir), port=pair.master.port, user="postgres", dbname=DATABASE)
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", (MASTER_LOCK_KEY,))
        with pytest.raises(AlreadyRunning):
            run(pair)
    finally:
        holder.close()


def test_a_table_that_differs_is_refused_before_anything_is_written(pair):
    sql(pair.slave, "ALTER TABLE queue_log ADD COLUMN newer text")
    before = history(pair.master)
    with pytest.raises(PluginError, match=r"queue_log differs.*newer"):
        run(pair, tables=("queue_log",))
    assert history(pair.master) == before


def _spec(pair, chunk_rows: int) -> str:
    plugin = pair.plugin()
    master, slave = plugin.master_endpoint(), plugin.slave_endpoint(pair.peer)

    def side(endpoint) -> dict:
        password_file = str(endpoint.password_file) if endpoint.password_file else None
        return {
            "role": endpoint.role,
            "host": endpoint.host,
            "port": endpoint.port,
            "user": endpoint.user,
            "database": endpoint.database,
            "password_file": password_file,
        }

    return json.dumps({"master": side(master), "slave": side(slave), "chunk_rows": chunk_rows})


def _copied_so_far(pair) -> int:
    text = sql(pair.master, f"SELECT count(*) FROM {LEDGER_SCHEMA}.{LEDGER}")
    return int(text) if text.isdigit() else 0


def _master_rows(pair) -> int:
    return int(sql(pair.master, "SELECT (SELECT count(*) FROM cel) + (SELECT count(*) FROM queue_log)"))


def test_sigkill_at_random_points_then_rerun_copies_every_row_exactly_once(pair):
    """Kill the copy-back process at random moments (mid-chunk, between chunks, before the ledger exists)."""
    sql(pair.slave, SERVING_ROWS.format(cel=6000, queue_log=4000))
    expected = expected_after(pair)
    total = 6003 + 4003
    seed = int.from_bytes(os.urandom(4), "big")
    chooser = random.Random(seed)
    spec = _spec(pair, chunk_rows=250)
    master_before = _master_rows(pair)
    kills = 0
    for attempt in range(6):
        threshold = chooser.randrange(0, total)
        # Half the kills wait for the ledger to reach the threshold, half for the copied rows themselves:
        # a copy whose rows and ledger were not one transaction is caught in between.
        by_ledger = attempt % 2 == 1
        child = subprocess.Popen([sys.executable, str(CHILD), spec], stdout=subprocess.PIPE, stderr=subprocess.PIPE)

        def ended_or_reached(child=child, threshold=threshold, by_ledger=by_ledger) -> bool:
            if child.poll() is not None:
                return True
            done = _copied_so_far(pair) if by_ledger else _master_rows(pair) - master_before
            return done >= threshold

        wait_for(ended_or_reached, 60, "copy-back progress")
        if child.poll() is None:
            child.send_signal(signal.SIGKILL)
            kills += 1
        child.wait(timeout=30)
    final = subprocess.run([sys.executable, str(CHILD), spec], capture_output=True, text=True, timeout=120)
    assert final.returncode == 0, final.stderr
    assert history(pair.master) == expected, f"seed {seed}"
    assert _copied_so_far(pair) == total
    assert kills >= 1, f"seed {seed}: no run was killed mid-way"


def test_the_plugin_method_copies_with_its_settings_and_reports_rows_per_table(pair):
    sql(pair.slave, SERVING_ROWS.format(cel=2, queue_log=1))
    dry = pair.plugin().copy_back_rows(pair.peer, dry_run=True)
    assert dry.figures["rows_cel"] == 5 and "would copy" in dry.message
    result = pair.plugin().copy_back_rows(pair.peer)
    assert (result.outcome, result.figures["rows_cel"], result.figures["rows_queue_log"]) == ("copied", 5, 4)
    assert pair.plugin().copy_back_rows(pair.peer).outcome == "skipped"
