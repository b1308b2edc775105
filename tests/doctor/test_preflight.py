"""wazo-ha doctor before enabling (``--as master|slave --peer``): disk space on real filesystems (a small
tmpfs mounted as the voicemail spool), the command the schedules run, PostgreSQL's version, and the CLI
around it (``replication-password import`` naming its settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wazo_ha_core import HAEngine, Settings
from wazo_ha_core.config import HASettings
from wazo_ha_core.doctor import FAIL, PASS, WARN
from wazo_ha_core.doctor_disk import disk_space

MIB = 1024 * 1024
SYNCED = "/etc/asterisk/extensions_extra.d"


def sandbox_settings(root: Path, **tree) -> Settings:
    base = {
        "root": str(root),
        "file_sync": {"directories": [SYNCED], "tenant_sounds_dir": "/var/lib/wazo/sounds/tenants"},
    }
    return Settings.from_tree({**base, **tree})


@pytest.fixture
def small_spool(tmp_path):
    """The sandbox's /var/spool/asterisk on a 20 MiB tmpfs of its own (unmounted afterwards)."""
    spool = tmp_path / "var/spool/asterisk"
    spool.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "wazo-ha-test", str(spool)], check=True, timeout=30)
    try:
        yield spool
    finally:
        subprocess.run(["umount", str(spool)], check=True, timeout=30)


def test_disk_space_on_the_master_reports_what_the_slave_must_hold(tmp_path):
    synced = tmp_path / SYNCED.lstrip("/")
    synced.mkdir(parents=True)
    (synced / "big.conf").write_bytes(b"x" * (3 * MIB))
    (synced / "sub").mkdir()
    (synced / "sub/small.conf").write_bytes(b"y" * (2 * MIB))
    os.symlink("/usr", synced / "link")  # not followed: /usr is not synced
    result = disk_space(sandbox_settings(tmp_path), "master")
    assert result.status == PASS, result
    assert "the synced directories hold 5 MiB" in result.detail and "--as slave" in result.detail
    assert "hold" not in disk_space(sandbox_settings(tmp_path), "slave").detail


def test_a_small_spool_filesystem_warns_then_fails_naming_it(tmp_path, small_spool):
    roomy = disk_space(sandbox_settings(tmp_path, doctor={"disk_free_warn_mb": 10, "disk_free_fail_mb": 5}), "slave")
    assert roomy.status == PASS and f"{small_spool}: 20 MiB free (spool)" in roomy.detail
    warned = disk_space(sandbox_settings(tmp_path, doctor={"disk_free_warn_mb": 100, "disk_free_fail_mb": 5}), "slave")
    assert warned.status == WARN and str(small_spool) in warned.fix and "doctor.disk_free_warn_mb" in warned.detail
    (small_spool / "recording.wav").write_bytes(b"r" * (17 * MIB))
    failed = disk_space(sandbox_settings(tmp_path, doctor={"disk_free_warn_mb": 100, "disk_free_fail_mb": 5}), "slave")
    assert failed.status == FAIL and f"{small_spool}: 3 MiB free (spool)" in failed.detail
    assert str(small_spool) in failed.fix and str(tmp_path) + ":" in failed.detail  # the other filesystem too
    assert str(tmp_path) + "," not in failed.fix  # only the short one is named in the fix


# --- the whole preflight through the CLI --------------------------------------------------------------------


def write_config(path: Path, tree: dict) -> Path:
    path.write_text(json.dumps(tree))
    path.chmod(0o600)
    return path


def cli(config: Path, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "wazo_ha_core.cli.main", *argv, "--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, input=stdin)


def preflight_tree(root: Path, cluster, **extra) -> dict:
    return {
        "root": str(root),
        "config_db": {"url": f"postgresql://postgres@/postgres?host={cluster.socket_dir}&port={cluster.port}"},
        "plugins": {
            "replication": [],
            "file_sync": [],
            "health_probes": [],
            "device_provisioners": [],
            "service_managers": [],
        },
        **extra,
    }


def test_preflight_reports_postgresql_version_and_a_missing_schedules_command(tmp_path, pg_cluster):
    config = write_config(
        tmp_path / "config.yml",
        preflight_tree(tmp_path / "root", pg_cluster, schedules={"command": str(tmp_path / "venv/bin/wazo-ha")}),
    )
    result = cli(config, "doctor", "--as", "slave", "--peer", "10.203.9.2", "--json")
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    database = checks["configuration database"]
    assert database["status"] == PASS and "PostgreSQL 15" in database["detail"], database
    command = checks["schedules command"]
    assert (
        command["status"] == FAIL and "venv/bin/wazo-ha" in command["detail"] and "schedules.command" in command["fix"]
    )
    assert checks["disk space"]["status"] == PASS
    assert result.returncode == 1
    # The role asked for is the one the doctor talks about: nothing suggests the other one.
    assert "node_type=master" not in result.stdout


def test_replication_password_import_names_the_settings_it_used(tmp_path, pg_cluster):
    root = tmp_path / "root"
    config = write_config(tmp_path / "config.yml", preflight_tree(root, pg_cluster))
    assert cli(config, "db", "upgrade").returncode == 0
    result = cli(config, "replication-password", "import", stdin="a-password-of-some-length\n")
    assert result.returncode == 0, result.stderr
    stored = root / "etc/wazo-ha/replication-password"
    assert f"stored in {stored} (settings: {config})" in result.stdout
    assert stored.read_text().strip() == "a-password-of-some-length"
    assert "a-password-of-some-length" not in result.stdout + result.stderr


def test_the_engine_preflight_never_needs_ha_settings(tmp_path, pg_cluster):
    """``--as`` works on a node where HA was never configured (no ha.conf, an empty store)."""
    engine = HAEngine(Settings.from_tree(preflight_tree(tmp_path, pg_cluster)))
    engine.store.upgrade()
    names = [report.name for report in engine.doctor(HASettings("master", "10.203.9.2"))]
    assert "configuration database" in names and "disk space" in names and "HA enabled" not in names
