"""Per-role schedules: cron files or systemd units written, switched and removed; undo exact."""

from __future__ import annotations

import json
import sys

import pytest

from wazo_ha_core.config import DISABLED, HASettings
from wazo_ha_core.errors import EditStepError
from wazo_ha_core.schedules import ScheduleStep
from wazo_ha_core.settings import Settings

MASTER = HASettings("master", "10.0.0.2")
SLAVE = HASettings("slave", "10.0.0.2")
# Records each call; fails (exit 1) on the call whose arguments are in "<calls file>.fail".
RECORDER = """
import json, pathlib, sys
calls, args = pathlib.Path(sys.argv[1]), sys.argv[2:]
with calls.open("a") as out:
    out.write(json.dumps(args) + "\\n")
fail = pathlib.Path(str(calls) + ".fail")
sys.exit(1 if fail.exists() and json.loads(fail.read_text()) == args else 0)
"""


@pytest.fixture
def calls_file(tmp_path):
    return tmp_path / "systemctl.calls"


@pytest.fixture
def make_settings(tmp_path, calls_file):
    def make(**schedules):
        systemctl = [sys.executable, "-c", RECORDER, str(calls_file)]
        return Settings.from_tree({"root": str(tmp_path / "root"), "schedules": {"systemctl": systemctl, **schedules}})

    return make


def systemctl_calls(calls_file):
    if not calls_file.exists():
        return []
    return [json.loads(line) for line in calls_file.read_text().splitlines()]


def files(root):
    return {str(p.relative_to(root)): p.read_text() for p in sorted(root.rglob("*")) if p.is_file()}


def test_master_cron_every_minute_then_removed(make_settings, tmp_path, calls_file):
    settings = make_settings()
    ScheduleStep(settings).apply(DISABLED, MASTER)
    cron = tmp_path / "root/etc/cron.d/xivo-ha-master"
    lines = [line for line in cron.read_text().splitlines() if not line.startswith("#")]
    assert lines[-3:] == [
        "* * * * * root /usr/bin/wazo-ha replicate --quiet",
        "* * * * * root /usr/bin/wazo-ha sync --quiet",
        "* * * * * root /usr/bin/wazo-ha copy-back --auto --quiet",
    ]
    assert oct(cron.stat().st_mode & 0o777) == "0o644"
    # The follower is a long-running process: a systemd service whatever the kind of schedule.
    follow = tmp_path / "root/etc/systemd/system/wazo-ha-follow.service"
    assert "ExecStart=/usr/bin/wazo-ha follow --quiet" in follow.read_text()
    assert systemctl_calls(calls_file) == [["daemon-reload"], ["enable", "--now", "wazo-ha-follow.service"]]
    calls_file.unlink()
    ScheduleStep(settings).apply(MASTER, DISABLED)
    assert files(tmp_path / "root") == {}
    assert systemctl_calls(calls_file) == [["disable", "--now", "wazo-ha-follow.service"], ["daemon-reload"]]


def test_master_without_follow_has_the_schedule_only(make_settings, tmp_path, calls_file):
    settings = Settings.from_tree({**make_settings().tree, "follow": {"enabled": False}})
    ScheduleStep(settings).apply(DISABLED, MASTER)
    assert sorted(files(tmp_path / "root")) == ["etc/cron.d/xivo-ha-master"]
    assert systemctl_calls(calls_file) == []  # cron needs no systemctl


def test_hourly_compatibility_and_custom_config_file(tmp_path, calls_file):
    config = tmp_path / "site config.yml"
    # Only the cron line here (the real systemctl, which the follower's unit would call, is not for tests).
    config.write_text(f"root: {tmp_path}/root\nschedules: {{master_interval: 60}}\nfollow: {{enabled: false}}\n")
    settings = Settings.load(config)
    ScheduleStep(settings).apply(DISABLED, MASTER)
    text = (tmp_path / "root/etc/cron.d/xivo-ha-master").read_text()
    assert f"0 * * * * root /usr/bin/wazo-ha --config '{config}' replicate --quiet" in text


