"""What an operator sees from one-shot commands: each message once, quiet means quiet, no traceback on a closed pipe."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from wazo_ha_core.cli.common import print_events

from .test_watch_log import ENTRY_POINT, SOURCE_TREE


def wazo_ha_argv():
    # The entry point from this source tree (``python -m`` adds a runpy warning to stderr).
    return [sys.executable, "-c", ENTRY_POINT]


def wazo_ha(*args, config=None):
    argv = [*wazo_ha_argv(), *args, *(["--config", str(config)] if config else [])]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, cwd=SOURCE_TREE)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(
        f"root: {tmp_path}/root\nlocal_addresses: [10.0.0.1]\n"
        "sip_expiry: {enabled: false}\nslave_db: {enabled: false}\nschedules: {systemctl: ['true']}\n"
        "plugins: {device_provisioners: [], service_managers: []}\n"
    )
    assert wazo_ha("db", "upgrade", config=path).returncode == 0
    return path


def test_a_failed_edit_is_printed_once(config, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(
        config.read_text().replace(
            "schedules: {systemctl: ['true']}", "schedules: {kind: systemd, systemctl: ['false']}"
        )
    )
    result = wazo_ha("config", "set", "node_type=master", "remote_address=10.0.0.2", config=broken)
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("wazo-ha: HA edit failed at step 'schedules'")
    log = (tmp_path / "root/var/log/wazo-ha.log").read_text()
    assert "(ERROR) (wazo_ha_core.edit): HA edit step 'schedules' failed" in log  # the record stays in the log


def test_quiet_config_set_prints_nothing(config):
    result = wazo_ha("-q", "config", "set", "node_type=master", "remote_address=10.0.0.2", config=config)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_history_says_what_an_edit_changed(config):
    wazo_ha("config", "set", "node_type=master", "remote_address=10.0.0.2", config=config)
    history = wazo_ha("history", config=config)
    assert "disabled -> master 10.0.0.2" in history.stdout, history.stdout


def test_edits_journaled_without_a_message_are_described_from_their_figures(capsys):
    print_events(
        [
            {
                "started_at": "2026-01-01T10:00:00+00:00",
                "kind": "edit",
                "outcome": "ok",
                "duration": 0.2,
                "message": "",
                "figures": {
                    "before": {"node_type": "master", "remote_address": "10.0.0.2"},
                    "after": {"node_type": "disabled", "remote_address": ""},
                },
            }
        ]
    )
    assert capsys.readouterr().out.rstrip().endswith("master 10.0.0.2 -> disabled")


def test_history_columns_stay_aligned_for_long_kinds(capsys):
    kinds = ["edit", "failover-paused", "failover-refused", "failback-delayed"]
    print_events(
        [
            {"started_at": "2026-01-01T10:00:00+00:00", "kind": kind, "outcome": "ok", "duration": None, "message": "m"}
            for kind in kinds
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    assert len({line.index(" ok ") for line in lines}) == 1, lines


def test_a_master_status_says_nothing_of_the_watch(config):
    wazo_ha("config", "set", "node_type=master", "remote_address=10.0.0.2", config=config)
    status = wazo_ha("status", config=config)
    assert status.returncode == 0
    assert "watch" not in status.stdout.split("state store")[0], status.stdout


def test_a_closed_pipe_ends_quietly(config):
    """``wazo-ha status | head -1``: the reader is gone before the command writes."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        argv = ["status", "--config", str(config)]
        result = subprocess.run(
            [*wazo_ha_argv(), *argv], stdout=writer, stderr=subprocess.PIPE, text=True, timeout=60, cwd=SOURCE_TREE
        )
    finally:
        os.close(writer)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.returncode == 0


def test_status_shows_a_copy_back_owed_and_the_scheduled_check_is_silent(config, tmp_path):
    from wazo_ha_core.store import Store

    override = config.parent / "conf.d" / "no-probes.yml"  # no probe of 10.0.0.2 from a unit test
    override.parent.mkdir()
    override.write_text("plugins: {health_probes: [], replication: [], file_sync: []}\n")
    override.chmod(0o600)
    wazo_ha("config", "set", "node_type=master", "remote_address=10.0.0.2", config=config)
    store = Store(f"sqlite:///{tmp_path}/root/var/lib/wazo-ha/state.db")
    try:
        owed = {"owed_since": 1_764_700_000.0, "reason": "the slave serves", "evidence_at": 1_764_700_000.0}
        store.plugin_state("core.copy_back").set("auto", owed)
    finally:
        store.close()

    check = wazo_ha("copy-back", "--auto", "--quiet", config=config)  # what cron runs: it mails any output
    status = wazo_ha("status", config=config)

    assert check.returncode == 0 and check.stdout == "" and check.stderr == ""
    assert "copy-back       OWED since 2025-12-02T18:26:40 (the slave serves)" in status.stdout, status.stdout
