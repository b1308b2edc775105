"""The core around replication without a database: the local lock, terminal progress, the slave refusal."""

from __future__ import annotations

import io
import os

import pytest

from tests.unit import sample_plugins
from wazo_ha_core import AlreadyRunning, HASettings, PreflightError
from wazo_ha_core.cli.replication import TerminalProgress
from wazo_ha_core.replication import replicate, run_lock


def test_run_lock_is_exclusive_and_released(tmp_path):
    run_dir = tmp_path / "run" / "wazo-ha"
    with run_lock(run_dir):
        assert (run_dir / "replication.lock").read_text() == f"{os.getpid()}\n"
        assert (run_dir / "replication.lock").stat().st_mode & 0o777 == 0o600
        with pytest.raises(AlreadyRunning, match="replication already running"), run_lock(run_dir):
            pass
    with run_lock(run_dir):  # released on exit
        pass


def test_progress_is_shown_on_a_terminal_only():
    quiet = io.StringIO()
    TerminalProgress(quiet)("copying", {"table": "userfeatures", "table_index": 3, "tables": 9, "bytes": 2048})
    assert quiet.getvalue() == ""

    leader, follower = os.openpty()
    with open(follower, "w") as terminal:
        progress = TerminalProgress(terminal)
        progress("copying", {"table": "userfeatures", "table_index": 3, "tables": 9, "bytes": 2048})
        progress.done()
    shown = os.read(leader, 4096).decode()
    os.close(leader)
    assert "replication: copying table 3/9 userfeatures 2.0 KiB" in shown


def _replicating_engine(make_engine, node_type):
    engine = make_engine(plugins={"replication": ["recording_replication"]})
    engine.store.write_ha_settings(HASettings(node_type, "10.0.0.2" if node_type != "disabled" else ""))
    return engine


def test_the_legacy_script_with_a_peer_is_refused_on_a_slave(make_engine):
    engine = _replicating_engine(make_engine, "slave")
    with pytest.raises(PreflightError, match="this node is a slave"):
        replicate(engine, peer="10.0.0.2")
    assert sample_plugins.CALLS == [], "the plugin must not even be called on a slave"
    [event] = engine.store.events(kind="replication")
    assert event.outcome == "refused"


@pytest.mark.parametrize("node_type", ["master", "disabled"])
def test_the_legacy_script_with_a_peer_runs_on_a_master_or_a_disabled_node(make_engine, node_type):
    engine = _replicating_engine(make_engine, node_type)
    [result] = replicate(engine, peer="10.0.0.9")
    assert result.outcome == "copied"
    assert sample_plugins.CALLS == [("recording_replication", "replicate", ("10.0.0.9", False))]


# --- N nodes: the master copies to remote_address, then to each of `standbys` ----------------------------------


def test_n_nodes_replicate_to_every_standby_in_order_one_event_each(make_engine):
    engine = make_engine(plugins={"replication": ["recording_replication"]}, standbys=["10.0.0.3", "10.0.0.4"])
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    results = replicate(engine)
    assert [call[2][0] for call in sample_plugins.CALLS] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert len(results) == 3
    events = engine.store.events(kind="replication")
    assert sorted(event.figures["peer"] for event in events) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]


def test_a_standby_listed_twice_or_as_remote_address_gets_one_copy(make_engine):
    engine = make_engine(plugins={"replication": ["recording_replication"]}, standbys=["10.0.0.2", "10.0.0.3"])
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    replicate(engine)
    assert [call[2][0] for call in sample_plugins.CALLS] == ["10.0.0.2", "10.0.0.3"]


def test_bad_standby_addresses_are_refused_naming_the_setting(make_engine):
    from wazo_ha_core.errors import SettingsError
    from wazo_ha_core.settings import Settings

    with pytest.raises(SettingsError, match=r"standbys: must be an IPv4 or IPv6 address .*'pbx-b'"):
        Settings.from_tree({"standbys": ["10.0.0.3", "pbx-b"]})


def test_n_nodes_sync_files_to_every_standby(make_engine):
    from wazo_ha_core.file_sync import sync_files

    engine = make_engine(plugins={"file_sync": ["recording_file_sync"]}, standbys=["10.0.0.3"])
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    report = sync_files(engine)
    assert [call[2][0] for call in sample_plugins.CALLS if call[1] == "sync"] == ["10.0.0.2", "10.0.0.3"]
    assert len(report.results) == 2


def test_n_nodes_sync_init_for_a_chosen_standby_and_never_for_another_address(make_engine):
    from wazo_ha_core.file_sync import init_file_sync

    engine = make_engine(plugins={"file_sync": ["recording_file_sync"]}, standbys=["10.0.0.3"])
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    init_file_sync(engine, peer="10.0.0.3")
    init_file_sync(engine)
    assert [call[2][0] for call in sample_plugins.CALLS if call[1] == "init"] == ["10.0.0.3", "10.0.0.2"]
    with pytest.raises(PreflightError, match=r"'10.0.0.9' is not a standby of this master"):
        init_file_sync(engine, peer="10.0.0.9")
    assert len([call for call in sample_plugins.CALLS if call[1] == "init"]) == 2


# --- follow mode's quiet runs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("carried", "journaled"), [(0, False), (2, True)])
def test_a_follow_run_that_copied_nothing_is_journaled_only_when_it_carried_statuses_back(
    make_engine, monkeypatch, carried, journaled
):
    """Statuses carried back change the master although nothing went to the slave: the journal must count them."""
    from wazo_ha_core.extensions import OperationResult

    def skipped(self, peer, *, force=False, progress=None):
        figures = {"statuses_to_master": carried, "status_conflicts": 0}
        return OperationResult("skipped", "nothing changed since the last good copy", figures=figures)

    monkeypatch.setattr(sample_plugins.RecordingReplication, "replicate", skipped)
    engine = make_engine(plugins={"replication": ["recording_replication"]})
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    replicate(engine, journal_skipped=False)
    events = engine.store.events(kind="replication")
    assert len(events) == int(journaled)
    if journaled:
        assert events[0].outcome == "skipped" and events[0].figures["statuses_to_master"] == 2
