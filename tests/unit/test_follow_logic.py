"""Follow mode's decisions without I/O: when a run is due, how failures space the runs, the file debounce, settings."""

from __future__ import annotations

import pytest

from wazo_ha_core.errors import SettingsError
from wazo_ha_core.extensions import ChangeSignal
from wazo_ha_core.follow import DatabaseWatch, FileEvents, Pace
from wazo_ha_core.settings import Settings


def reading(tables=0, lsn="0/1", lag=11.0) -> list[ChangeSignal]:
    return [ChangeSignal(tables=tables, any_write=lsn, lag=lag)]


def started_watch() -> DatabaseWatch:
    watch = DatabaseWatch()
    assert watch.due(reading(), 0.0)  # a run at start
    watch.covered(reading())
    return watch


def test_nothing_moved_nothing_due():
    watch = started_watch()
    assert not any(watch.due(reading(), now) for now in range(1, 100))


def test_a_moved_table_counter_is_due_at_once():
    watch = started_watch()
    assert watch.due(reading(tables=1, lsn="0/2"), 1.0)


def test_the_wal_position_alone_is_due_after_the_lag_and_a_counter_catching_up_is_due_at_once():
    watch = started_watch()
    assert not watch.due(reading(lsn="0/2"), 10.0)
    assert not watch.due(reading(lsn="0/3"), 20.9)  # the lag counts from the first move
    assert watch.due(reading(lsn="0/3"), 21.0)
    watch = started_watch()
    assert not watch.due(reading(lsn="0/2"), 10.0)
    assert watch.due(reading(tables=5, lsn="0/2"), 12.0)


def test_a_run_covers_the_readings_taken_before_it_only():
    watch = started_watch()
    before = reading(tables=1, lsn="0/2")
    assert watch.due(before, 1.0)
    watch.covered(before)  # a write landed during the run: the next reading differs from the baseline
    assert watch.due(reading(tables=2, lsn="0/3"), 2.0)


def test_failures_double_the_wait_up_to_the_cap_and_a_success_resets_it():
    pace = Pace(min_interval=2.0, max_backoff=10.0)
    assert [pace.failed(0.0) for _ in range(5)] == [4.0, 8.0, 10.0, 10.0, 10.0]
    assert not pace.ready(9.9) and pace.ready(10.0)
    pace.succeeded()
    assert pace.failed(0.0) == 4.0
    pace.started(100.0)
    assert not pace.ready(101.9) and pace.ready(102.0)


def test_file_events_wait_for_the_debounce_and_are_taken_once():
    events = FileEvents()
    assert events.take(0.5, 0.0) == 0
    events.saw(1.0)
    events.saw(1.2)
    assert events.take(0.5, 1.4) == 0
    assert events.take(0.5, 1.5) == 2
    assert events.take(0.5, 9.0) == 0
    events.put_back(2, 10.0)  # a failed sync: the events wait for the next try
    assert events.take(0.5, 10.5) == 2


@pytest.mark.parametrize(
    ("follow", "field", "shown"),
    [
        ({"poll_interval": 0}, "follow.poll_interval", "0"),
        ({"poll_interval": 61}, "follow.poll_interval", "61"),
        ({"min_interval": "2"}, "follow.min_interval", "'2'"),
        ({"debounce": -1}, "follow.debounce", "-1"),
        ({"min_interval": 30, "max_backoff": 10}, "follow.max_backoff", "10"),
        ({"enabled": "yes"}, "follow.enabled", "'yes'"),
    ],
)
def test_bad_follow_settings_are_refused_naming_the_field(follow, field, shown):
    with pytest.raises(SettingsError) as raised:
        Settings.from_tree({"follow": follow})
    assert field in str(raised.value) and shown in str(raised.value)


def test_follow_defaults():
    settings = Settings.from_tree({})
    assert settings.get("follow.enabled") is True
    assert (settings.get("follow.poll_interval"), settings.get("follow.min_interval")) == (1.0, 2.0)
