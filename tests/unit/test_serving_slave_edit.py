"""Taking a slave that serves telephony out of its role: refused with the reason, or (forced) handed back first."""

from __future__ import annotations

import logging

import pytest

from wazo_ha_core.errors import EditError, ServingTelephony

from .sample_plugins import CALLS
from .test_engine_edit import tree_files

SERVING = {"plugins": {"service_managers": ["serving_services"]}, "plugin_config": {"serving_services": {"calls": 2}}}
SLAVE = {"node_type": "slave", "remote_address": "10.0.0.2"}


@pytest.fixture
def serving_slave(make_engine):
    engine = make_engine(**SERVING)
    engine.update_ha(SLAVE)
    engine.switch_services(take_over=True)  # the master failed: this slave took over
    CALLS.clear()
    return engine


@pytest.mark.parametrize("body", [{"node_type": "disabled"}, {"node_type": "master", "remote_address": "10.0.0.2"}])
def test_leaving_the_slave_role_while_serving_is_refused(serving_slave, sandbox, body):
    files_before = tree_files(sandbox)
    with pytest.raises(ServingTelephony) as caught:
        serving_slave.update_ha(body)
    message = str(caught.value)
    assert "serves telephony" in message and "2 call(s)" in message
    assert "--force" in message and "wazo-ha services stop" in message
    assert serving_slave.get_ha() == SLAVE
    assert tree_files(sandbox) == files_before
    assert CALLS == []  # telephony untouched
    assert serving_slave.service_control().is_active()
    event = serving_slave.store.events()[0]
    assert (event.kind, event.outcome) == ("edit", "refused") and "serves telephony" in event.message


def test_forced_disable_hands_telephony_back_first(serving_slave, caplog):
    caplog.set_level(logging.INFO)
    serving_slave.update_ha({"node_type": "disabled"}, force=True)
    assert serving_slave.get_ha()["node_type"] == "disabled"
    assert CALLS == [("serving_services", "stop", ())]
    assert not serving_slave.service_control().is_active()
    event = serving_slave.store.events()[0]
    assert (event.kind, event.outcome) == ("edit", "ok")
    assert event.figures["steps"][0] == "telephony hand-back"
    assert any("telephony hand-back: serving_services stopped" in r.getMessage() for r in caplog.records)


def test_forced_disable_that_fails_takes_over_again(serving_slave, sandbox, monkeypatch):
    files_before = tree_files(sandbox)

    def broken_commit(*args, **kwargs):
        raise RuntimeError("disk full (test)")

    monkeypatch.setattr(serving_slave.store, "write_ha_settings", broken_commit)
    with pytest.raises(EditError):
        serving_slave.update_ha({"node_type": "disabled"}, force=True)
    assert CALLS == [("serving_services", "stop", ()), ("serving_services", "start", ())]
    assert serving_slave.service_control().is_active()
    assert tree_files(sandbox) == files_before


def test_a_forced_disable_whose_hand_back_fails_changes_nothing(make_engine, sandbox):
    engine = make_engine(
        plugins=SERVING["plugins"], plugin_config={"serving_services": {"calls": 2, "fail_stop": True}}
    )
    engine.update_ha(SLAVE)
    engine.switch_services(take_over=True)
    CALLS.clear()
    files_before = tree_files(sandbox)
    with pytest.raises(EditError, match="telephony hand-back"):
        engine.update_ha({"node_type": "disabled"}, force=True)
    assert CALLS == [("serving_services", "stop", ()), ("serving_services", "start", ())]
    assert engine.service_control().is_active() and engine.get_ha() == SLAVE
    assert tree_files(sandbox) == files_before


def test_a_standby_slave_leaves_without_force(make_engine):
    engine = make_engine(**SERVING)
    engine.update_ha(SLAVE)
    engine.update_ha({"node_type": "disabled"})
    assert engine.get_ha()["node_type"] == "disabled"
    assert CALLS == []


def test_a_serving_slave_may_change_its_master(serving_slave):
    serving_slave.update_ha({"node_type": "slave", "remote_address": "10.0.0.3"})
    assert serving_slave.get_ha()["remote_address"] == "10.0.0.3"
    assert CALLS == []


def test_each_edit_step_logs_what_it_changed(make_engine, sandbox, caplog):
    engine = make_engine(plugins={"device_provisioners": ["recording_provisioner"]})  # migrates: alembic speaks
    caplog.set_level(logging.INFO)
    caplog.clear()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    lines = [r.getMessage() for r in caplog.records if r.name.startswith("wazo_ha_core")]
    assert "device provisioner recording_provisioner: phones get 10.0.0.2 as their backup registrar" in lines
    assert any(line.startswith("schedules: wrote ") and "cron.d/xivo-ha-master" in line for line in lines), lines
    assert any(f"compatibility files: {sandbox}/etc/xivo/ha.conf says master 10.0.0.2" in line for line in lines)
    assert any(line.startswith("state store: HA settings") for line in lines)
    assert not [r for r in caplog.records if r.name.startswith("alembic")]
