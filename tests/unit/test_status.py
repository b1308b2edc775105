"""wazo-ha status: the node at a glance (role, master as seen, services, last operations with age, pause)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from wazo_ha_core.cli.ha_settings import cmd_status
from wazo_ha_core.config import HASettings
from wazo_ha_core.journal import Event
from wazo_ha_core.status import age


def test_age_reads_at_a_glance():
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert age(None) == "never"
    assert age(now - timedelta(seconds=2), now) == "just now"
    assert age(now - timedelta(seconds=42), now) == "42 s ago"
    assert age(now - timedelta(minutes=3, seconds=10), now) == "3 min ago"
    assert age(now - timedelta(hours=5), now) == "5 h ago"
    assert age(now - timedelta(days=2), now) == "2 d ago"
    assert "future" in age(now + timedelta(minutes=1), now)


def event(kind, minutes_ago, outcome="ok", message=""):
    at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return Event(kind=kind, started_at=at, ended_at=at, outcome=outcome, message=message)


class Args:
    json = False


def test_slave_after_a_failover_shows_master_down_services_and_ages(make_engine, capsys):
    engine = make_engine(plugins={"service_managers": ["recording_services"]})
    engine.store.write_ha_settings(HASettings("slave", "10.0.0.2"))
    engine.journal.append(event("replication", 125, "ok", "copied"))
    engine.journal.append(event("replication", 3, "failed", "peer unreachable"))
    engine.journal.append(event("failover", 2))
    engine.pause_watch("maintenance")

    status = engine.status()
    assert status["role"] == "slave" and status["peer"] == "10.0.0.2"
    assert status["master"]["state"] == "down" and "failed over 2 min ago" in status["master"]["detail"]
    assert status["last"]["replication"]["outcome"] == "failed"
    assert status["last"]["replication"]["age"] == "3 min ago"
    assert status["last"]["replication"]["last_ok_age"] == "2 h ago"
    assert status["last"]["sync"] is None
    assert status["paused"]["reason"] == "maintenance"
    assert [s["name"] for s in status["services"]] == ["recording_services"]

    assert cmd_status(Args(), engine) == 0
    out = capsys.readouterr().out
    assert "role            slave (peer 10.0.0.2)" in out
    assert "master          DOWN  failed over 2 min ago" in out
    assert "watch           PAUSED since" in out and "maintenance" in out
    assert "last replication failed   3 min ago  (last good: 2 h ago)  peer unreachable" in out
    assert "last sync        never" in out


def test_failback_brings_the_master_back_and_the_metrics_show_pause(make_engine):
    engine = make_engine()
    engine.store.write_ha_settings(HASettings("slave", "10.0.0.2"))
    engine.journal.append(event("failover", 10))
    engine.journal.append(event("failback", 1))
    engine.store.plugin_state("core.watch").set(
        "status", {"at": datetime.now(UTC).isoformat(), "role": "standby", "verdict": "good", "reason": "3 good rounds"}
    )
    master = engine.status()["master"]
    assert master["state"] == "up" and "3 good rounds" in master["detail"]
    assert "wazo_ha_paused 0.0" in engine.metrics.render()
    engine.pause_watch("test")
    assert "wazo_ha_paused 1.0" in engine.metrics.path.read_text()  # rewritten on the pause event
    engine.resume_watch()
    assert "wazo_ha_paused 0.0" in engine.metrics.path.read_text()


def test_master_status_says_this_node(make_engine):
    engine = make_engine()
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    assert engine.status()["master"]["state"] == "this node"


def test_last_operations_carry_their_figures(make_engine):
    """``last`` shows what each operation moved (wazo-ha status --json and GET /1.1/ha/status)."""
    engine = make_engine()
    copied = event("replication", 1, "ok", "copied")
    copied.figures = {"tables": 12, "rows": 3456, "seconds": 2.5}
    engine.journal.append(copied)

    last = engine.status()["last"]

    assert last["replication"]["figures"] == {"tables": 12, "rows": 3456, "seconds": 2.5}
    assert last["sync"] is None
