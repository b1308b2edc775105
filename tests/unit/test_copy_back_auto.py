"""``wazo-ha copy-back --auto`` on an engine: the store keeps what is owed, the journal and notifications follow.

In-memory plugins (tests/unit/sample_plugins.py): scripted host and SIP probes
stand for the slave, a scripted replication backend for the rows; the real
copy-back operation, store (SQLite), journal, notifier and metrics run.
The wall clock is passed in, so back-off is tested without waiting.
"""

from __future__ import annotations

import pytest

from wazo_ha_core.config import HASettings
from wazo_ha_core.copy_back import auto
from wazo_ha_core.errors import PluginError
from wazo_ha_core.notify import subject_for

from . import sample_plugins
from .conftest import lock_held_by_another_process

PEER = sample_plugins.PEER


@pytest.fixture
def master(make_engine):
    PEER.update(host=True, sip=False, copy_back=[])
    engine = make_engine(
        plugins={"health_probes": ["scripted_host", "scripted_sip"], "replication": ["scripted_copy_back"]},
        copy_back={"retry_min": 60, "retry_max": 600},
    )
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    subjects = []
    engine.notifier.hooks.append(lambda subject, event: subjects.append(subject))
    engine.subjects = subjects
    return engine


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now


def test_a_failover_then_failback_runs_the_copy_back_once_and_clears_what_is_owed(master):
    clock = Clock()
    assert auto.check(master, clock=clock) == {"owed": False, "ran": False, "why": "nothing owed"}
    PEER["sip"] = True  # the slave took over
    clock.now += 60
    result = auto.check(master, clock=clock)
    assert result["owed"] and not result["ran"] and result["why"] == "the slave still serves"
    [owed_event] = master.store.events(kind="copy-back-owed")
    assert "the slave serves" in owed_event.message
    assert master.status()["copy_back"]["owed"] is True

    PEER["sip"] = False  # the slave gave back
    clock.now += 60
    result = auto.check(master, clock=clock)
    assert result["ran"] and result["outcome"] == "ok" and not result["owed"]
    [event] = master.store.events(kind="copy-back")
    assert event.figures["automatic"] is True and event.figures["attempt"] == 1
    clock.now += 60
    assert auto.check(master, clock=clock)["ran"] is False
    assert len(master.store.events(kind="copy-back")) == 1
    summary = master.status()["copy_back"]
    assert summary["owed"] is False and summary["last_outcome"] == "ok"
    assert "wazo_ha_copy_back_owed 0.0" in master.metrics.render()


def test_failures_are_retried_with_back_off_and_notified_once_then_recovery(master):
    clock = Clock()
    PEER["host"] = False  # cut off: owed
    auto.check(master, clock=clock)
    PEER["host"] = True
    PEER["copy_back"] = [PluginError("slave unreachable"), PluginError("again"), 5]
    clock.now += 60
    assert auto.check(master, clock=clock)["outcome"] == "failed"
    clock.now += 30  # within the back-off (60 s): not retried
    assert auto.check(master, clock=clock)["ran"] is False
    clock.now += 40
    assert auto.check(master, clock=clock)["outcome"] == "failed"
    state = auto.load_state(master.store)
    assert state.attempts == 2 and state.next_attempt_at == pytest.approx(clock.now + 120, abs=1)
    assert "wazo_ha_copy_back_failed_attempts 2.0" in master.metrics.render()
    clock.now += 121
    assert auto.check(master, clock=clock)["outcome"] == "ok"
    failures = [s for s in master.subjects if "copy-back failed" in s]
    recoveries = [s for s in master.subjects if "succeeded again" in s]
    assert len(failures) == 1 and len(recoveries) == 1
    assert not auto.load_state(master.store).owed


def test_an_attempt_whose_process_died_is_journaled_as_interrupted_and_retried(master):
    clock = Clock()
    PEER["sip"] = True
    auto.check(master, clock=clock)
    PEER["sip"] = False
    # What a SIGKILL between "running_since saved" and the end leaves behind.
    state = auto.load_state(master.store)
    from dataclasses import replace

    auto.save_state(master.store, replace(state, running_since=clock.now))
    clock.now += 61
    result = auto.check(master, clock=clock)
    interrupted = [e for e in master.store.events(kind="copy-back") if "interrupted" in e.message]
    assert len(interrupted) == 1 and interrupted[0].outcome == "failed"
    assert result["ran"] and result["outcome"] == "ok" and not result["owed"]


def test_a_copy_back_already_running_by_hand_is_not_counted_as_a_failure(master):
    clock = Clock()
    PEER["host"] = False
    auto.check(master, clock=clock)
    PEER["host"] = True
    with lock_held_by_another_process(master.settings.path("run_dir") / "copy-back.lock"):
        result = auto.check(master, clock=clock)
    assert result["ran"] is False and "already running" in result["why"]
    state = auto.load_state(master.store)
    assert state.owed and state.attempts == 0 and state.running_since is None


