"""Slave-side configuration edits are never silently overwritten (issue 12, item 2), on real clusters.

The slave is edited through SQL as an administrator would (wazo-confd on the
slave writes the same rows); the users' status columns are toggled the way
Asterisk's AGIs write them from a phone.
"""

from __future__ import annotations

import importlib
import json

import psycopg2
import pytest

from wazo_ha_core import SlaveChangesPending
from wazo_ha_core.store import Store
from wazo_ha_plugins.pg_dump.slave_changes import STATE_KEY, Guard, quote_ident, quote_literal, render_sql

from .conftest import DATABASE, content
from .test_engine import config_file, engine_for

cli_main = importlib.import_module("wazo_ha_core.cli.main")

RENAME = "UPDATE userfeatures SET firstname = 'Renamed on the slave' WHERE id = 100003"
FIRSTNAME = "SELECT firstname FROM userfeatures WHERE id = 100003"


@pytest.fixture
def engine(pair):
    engine = engine_for(pair)
    [result] = engine.replicate()
    assert result.outcome == "copied"
    return engine


def test_a_user_renamed_on_the_slave_refuses_the_next_replication(pair, engine):
    pair.slave_sql(RENAME)
    before = content(pair.slave)

    with pytest.raises(SlaveChangesPending) as raised:
        engine.replicate()

    message = str(raised.value)
    assert "userfeatures (40 rows on the slave, 40 at the last copy, 40 on the master)" in message
    assert "wazo-ha slave-changes show" in message and "--discard-slave-changes" in message
    assert raised.value.tables == ["userfeatures"]
    assert content(pair.slave) == before  # nothing written
    event = engine.store.events(kind="replication", limit=1)[0]
    assert event.outcome == "refused" and event.figures["slave_changes"] == ["userfeatures"]
    assert engine.status()["last"]["replication"]["outcome"] == "refused"


def test_force_does_not_overwrite_slave_edits_either(pair, engine):
    pair.slave_sql(RENAME)

    with pytest.raises(SlaveChangesPending):
        engine.replicate(force=True)


def test_show_lists_the_rename_with_its_values(pair, engine, capsys):
    pair.slave_sql(RENAME)
    pair.slave_sql("DELETE FROM extensions WHERE id = 100004")

    [listing] = engine.slave_changes()

    tables = {table["table"]: table for table in listing["tables"]}
    assert set(tables) == {"userfeatures", "extensions", "line_extension"}  # the delete cascades
    [changed] = tables["userfeatures"]["changed"]
    assert changed == {"key": {"id": "100003"}, "columns": {"firstname": ["Prénom 3", "Renamed on the slave"]}}
    assert tables["userfeatures"]["added"] == [] and tables["userfeatures"]["removed"] == []
    assert tables["extensions"]["removed"] == [{"id": "100004"}]
    assert "master's current rows" in listing["method"]

    assert cli_main.main(["--config", config_file(pair), "slave-changes", "show"]) == 0
    shown = capsys.readouterr().out
    assert "userfeatures: 0 added, 1 changed, 0 removed on the slave" in shown
    assert "changed  id='100003': firstname 'Prénom 3' -> 'Renamed on the slave'" in shown
    assert "extensions: 0 added, 0 changed, 1 removed on the slave" in shown


def test_export_replayed_on_the_master_lets_the_next_replication_pass_with_the_rename_kept(pair, engine, tmp_path):
    pair.slave_sql(RENAME)
    export = tmp_path / "slave-edits.sql"

    assert cli_main.main(["--config", config_file(pair), "slave-changes", "export", str(export)]) == 0

    assert oct(export.stat().st_mode & 0o777) == "0o600"
    pair.master.psql(DATABASE, export.read_text())
    assert pair.master_sql(FIRSTNAME).strip() == "Renamed on the slave"
    [result] = engine.replicate()
    assert result.outcome == "copied"
    assert pair.slave_sql(FIRSTNAME).strip() == "Renamed on the slave"
    assert engine.slave_changes()[0]["tables"] == []


def test_discard_overwrites_the_slave_edits(pair, engine, capsys):
    pair.slave_sql(RENAME)

    code = cli_main.main(["--config", config_file(pair), "replicate", "--discard-slave-changes", "--json"])

    assert code == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["figures"]["slave_changes_discarded"] == ["userfeatures"]
    assert pair.slave_sql(FIRSTNAME).strip() == "Prénom 3"
    assert engine.store.events(kind="replication", limit=1)[0].figures["discard_slave_changes"] is True
    [again] = engine.replicate()
    assert again.outcome == "skipped"


@pytest.mark.parametrize(
    "status_change",
    [
        "UPDATE userfeatures SET enablednd = 1 WHERE id = 100002",
        "UPDATE userfeatures SET enableunc = 1, destunc = '0612345678' WHERE id = 100005",
    ],
    ids=["dnd", "forward"],
)
def test_a_user_status_changed_on_the_slave_does_not_block(pair, engine, status_change):
    pair.slave_sql(status_change)

    [result] = engine.replicate()

    assert result.outcome == "copied"  # the master's values win (the merge is issue 18's)
    assert engine.slave_changes()[0]["tables"] == []


