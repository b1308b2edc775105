"""The copy-back and the file sync share one lock; the follower's copy-back checks; the two check drivers.

In-memory plugins (tests/unit/sample_plugins.py) for the slave's probes, the rows and the file sync; the real
copy-back operation, locks (``flock`` on files), store (SQLite) and journal. The process-level proof that a
sync and a copy-back never interleave (real rsync, two real processes) is tests/copyback_follow.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from wazo_ha_core import run_locks
from wazo_ha_core.config import HASettings
from wazo_ha_core.copy_back import auto
from wazo_ha_core.copy_back import run as copy_back_run
from wazo_ha_core.errors import AlreadyRunning, SettingsError
from wazo_ha_core.follow import CopyBackChecks, Follower
from wazo_ha_core.settings import Settings
from wazo_ha_rig.waiting import wait_for

from . import sample_plugins
from .conftest import lock_held_by_another_process

PEER = sample_plugins.PEER
MASTER_TREE = {
    "plugins": {
        "health_probes": ["scripted_host", "scripted_sip"],
        "replication": ["scripted_copy_back"],
    },
    "copy_back": {"retry_min": 60, "retry_max": 600},
}


@pytest.fixture
def masters(make_engine):
    """Engines of one master (same sandbox, store and settings): each thread or driver gets its own."""
    PEER.update(host=True, sip=False, copy_back=[])

    def make(file_sync: bool = False):
        tree = MASTER_TREE if not file_sync else {**MASTER_TREE, "plugins": {"file_sync": ["recording_file_sync"]}}
        engine = make_engine(**tree)
        engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
        return engine

    return make


def test_a_copy_back_is_refused_while_a_sync_holds_the_shared_lock_naming_it(masters):
    master = masters()
    run_dir = master.settings.path("run_dir")
    with run_locks.exclusive(run_dir, "file-sync.lock", "file sync", holder="file sync"):
        with pytest.raises(AlreadyRunning, match=r"^copy-back: a file sync is running \(lock .*file-sync.lock"):
            master.copy_back()
    [event] = master.store.events(kind="copy-back")
    assert event.outcome == "refused" and sample_plugins.CALLS == []
    assert master.copy_back().outcome == "ok"  # released


def test_a_sync_is_refused_while_a_copy_back_holds_the_shared_lock_naming_it(masters):
    master = masters(file_sync=True)
    run_dir = master.settings.path("run_dir")
    with run_locks.exclusive(run_dir, "file-sync.lock", "copy-back", holder="copy-back"):
        with pytest.raises(AlreadyRunning, match=r"^file sync: a copy-back is running \(lock .*, PID \d+\)$"):
            master.sync_files()
    assert [call for call in sample_plugins.CALLS if call[1] == "sync"] == []


def test_a_copy_back_holds_the_sync_lock_for_its_whole_run(masters, monkeypatch):
    master, syncing = masters(), masters(file_sync=True)
    seen = []

    def rows(*args, **kwargs):  # during the rows, the first part of the run: a sync is refused
        with pytest.raises(AlreadyRunning, match="file sync: a copy-back is running"):
            syncing.sync_files()
        seen.append("refused")
        return original(*args, **kwargs)

    original = copy_back_run._rows
    monkeypatch.setattr(copy_back_run, "_rows", rows)
    assert master.copy_back().outcome == "ok" and seen == ["refused"]


def test_the_automatic_check_waits_for_a_sync_then_skips_without_counting_a_failure(masters, monkeypatch):
    master = masters()
    monkeypatch.setattr(copy_back_run, "UNATTENDED_LOCK_WAIT", 0.3)
    PEER["host"] = False  # a failover may be going on: owed
    auto.check(master)
    PEER["host"] = True
    with lock_held_by_another_process(master.settings.path("run_dir") / "file-sync.lock"):
        result = auto.check(master)
    assert not result["ran"] and "waited 0.3 s" in result["why"]
    state = auto.load_state(master.store)
    assert state.owed and state.attempts == 0 and state.running_since is None  # not counted as a failure
    result = auto.check(master)
    assert result["ran"] and result["outcome"] == "ok" and result["owed"] is False


def test_follow_checks_run_the_owed_copy_back_once_the_slave_gives_back(masters):
    master = masters()
    PEER["sip"] = True  # the slave serves
    checks = CopyBackChecks(masters, interval=0.05)
    checks.start()
    try:
        wait_for(lambda: auto.load_state(master.store).owed, 10, "the copy-back owed")
        seen = checks.checks
        wait_for(lambda: checks.checks >= seen + 3, 10, "more checks while the slave serves")
        assert master.store.events(kind="copy-back") == []
        PEER["sip"] = False  # the slave gave back
        wait_for(lambda: auto.load_state(master.store).last_outcome == "ok", 10, "the copy-back done")
        seen = checks.checks
        wait_for(lambda: checks.checks >= seen + 3, 10, "more checks once done")
    finally:
        assert checks.stop(10)
    [event] = master.store.events(kind="copy-back")
    assert event.outcome == "ok" and event.figures["automatic"] is True
    assert not auto.load_state(master.store).owed


def test_a_scheduled_check_meeting_the_followers_exits_0_quietly(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text(f"root: {tmp_path}/root\n")
    lock = tmp_path / "root/run/wazo-ha/copy-back-auto.lock"
    with lock_held_by_another_process(lock):
        result = subprocess.run(
            [sys.executable, "-m", "wazo_ha_core.cli.main", "--config", str(config), "copy-back", "--auto"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 0, result.stderr
    assert "skipped: automatic copy-back check already running" in result.stdout


def test_follow_copy_back_interval_setting():
    assert Settings.from_tree({}).get("follow.copy_back_interval") == 2.0
    assert Settings.from_tree({"follow": {"copy_back_interval": None}}).get("follow.copy_back_interval") is None
    for bad, shown in ((61, "61"), (0, "0"), ("2", "'2'")):
        with pytest.raises(SettingsError) as raised:
            Settings.from_tree({"follow": {"copy_back_interval": bad}})
        assert "follow.copy_back_interval" in str(raised.value) and shown in str(raised.value)


def test_a_follower_without_the_interval_leaves_the_checks_to_the_schedule(make_engine):
    assert Follower(make_engine(follow={"copy_back_interval": None})).copy_back_checks is None
    assert Follower(make_engine()).copy_back_checks.interval == 2.0


def test_quiet_checks_that_change_nothing_write_the_store_at_most_once_a_refresh_period(masters):
    master = masters()
    clock = Clock()
    auto.check(master, clock=clock, quiet=True)
    first = auto.load_state(master.store).last_check
    assert first == clock.now
    clock.now += 30
    auto.check(master, clock=clock, quiet=True)  # nothing new: not written
    assert auto.load_state(master.store).last_check == first
    clock.now += 31
    auto.check(master, clock=clock, quiet=True)  # 61 s since the stored check: refreshed
    assert auto.load_state(master.store).last_check == clock.now
    PEER["sip"] = True  # news: written at once
    clock.now += 2
    auto.check(master, clock=clock, quiet=True)
    assert auto.load_state(master.store).owed
    clock.now += 1
    auto.check(master, clock=clock)  # the schedule's check always writes
    assert auto.load_state(master.store).last_check == clock.now


class Clock:
    def __init__(self):
        self.now = 1_000_000.0

    def __call__(self):
        return self.now
