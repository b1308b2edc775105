"""The watch loop's I/O side with in-memory plugins: probes that answer what the test says
(or raise), service managers that record calls, a store on SQLite, a fake clock."""

from __future__ import annotations

import pytest

from wazo_ha_core import HealthProbe, PluginError, ProbeAnswer, ServiceManager, ServiceState, Settings
from wazo_ha_core.engine import HAEngine
from wazo_ha_core.extensions import PluginContext
from wazo_ha_core.services import ServiceControl
from wazo_ha_core.store import Store
from wazo_ha_core.watch import Action, Role, Watch
from wazo_ha_core.watcher import Watcher, watch_config


class ScriptedProbe(HealthProbe):
    def __init__(self, name, checks, answers):
        super().__init__(PluginContext(name, "wazo_ha.health_probes", {"timeout": 0.2}, None, None, _log()))
        self.checks, self.answers, self.targets = checks, answers, []

    def probe(self, target):
        self.targets.append(target)
        answer = self.answers(target)
        if isinstance(answer, Exception):
            raise answer
        return ProbeAnswer(answer, 0.001 if answer else None, "" if answer else "timeout")


class RecordingManager(ServiceManager):
    def __init__(self, name, calls, fail_start=False):
        super().__init__(PluginContext(name, "wazo_ha.service_managers", {}, None, None, _log()))
        self.calls, self.fail_start, self.active = calls, fail_start, False

    def start(self):
        self.calls.append((self.name, "start"))
        if self.fail_start:
            raise PluginError(f"{self.name}: step 2/4 `wazo-service start` failed: exit 1")
        self.active = True

    def stop(self):
        self.calls.append((self.name, "stop"))
        self.active = False

    def status(self):
        return ServiceState(self.active)


def _log():
    import logging

    return logging.getLogger("test")


@pytest.fixture
def engine(tmp_path):
    settings = Settings.from_tree(
        {"root": str(tmp_path), "watch": {"fall": 3, "rise": 2, "stability": 5, "witnesses": ["10.203.5.250"]}}
    )
    store = Store.from_settings(settings)
    store.upgrade()
    return HAEngine(settings, store)


class Rig:
    def __init__(self, engine, master_up=True, witness_up=True, host_raises=False, fail_start=False):
        self.engine, self.now, self.calls = engine, 1000.0, []
        self.master_up, self.witness_up, self.host_raises = master_up, witness_up, host_raises

        def host(target):
            if target == "10.203.5.250":
                return self.witness_up
            return PluginError("icmp probe cannot open an ICMP socket") if self.host_raises else self.master_up

        self.managers = [RecordingManager("wazo_services", self.calls), RecordingManager("berofos", self.calls)]
        self.managers[1].fail_start = fail_start
        self.watcher = Watcher(
            settings=engine.settings,
            journal=engine.journal,
            state=engine.store.plugin_state("core.watch"),
            probes=[ScriptedProbe("icmp", "host", host), ScriptedProbe("sip", "service", lambda t: self.master_up)],
            services=ServiceControl(self.managers),
            target=lambda: "10.203.5.1",
            is_slave=lambda: True,
            clock=lambda: self.now,
        )
        self.watcher.watch = Watch(watch_config(engine.settings), Role.STANDBY)

    def rounds(self, count):
        decisions = []
        for _ in range(count):
            decisions.append(self.watcher.round())
            self.now += 1
        return decisions

    def events(self, kind=None):
        return self.engine.store.events(kind=kind, limit=100)


def test_failover_runs_managers_in_order_and_journals_detection_time(engine):
    rig = Rig(engine, master_up=False)
    rig.rounds(3)
    assert rig.calls == [("wazo_services", "start"), ("berofos", "start")]
    [event] = rig.events("failover")
    assert event.outcome == "ok" and event.figures["detection"] == 2.0 and event.figures["master"] == "10.203.5.1"