def test_a_status_and_a_rename_in_the_same_row_still_refuses(pair, engine):
    pair.slave_sql("UPDATE userfeatures SET enablednd = 1, firstname = 'Both' WHERE id = 100002")

    with pytest.raises(SlaveChangesPending):
        engine.replicate()
    [listing] = engine.slave_changes()
    [changed] = listing["tables"][0]["changed"]
    assert changed["columns"] == {"firstname": ["Prénom 2", "Both"]}  # the DND is not listed


def test_excluded_tables_written_on_the_slave_do_not_block(pair, engine):
    pair.slave_sql("DELETE FROM queue_log WHERE id IN (SELECT min(id) FROM queue_log)")
    pair.slave_sql("UPDATE infos SET timezone = 'Asia/Tokyo'")
    pair.master_sql("UPDATE userfeatures SET firstname = 'master edit' WHERE id = 100001")

    [result] = engine.replicate()

    assert result.outcome == "copied"


def test_a_master_edit_alone_is_copied_as_before(pair, engine):
    pair.master_sql("UPDATE userfeatures SET lastname = 'changed on the master' WHERE id = 100009")

    [result] = engine.replicate()

    assert result.outcome == "copied"
    assert engine.slave_changes()[0]["tables"] == []


def test_truncate_mode_refuses_too(pair):
    engine = engine_for(pair, name="truncate", write_mode="truncate")
    engine.replicate()
    pair.slave_sql(RENAME)

    with pytest.raises(SlaveChangesPending):
        engine.replicate()
    assert pair.slave_sql(FIRSTNAME).strip() == "Renamed on the slave"


AWKWARD = [
    'it\'s "quoted"',
    "back\\slash \\n not a newline",
    "line one\nline two\r\n\ttab",
    "Zoë 日本語 😀",
    "",
    "E'not an escape'",
]


@pytest.mark.parametrize("text", AWKWARD, ids=range(len(AWKWARD)))
def test_exported_sql_replays_awkward_text_exactly(pair, engine, tmp_path, text):
    connection = psycopg2.connect(
        host=str(pair.slave.socket_dir), port=pair.slave.port, user="postgres", dbname=DATABASE
    )
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute("UPDATE userfeatures SET lastname = %s, description = %s WHERE id = 100006", (text, text))
    finally:
        connection.close()
    export = tmp_path / "awkward.sql"
    cli_main.main(["--config", config_file(pair), "slave-changes", "export", str(export)])

    connection = psycopg2.connect(
        host=str(pair.master.socket_dir), port=pair.master.port, user="postgres", dbname=DATABASE
    )
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(export.read_bytes().decode())  # read_text() would fold the carriage return
            cursor.execute("SELECT lastname, description FROM userfeatures WHERE id = 100006")
            assert cursor.fetchone() == (text, text)
    finally:
        connection.close()
    [result] = engine.replicate()
    assert result.outcome == "copied"


def test_quoting_helpers():
    assert quote_ident('we"ird') == '"we""ird"'
    assert quote_literal("a'b\\c") == "'a''b\\c'"
    assert quote_literal(None) == "NULL"
    script = render_sql(
        [{"table": 'ta"ble', "key": ["id"], "added": [{"id": "1", "v": None}], "changed": [], "removed": []}],
        peer="10.0.0.2",
        generated=0,
    )
    assert 'INSERT INTO "public"."ta""ble" ("id", "v") VALUES (\'1\', NULL);' in script
    assert script.splitlines()[-1] == "COMMIT;"


def test_each_standby_keeps_its_own_marks(tmp_path):
    # Two standbys copied in turn: the first one's marks must survive the second's copy, or the first
    # standby's slave-side edits would never be found (no recorded marks, nothing refused).
    store = Store(f"sqlite:///{tmp_path}/state.db")
    store.upgrade()
    state = store.plugin_state("replication.pg_dump")
    Guard(state, "10.0.0.2", DATABASE).remember({"userfeatures": [5, "111"]})
    Guard(state, "10.0.0.3", DATABASE).remember({"userfeatures": [5, "222"]})

    assert Guard(state, "10.0.0.2", DATABASE).recorded()["tables"] == {"userfeatures": [5, "111"]}
    assert Guard(state, "10.0.0.3", DATABASE).recorded()["tables"] == {"userfeatures": [5, "222"]}
    assert Guard(state, "10.0.0.4", DATABASE).recorded() is None


def test_marks_recorded_before_they_were_kept_per_standby_still_count(tmp_path):
    store = Store(f"sqlite:///{tmp_path}/state.db")
    store.upgrade()
    state = store.plugin_state("replication.pg_dump")
    legacy = Guard(state, "10.0.0.2", DATABASE)
    state.set(STATE_KEY, {**legacy.identity, "at": "2026-12-01T00:00:00+00:00", "tables": {"userfeatures": [5, "1"]}})

    assert Guard(state, "10.0.0.2", DATABASE).recorded()["tables"] == {"userfeatures": [5, "1"]}
    assert Guard(state, "10.0.0.3", DATABASE).recorded() is None
    Guard(state, "10.0.0.2", DATABASE).remember({"userfeatures": [6, "2"]})
    assert Guard(state, "10.0.0.2", DATABASE).recorded()["tables"] == {"userfeatures": [6, "2"]}
