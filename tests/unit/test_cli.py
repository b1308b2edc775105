"""The wazo-ha command as an operator runs it: a real process, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yml"
    path.write_text(
        f"root: {tmp_path}/root\nlocal_addresses: [10.0.0.1]\n"
        # No configuration database nor systemd here (tests/edit has them).
        "sip_expiry: {enabled: false}\nslave_db: {enabled: false}\nschedules: {systemctl: ['true']}\n"
        # The default plugins talk to a real provd: none here.
        "plugins: {device_provisioners: []}\n"
    )
    return path


def wazo_ha(*args, config=None):
    argv = [sys.executable, "-m", "wazo_ha_core.cli.main", *args]
    if config is not None:
        argv += ["--config", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_unmigrated_store_then_upgrade(config):
    result = wazo_ha("status", config=config)
    assert result.returncode == 1
    assert "never migrated" in result.stderr and "wazo-ha db upgrade" in result.stderr
    assert "Traceback" not in result.stderr
    assert wazo_ha("db", "status", config=config).returncode == 1
    upgraded = wazo_ha("db", "upgrade", config=config)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "migrated from empty to 0001" in upgraded.stdout
    assert "already at revision 0001" in wazo_ha("db", "upgrade", config=config).stdout
    assert wazo_ha("db", "status", config=config).returncode == 0


def test_injection_attempt_exits_2_and_changes_nothing(config, tmp_path):
    assert wazo_ha("db", "upgrade", config=config).returncode == 0
    store = tmp_path / "root/var/lib/wazo-ha/state.db"
    before = store.read_bytes()
    result = wazo_ha("config", "set", "node_type=master", "remote_address=10.0.0.2;reboot", config=config)
    assert result.returncode == 2
    assert "remote_address" in result.stderr and "10.0.0.2;reboot" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "root/etc").exists()
    assert store.read_bytes() == before
    status = json.loads(wazo_ha("status", "--json", config=config).stdout)
    assert status["node_type"] == "disabled" and status["events"] == []


def test_config_set_get_status_history(config):
    wazo_ha("db", "upgrade", config=config)
    result = wazo_ha("config", "set", "node_type=master", "remote_address=10.0.0.2", config=config)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"node_type": "master", "remote_address": "10.0.0.2"}
    # a field not given keeps its value
    assert wazo_ha("config", "set", "node_type=slave", config=config).returncode == 0
    assert json.loads(wazo_ha("config", "get", config=config).stdout) == {
        "node_type": "slave",
        "remote_address": "10.0.0.2",
    }
    status = json.loads(wazo_ha("status", "--json", config=config).stdout)
    assert status["node_type"] == "slave" and status["remote_address"] == "10.0.0.2"
    assert [e["kind"] for e in status["events"]] == ["edit", "edit"]
    assert status["events"][0]["figures"]["after"]["node_type"] == "slave"
    text = wazo_ha("status", config=config).stdout
    assert "slave" in text and "10.0.0.2" in text
    history = json.loads(wazo_ha("history", "--json", "--kind", "edit", "--limit", "1", config=config).stdout)
    assert len(history) == 1 and history[0]["figures"]["after"]["node_type"] == "slave"
    assert json.loads(wazo_ha("history", "--json", "--kind", "failover", config=config).stdout) == []
    assert json.loads(wazo_ha("history", "--json", "--since", "2999-01-01", config=config).stdout) == []


@pytest.mark.parametrize(
    "args",
    [
        ["config", "set", "node_type"],
        ["config", "set", "=master"],
        ["config", "set", "node_type=master", "node_type=slave"],
        ["history", "--limit", "0"],
        ["history", "--since", "yesterday"],
        ["frobnicate"],
        [],
    ],
)
def test_usage_errors_exit_2(config, args):
    wazo_ha("db", "upgrade", config=config)
    result = wazo_ha(*args, config=config) if args else wazo_ha()
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr


def test_bad_settings_file_exits_2_naming_file_and_key(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("timeouts:\n  connect: soon\n")
    result = wazo_ha("status", config=config)
    assert result.returncode == 2
    assert f"{config}: timeouts.connect: must be a positive number, got 'soon'" in result.stderr


def test_config_option_accepted_before_the_command(config):
    result = subprocess.run(
        [sys.executable, "-m", "wazo_ha_core.cli.main", "--config", str(config), "db", "upgrade"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_plugins_lists_the_five_namespaces(config):
    result = wazo_ha("plugins", config=config)
    assert result.returncode == 0, result.stderr
    for namespace in ("replication", "file_sync", "health_probes", "device_provisioners", "service_managers"):
        assert f"wazo_ha.{namespace}" in result.stdout


def test_unreachable_postgres_store_is_one_line(tmp_path):
    config = tmp_path / "config.yml"
    config.write_text("store: {url: 'postgresql://wazo-ha:secret-pw@127.0.0.1:1/asterisk'}\n")
    result = wazo_ha("status", config=config)
    assert result.returncode == 1
    assert "cannot open state store" in result.stderr
    assert "secret-pw" not in result.stderr
    assert "Traceback" not in result.stderr