def test_failback_after_the_window_in_reverse_order(engine):
    rig = Rig(engine, master_up=False)
    rig.rounds(3)
    rig.master_up = True
    rig.rounds(5)  # good for 4 s: inside the 5 s window
    assert len(rig.calls) == 2
    rig.rounds(1)
    assert rig.calls[2:] == [("berofos", "stop"), ("wazo_services", "stop")]
    assert rig.events("failback")[0].figures["stable_for"] == 5.0


def test_probe_that_raises_never_fails_over(engine, caplog):
    rig = Rig(engine, master_up=False, host_raises=True)
    rig.rounds(10)
    assert rig.calls == []
    assert caplog.text.count("probe icmp is broken") == 1  # logged once, not every second


def test_cut_off_node_refuses_and_journals_it_once(engine):
    rig = Rig(engine, master_up=False, witness_up=False)
    rig.rounds(6)
    assert rig.calls == []
    [event] = rig.events("failover-refused")
    assert event.outcome == "refused" and "cut off" in event.message


def test_paused_in_the_store_blocks_then_resume_acts(engine):
    rig = Rig(engine, master_up=False)
    assert engine.pause_watch("maintenance") is True
    assert engine.pause_watch("again") is False
    rig.rounds(5)
    assert rig.calls == []
    assert engine.resume_watch() is True
    rig.rounds(1)
    assert rig.calls[0] == ("wazo_services", "start")
    assert [e.kind for e in rig.events()][:4] == ["failover", "resume", "failover-paused", "pause"]


def test_failing_manager_is_journaled_the_others_still_run_and_it_is_retried(engine):
    rig = Rig(engine, master_up=False, fail_start=True)
    rig.rounds(3)
    assert rig.calls == [("wazo_services", "start"), ("berofos", "start")]
    [event] = rig.events("failover")
    assert event.outcome == "failed" and "berofos: step 2/4" in event.message
    assert rig.watcher.watch.role is Role.STANDBY
    rig.managers[1].fail_start = False
    rig.rounds(12)  # retried after watch.retry (10 s)
    assert rig.watcher.watch.role is Role.ACTIVE


def test_check_keeps_the_machine_between_runs(engine):
    rig = Rig(engine, master_up=False)
    rig.watcher.settings = Settings.from_tree({**engine.settings.tree, "watch": {**engine.settings.tree["watch"]}})
    rig.watcher.interval = 0.01
    decision = rig.watcher.check(rounds=2)
    assert decision.action is Action.NONE and rig.calls == []
    saved = engine.store.plugin_state("core.watch").get("machine")["state"]
    assert saved["fail_streak"] == 2


def test_not_a_slave_is_idle(engine):
    rig = Rig(engine, master_up=False)
    rig.watcher.is_slave = lambda: False
    rig.rounds(5)
    assert rig.calls == []


@pytest.mark.parametrize("value", [0, 2.5, -1])
def test_bad_fall_names_the_setting(tmp_path, value):
    from wazo_ha_core import SettingsError

    settings = Settings.from_tree({"root": str(tmp_path), "watch": {"fall": value}}) if value > 0 else None
    if settings is None:
        with pytest.raises(SettingsError, match=r"watch\.fall"):
            Settings.from_tree({"root": str(tmp_path), "watch": {"fall": value}})
    else:
        with pytest.raises(SettingsError, match=r"watch.fall: must be an integer >= 1, got 2.5"):
            watch_config(settings)


def test_a_pending_failback_is_published_with_its_countdown(engine):
    from datetime import datetime

    from wazo_ha_core.journal import utcnow
    from wazo_ha_core.status import master_view

    rig = Rig(engine, master_up=False)
    rig.rounds(3)  # failed over
    rig.master_up = True
    before = utcnow()
    rig.rounds(1)  # the master answers again: the give-back is due 5 s (watch.stability) from now
    published = engine.store.plugin_state("core.watch").get("status")
    due = datetime.fromisoformat(published["failback_at"])
    assert 4.0 <= (due - before).total_seconds() <= 6.0
    view = master_view("slave", published, rig.events("failover")[0])
    assert view["state"] == "back"
    assert "the master answers again: failback in " in view["detail"], view
    rig.rounds(5)  # given back
    assert engine.store.plugin_state("core.watch").get("status")["failback_at"] is None