def test_a_copy_back_by_hand_that_succeeds_clears_what_is_owed(master):
    clock = Clock()
    clock.now = __import__("time").time() - 600  # the evidence is older than the manual run
    PEER["host"] = False
    auto.check(master, clock=clock)
    assert auto.load_state(master.store).owed
    assert master.copy_back().outcome == "ok"
    assert not auto.load_state(master.store).owed


def test_with_automatic_off_the_check_records_the_debt_but_never_runs(master, make_engine):
    master.settings.tree["copy_back"]["automatic"] = False
    clock = Clock()
    PEER["sip"] = True
    auto.check(master, clock=clock)
    PEER["sip"] = False
    clock.now += 60
    result = auto.check(master, clock=clock)
    assert result["owed"] and not result["ran"] and "automatic is off" in result["why"]
    assert master.store.events(kind="copy-back") == []


def test_a_slave_node_does_nothing(make_engine):
    engine = make_engine()
    engine.store.write_ha_settings(HASettings("slave", "10.0.0.1"))
    assert auto.check(engine)["why"].startswith("not a master")


def test_repeated_automatic_failures_are_not_mailed_but_a_manual_failure_is():
    from wazo_ha_core.journal import Event, utcnow

    def event(outcome, **figures):
        return Event(kind="copy-back", started_at=utcnow(), outcome=outcome, figures=figures)

    assert subject_for(event("failed", automatic=True, streak_notified=False))
    assert subject_for(event("failed", automatic=True, streak_notified=True)) is None
    assert subject_for(event("partial", automatic=True, streak_notified=True)) is None
    assert subject_for(event("failed", streak_notified=True))  # by hand: always told
    assert "succeeded again" in subject_for(event("ok", automatic=True, streak_notified=True))
    assert subject_for(event("ok", automatic=True, streak_notified=False)) is None


def test_a_copy_back_by_hand_after_a_killed_automatic_attempt_clears_it_without_a_failure_mail(master):
    from dataclasses import replace

    clock = Clock()
    clock.now = __import__("time").time() - 600
    PEER["host"] = False
    auto.check(master, clock=clock)
    auto.save_state(master.store, replace(auto.load_state(master.store), running_since=clock.now))  # killed

    assert master.copy_back().outcome == "ok"

    state = auto.load_state(master.store)
    assert not state.owed and state.running_since is None
    clock.now += 60
    PEER["host"] = True
    assert auto.check(master, clock=clock)["ran"] is False  # no "interrupted" counted, nothing owed
    assert not [s for s in master.subjects if "failed" in s]


def _serve_then_give_back(master, clock) -> dict:
    """The slave takes over, then gives back; returns the check that runs the copy-back."""
    PEER["sip"] = True
    clock.now += 60
    auto.check(master, clock=clock)
    PEER["sip"] = False
    clock.now += 60
    return auto.check(master, clock=clock)


def test_a_successful_copy_back_is_followed_by_one_replication_that_carries_users_statuses_back(master):
    clock = Clock()
    before = len(master.store.events(kind="replication"))
    result = _serve_then_give_back(master, clock)
    assert result["outcome"] == "ok" and result["replication"] == "copied"
    assert len(master.store.events(kind="replication")) == before + 1
    clock.now += 60
    auto.check(master, clock=clock)  # nothing owed: no replication either
    assert len(master.store.events(kind="replication")) == before + 1


def test_no_replication_after_a_failed_copy_back(master):
    clock = Clock()
    PEER["copy_back"] = [PluginError("scripted_copy_back", "the slave's database is gone")]
    before = len(master.store.events(kind="replication"))
    result = _serve_then_give_back(master, clock)
    assert result["outcome"] == "failed" and "replication" not in result
    assert len(master.store.events(kind="replication")) == before


def test_a_failed_or_refused_replication_after_the_copy_back_leaves_the_copy_back_ok(master, monkeypatch):
    from wazo_ha_core.errors import AlreadyRunning

    def refused(**kwargs):
        raise AlreadyRunning("replication: another run holds the lock")

    monkeypatch.setattr(master, "replicate", refused)
    result = _serve_then_give_back(master, Clock())
    assert result["outcome"] == "ok" and result["replication"] == "already running" and not result["owed"]

    def failed(**kwargs):
        raise PluginError("scripted_copy_back", "slave unreachable")

    monkeypatch.setattr(master, "replicate", failed)
    result = _serve_then_give_back(master, Clock())
    assert result["outcome"] == "ok" and result["replication"] == "failed"
