"""The pure parts of the planned switchover: the refusals, the wait, the slave's pause read from its store."""

from __future__ import annotations

import pytest

from wazo_ha_core import Settings
from wazo_ha_core.store import Store
from wazo_ha_core.switchover import (
    Facts,
    PeerWatch,
    read_peer_watch,
    switchback_refusals,
    switchover_refusals,
    wait_until,
)
from wazo_ha_core.watcher import STATE_OWNER, PauseSwitch

READY = Facts(node_type="master", peer="10.0.0.2", serving_here=True, calls_here=0, peer_answers=False)
PAUSED = PeerWatch(True, {"since": "2026-12-03T10:00:00+00:00", "reason": "maintenance"}, "standby")


def facts(**changes) -> Facts:
    return Facts(**{**READY.__dict__, **changes})


def test_a_ready_master_may_switch_over():
    assert switchover_refusals(READY) == []


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"node_type": "slave"}, "runs on the master; this node's node_type is 'slave'"),
        ({"serving_here": False}, "telephony does not run here"),
        ({"calls_here": 2}, "2 call(s) are up here and would be cut"),
        ({"peer_answers": True}, "already answers SIP"),
        ({"peer_watch": PAUSED}, "the slave's watch is paused since 2026-12-03T10:00:00+00:00 (maintenance)"),
    ],
    ids=["not-master", "not-serving", "calls", "slave-serves", "slave-paused"],
)
def test_switchover_refusals_name_the_reason(changes, expected):
    [problem] = switchover_refusals(facts(**changes))
    assert expected in problem


def test_unknown_calls_and_an_unreadable_slave_store_do_not_refuse():
    assert switchover_refusals(facts(calls_here=None, peer_watch=PeerWatch(False, detail="not set"))) == []


def test_switchback_needs_the_slave_serving_and_this_node_stopped():
    back = facts(serving_here=False, peer_answers=True)
    assert switchback_refusals(back) == []
    assert "already runs here" in switchback_refusals(facts(peer_answers=True))[0]
    assert "does not answer SIP" in switchback_refusals(facts(serving_here=False))[0]
    assert "paused" in switchback_refusals(facts(serving_here=False, peer_answers=True, peer_watch=PAUSED))[0]


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_wait_until_reports_the_time_the_condition_took():
    clock = FakeClock()
    answers_at = 103.0

    waited = wait_until(lambda: clock.now >= answers_at, 10, clock=clock, sleep=clock.sleep, poll=0.5)

    assert waited == pytest.approx(3.0)


def test_wait_until_gives_up_at_the_timeout():
    clock = FakeClock()

    assert wait_until(lambda: False, 2, clock=clock, sleep=clock.sleep, poll=0.5) is None
    assert clock.now == pytest.approx(102.0)


def test_the_slaves_pause_is_read_from_its_store(tmp_path):
    slave_store = Store(f"sqlite:///{tmp_path}/slave.db")
    slave_store.upgrade()
    settings = Settings.from_tree(
        {"root": str(tmp_path), "switchover": {"peer_store_url": f"sqlite:///{tmp_path}/slave.db"}}
    )
    assert read_peer_watch(settings) == PeerWatch(True, None, None, "read from the slave's store")

    PauseSwitch(slave_store.plugin_state(STATE_OWNER)).pause("upgrade of the slave")

    watch = read_peer_watch(settings)
    assert watch.known and watch.paused["reason"] == "upgrade of the slave"
    assert "paused" in switchover_refusals(facts(peer_watch=watch))[0]


def test_an_unset_or_unreadable_slave_store_is_unknown(tmp_path):
    unset = read_peer_watch(Settings.from_tree({"root": str(tmp_path)}))
    assert not unset.known and "peer_store_url not set" in unset.detail
    broken = Settings.from_tree(
        {"root": str(tmp_path), "switchover": {"peer_store_url": f"sqlite:///{tmp_path}/none.db"}}
    )
    watch = read_peer_watch(broken)
    assert not watch.known and "cannot be read" in watch.detail


# --- wazo-ha slave-changes: the terminal listing and the export file (the SQL itself: tests/plugins/pg_dump) ---

LISTING = [
    {
        "plugin": "pg_dump",
        "method": "compared by primary key",
        "tables": [
            {
                "table": "userfeatures",
                "key": ["id"],
                "added": [{"id": "7", "firstname": "New"}],
                "changed": [{"key": {"id": "3"}, "columns": {"firstname": ["Old", "Renamed\ntwice"]}}],
                "removed": [{"id": "9"}],
            }
        ],
        "sql": "BEGIN;\nCOMMIT;\n",
    }
]


def test_the_listing_names_each_row_and_value():
    from wazo_ha_core.slave_changes import format_changes

    text = format_changes(LISTING)

    assert "userfeatures: 1 added, 1 changed, 1 removed on the slave" in text
    assert "changed  id='3': firstname 'Old' -> 'Renamed\\ntwice' (master -> slave)" in text
    assert "added    id='7', firstname='New'" in text and "removed  id='9'" in text


def test_the_export_is_private_and_bad_paths_are_named(tmp_path):
    from wazo_ha_core.errors import PreflightError
    from wazo_ha_core.slave_changes import write_export

    target = tmp_path / "edits.sql"
    assert write_export(LISTING, target) == 1
    assert target.read_text() == "BEGIN;\nCOMMIT;\n" and oct(target.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(PreflightError, match="is a directory"):
        write_export(LISTING, tmp_path)
    with pytest.raises(PreflightError, match=r"cannot write .*missing/edits\.sql"):
        write_export(LISTING, tmp_path / "missing" / "edits.sql")
    assert [p.name for p in tmp_path.iterdir()] == ["edits.sql"]  # no temporary file left


def test_switchback_brings_back_what_the_slave_recorded_and_a_failed_copy_back_does_not_undo_it():
    from types import SimpleNamespace

    from wazo_ha_core.errors import PreflightError
    from wazo_ha_core.switchover import copy_back_hook

    calls = []

    def copy_back(lock_wait=0.0):
        calls.append(("copy-back", lock_wait))
        return SimpleNamespace(outcome="partial")

    done = SimpleNamespace(copy_back=copy_back)
    assert copy_back_hook(done, "10.0.0.2") == "partial"
    assert calls == [("copy-back", 120.0)]  # waits for the follower's sync in progress

    def refuse(lock_wait=0.0):
        raise PreflightError("no file-sync key yet")

    assert copy_back_hook(SimpleNamespace(copy_back=refuse), "10.0.0.2") == "failed: no file-sync key yet"