def test_slave_watch_unit_enabled_then_switched_to_master_timers(make_settings, tmp_path, calls_file):
    settings = make_settings(kind="systemd")
    ScheduleStep(settings).apply(DISABLED, SLAVE)
    unit = tmp_path / "root/etc/systemd/system/wazo-ha-watch.service"
    assert "ExecStart=/usr/bin/wazo-ha watch --quiet" in unit.read_text()
    assert systemctl_calls(calls_file) == [["daemon-reload"], ["enable", "--now", "wazo-ha-watch.service"]]
    calls_file.unlink()
    ScheduleStep(settings).apply(SLAVE, MASTER)
    assert sorted(files(tmp_path / "root")) == [
        "etc/systemd/system/wazo-ha-copy-back.service",
        "etc/systemd/system/wazo-ha-copy-back.timer",
        "etc/systemd/system/wazo-ha-follow.service",
        "etc/systemd/system/wazo-ha-replicate.service",
        "etc/systemd/system/wazo-ha-replicate.timer",
        "etc/systemd/system/wazo-ha-sync.service",
        "etc/systemd/system/wazo-ha-sync.timer",
    ]
    assert "OnCalendar=*-*-* *:00/1:00" in (tmp_path / "root/etc/systemd/system/wazo-ha-sync.timer").read_text()
    assert systemctl_calls(calls_file) == [
        ["disable", "--now", "wazo-ha-watch.service"],
        ["daemon-reload"],
        [
            "enable",
            "--now",
            "wazo-ha-replicate.timer",
            "wazo-ha-sync.timer",
            "wazo-ha-copy-back.timer",
            "wazo-ha-follow.service",
        ],
    ]


def test_slave_check_mode_is_a_cron_line(make_settings, tmp_path):
    ScheduleStep(make_settings(slave_mode="check")).apply(DISABLED, SLAVE)
    text = (tmp_path / "root/etc/cron.d/xivo-ha-slave").read_text()
    assert "* * * * * root /usr/bin/wazo-ha check --quiet" in text


def test_repeated_apply_rewrites_nothing_and_calls_nothing(make_settings, tmp_path, calls_file):
    settings = make_settings()
    ScheduleStep(settings).apply(DISABLED, SLAVE)
    unit = tmp_path / "root/etc/systemd/system/wazo-ha-watch.service"
    stamp = unit.stat().st_mtime_ns
    calls_file.unlink()
    ScheduleStep(settings).apply(SLAVE, HASettings("slave", "10.0.0.3"))
    assert unit.stat().st_mtime_ns == stamp
    assert systemctl_calls(calls_file) == []


def test_undo_and_failure_put_everything_back(make_settings, tmp_path, calls_file):
    settings = make_settings(kind="systemd")
    ScheduleStep(settings).apply(DISABLED, SLAVE)
    before = files(tmp_path / "root")
    step = ScheduleStep(settings)
    step.apply(SLAVE, MASTER)
    calls_file.unlink()
    step.undo(SLAVE, MASTER)
    assert files(tmp_path / "root") == before
    assert systemctl_calls(calls_file) == [
        [
            "disable",
            "--now",
            "wazo-ha-replicate.timer",
            "wazo-ha-sync.timer",
            "wazo-ha-copy-back.timer",
            "wazo-ha-follow.service",
        ],
        ["daemon-reload"],
        ["enable", "--now", "wazo-ha-watch.service"],
    ]
    # systemctl refusing to enable the timers: files back, the watch enabled again.
    enable_timers = [
        "enable",
        "--now",
        "wazo-ha-replicate.timer",
        "wazo-ha-sync.timer",
        "wazo-ha-copy-back.timer",
        "wazo-ha-follow.service",
    ]
    (tmp_path / "systemctl.calls.fail").write_text(json.dumps(enable_timers))
    calls_file.unlink()
    refused = (
        r"enable --now wazo-ha-replicate\.timer wazo-ha-sync\.timer wazo-ha-copy-back\.timer "
        r"wazo-ha-follow\.service exited"
    )
    with pytest.raises(EditStepError, match=refused):
        ScheduleStep(settings).apply(SLAVE, MASTER)
    assert files(tmp_path / "root") == before
    assert systemctl_calls(calls_file) == [
        ["disable", "--now", "wazo-ha-watch.service"],
        ["daemon-reload"],
        enable_timers,
        ["daemon-reload"],
        ["enable", "--now", "wazo-ha-watch.service"],
    ]
