"""The provd plugin against a stand-in provd (tests/rig/provd_standin.py; provd cannot run here).

Every test asserts the exact requests the plugin sent.
"""

from __future__ import annotations

import copy
import json
import urllib.parse

import pytest

from wazo_ha_core.errors import EditError, PluginError

from .conftest import TOKEN

MEDIA_TYPE = "application/vnd.proformatique.provd+json"
QUERY = "/provd/cfg_mgr/configs?" + urllib.parse.urlencode(
    {"q": json.dumps({"X_type": "registrar"}, separators=(",", ":"))}
)

DEFAULT = {
    "id": "default",
    "X_type": "registrar",
    "displayname": "local",
    "registrar_main": "10.0.0.1",
    "registrar_main_port": 5060,
    "registrar_backup": "192.0.2.50",  # set by hand by the operator: must come back
    "registrar_backup_port": 5060,
    "proxy_main": "10.0.0.1",
    "proxy_main_port": 5060,
    "proxy_outbound": "",
    "proxy_outbound_port": 5060,
}
SECOND = {**DEFAULT, "id": "reg2", "displayname": "second", "registrar_backup": "", "proxy_backup": ""}
THIRD = {"id": "reg3", "X_type": "registrar", "displayname": "third", "registrar_main": "10.0.0.1"}
NOT_A_REGISTRAR = {"id": "base", "X_type": "internal", "raw_config": {}}


@pytest.fixture
def configs(provd):
    for config in (DEFAULT, SECOND, THIRD, NOT_A_REGISTRAR):
        provd.add_config(config)
    return provd


def with_backup(config, address):
    return {**config, "registrar_backup": address, "proxy_backup": address}


def test_master_sets_backup_registrar_with_exact_requests(make_engine, configs):
    make_engine().update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert [(r.method, r.path) for r in configs.requests] == [
        ("GET", QUERY),
        ("PUT", "/provd/cfg_mgr/configs/default"),
        ("PUT", "/provd/cfg_mgr/configs/reg2"),
        ("PUT", "/provd/cfg_mgr/configs/reg3"),
    ]
    assert [r.body for r in configs.changes()] == [
        {"config": with_backup(DEFAULT, "10.0.0.2")},
        {"config": with_backup(SECOND, "10.0.0.2")},
        {"config": with_backup(THIRD, "10.0.0.2")},
    ]
    assert all(r.token == TOKEN for r in configs.requests)
    assert configs.configs["base"] == NOT_A_REGISTRAR


def test_enable_then_disable_restores_manual_backups_exactly(make_engine, configs):
    engine = make_engine()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.3"})  # peer moved: still remembered once
    assert configs.configs["default"]["registrar_backup"] == "10.0.0.3"
    configs.requests.clear()
    engine.update_ha({"node_type": "disabled"})
    assert configs.configs == {c["id"]: c for c in (DEFAULT, SECOND, THIRD, NOT_A_REGISTRAR)}
    assert "proxy_backup" not in configs.configs["reg3"]  # absent before: absent again, not blanked
    assert [(r.method, r.path) for r in configs.requests] == [
        ("GET", QUERY),
        ("PUT", "/provd/cfg_mgr/configs/default"),
        ("PUT", "/provd/cfg_mgr/configs/reg2"),
        ("PUT", "/provd/cfg_mgr/configs/reg3"),
    ]
    plugin_state = engine.store.plugin_state("device_provisioners.provd")
    assert plugin_state.get("previous") is None  # forgotten once restored


def test_repeated_edit_sends_no_put(make_engine, configs):
    engine = make_engine()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    configs.requests.clear()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert configs.requests == []  # identical settings: nothing asked at all
    # And the plugin itself is idempotent: asked again, it only reads.
    [provisioner] = engine.loader.load("device_provisioners")
    provisioner.enable_backup("10.0.0.2")
    assert [(r.method, r.path) for r in configs.requests] == [("GET", QUERY)]


def test_provd_failing_half_way_restores_every_config_and_ha_conf(make_engine, configs, sandbox):
    engine = make_engine()
    engine.update_ha({"node_type": "slave", "remote_address": "10.0.0.2"})
    ha_conf = sandbox / "etc/xivo/ha.conf"
    ha_conf_before = ha_conf.read_bytes()
    configs.fail_put["reg3"] = 500
    with pytest.raises(EditError) as caught:
        engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert caught.value.step == "device provisioner provd"
    assert "HTTP 500" in str(caught.value)
    assert configs.configs == {c["id"]: c for c in (DEFAULT, SECOND, THIRD, NOT_A_REGISTRAR)}
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in configs.changes()] == [
        ("PUT", "default"),
        ("PUT", "reg2"),
        ("PUT", "reg3"),  # refused
        ("PUT", "reg2"),  # put back, in reverse
        ("PUT", "default"),
    ]
    assert configs.changes()[-1].body == {"config": DEFAULT}
    assert ha_conf.read_bytes() == ha_conf_before
    assert engine.get_ha() == {"node_type": "slave", "remote_address": "10.0.0.2"}
    assert engine.store.plugin_state("device_provisioners.provd").get("previous") is None


def test_backup_changed_by_hand_while_enabled_is_left_alone(make_engine, configs):
    engine = make_engine()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    configs.configs["reg2"]["proxy_backup"] = "198.51.100.7"  # the operator's deliberate choice
    engine.update_ha({"node_type": "disabled"})
    assert configs.configs["reg2"] == {**SECOND, "proxy_backup": "198.51.100.7"}
    assert configs.configs["default"] == DEFAULT


def test_slave_never_touches_provd(make_engine, configs):
    engine = make_engine()
    engine.update_ha({"node_type": "slave", "remote_address": "10.0.0.2"})
    engine.update_ha({"node_type": "disabled"})
    assert configs.requests == []


def test_requests_use_provd_media_type(make_engine, configs):
    make_engine().update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert configs.configs["default"]["proxy_backup"] == "10.0.0.2"  # the stand-in answers 415 otherwise


def test_wrong_token_is_a_clear_error_and_changes_nothing(make_engine, configs, sandbox):
    engine = make_engine(token="wrong")
    with pytest.raises(EditError, match="HTTP 401"):
        engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert not (sandbox / "etc/xivo/ha.conf").exists()
    assert "wrong" not in str(engine.store.events()[0].message)


def test_token_file_must_be_private(make_engine, configs, sandbox):
    token_file = sandbox / "etc/wazo-ha/provd-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)
    engine = make_engine(token=None, token_file="/etc/wazo-ha/provd-token")
    with pytest.raises(EditError, match="readable by others"):
        engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    token_file.chmod(0o600)
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert configs.requests[-1].token == TOKEN


def test_unreachable_provd_is_a_clear_error(make_engine, configs):
    engine = make_engine(url="http://127.0.0.1:9/provd", timeout=2)
    with pytest.raises(EditError, match="unreachable"):
        engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})


# --- resync -------------------------------------------------------------------------


@pytest.fixture
def devices(configs):
    configs.add_config({"id": "autoprov", "X_type": "internal", "parent_ids": ["base"]})
    for number in range(1, 8):
        configs.add_config({"id": f"dev{number}", "parent_ids": ["base", "default" if number % 2 else "reg2"]})
        configs.devices[f"d{number}"] = {
            "id": f"d{number}",
            "config": f"dev{number}",
            "mac": f"00:11:22:33:44:0{number}",
        }
    configs.devices["d8"] = {"id": "d8", "config": "autoprov"}  # a phone not yet assigned: no registrar
    configs.devices["d9"] = {"id": "d9"}
    return configs


def test_resync_registrar_devices_bounded_and_cleaned_up(make_engine, devices):
    engine = make_engine(resync_parallel=3)
    devices.polls_before_done = 2
    result = engine.resync_devices()
    assert result.figures == {"devices": 7, "failed": 0}
    posts = [r.body["id"] for r in devices.requests if r.method == "POST"]
    assert posts == [f"d{n}" for n in range(1, 8)]
    assert all(r.path == "/provd/dev_mgr/synchronize" for r in devices.requests if r.method == "POST")
    assert 1 < devices.max_in_progress <= 3
    deleted = [r.path for r in devices.requests if r.method == "DELETE"]
    assert sorted(deleted) == sorted(f"/provd/dev_mgr/synchronize/op{n}" for n in range(1, 8))
    assert devices.operations == {}  # every finished operation deleted
    [event] = [e for e in engine.store.events() if e.kind == "resync"]
    assert event.outcome == "ok" and event.figures["devices"] == 7


def test_resync_all_and_failures(make_engine, devices):
    engine = make_engine()
    devices.fail_sync.add("d2")
    devices.refuse_sync.add("d9")
    result = engine.resync_devices(all_devices=True)
    assert result.figures == {"devices": 9, "failed": 2}
    assert any("d2" in w and "failed" in w for w in result.warnings)
    assert any("d9" in w and "HTTP 404" in w for w in result.warnings)
    assert devices.operations == {}


def test_resync_cli_exit_codes(make_engine, devices, tmp_path, sandbox, provd):
    import subprocess
    import sys

    config = tmp_path / "config.yml"
    config.write_text(
        json.dumps(
            {
                "root": str(sandbox),
                "plugins": {"device_provisioners": ["provd"]},
                "plugin_config": {"provd": {"url": provd.url, "token": TOKEN, "poll_interval": 0.01}},
            }
        )
    )
    make_engine()  # migrates the store in the sandbox

    def resync(*extra):
        argv = [sys.executable, "-m", "wazo_ha_core.cli.main", "devices", "resync", "--config", str(config), *extra]
        return subprocess.run(argv, capture_output=True, text=True, timeout=60)

    ok = resync()
    assert ok.returncode == 0, ok.stderr
    assert "7 of 7 device(s) resynchronised" in ok.stdout
    devices.fail_sync.add("d3")
    failed = resync("--all")
    assert failed.returncode == 1
    assert "8 of 9" in failed.stdout and "failed: device d3" in failed.stdout


def test_bad_url_setting_is_refused_at_load(make_engine):
    engine = make_engine(url="file:///etc/passwd")
    with pytest.raises(PluginError, match="http"):
        engine.loader.load("device_provisioners")


def test_the_standin_keeps_copies_so_expected_values_cannot_drift(provd, make_engine):
    # The tests compare the stand-in's configs with module constants such as DEFAULT: that only proves
    # something if the stand-in never shares a dict with the test, in either direction.
    given = copy.deepcopy(DEFAULT)
    provd.add_config(given)
    given["registrar_backup"] = "changed by the test after add_config"
    assert provd.configs["default"] == DEFAULT

    make_engine().update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert provd.configs["default"]["registrar_backup"] == "10.0.0.2"
    assert given["registrar_backup"] == "changed by the test after add_config"
    assert DEFAULT["registrar_backup"] == "192.0.2.50"


# --- doctor --------------------------------------------------------------------------


def provd_check(engine):
    from wazo_ha_core.config import HASettings

    reports = {report.name: report for report in engine.doctor(HASettings("master", "10.0.0.2"))}
    return reports["provd: provd reachable with its token"]


def test_doctor_before_enabling_a_master_checks_provd_and_its_token(make_engine, configs):
    assert provd_check(make_engine()).status == "PASS"
    wrong = provd_check(make_engine(token="wrong"))
    assert wrong.status == "FAIL" and "HTTP 401" in wrong.detail and "token_file" in wrong.fix
    gone = provd_check(make_engine(url="http://127.0.0.1:9/provd", timeout=2))
    assert gone.status == "FAIL" and "unreachable" in gone.detail and "start wazo-provd" in gone.fix


def test_doctor_names_the_token_file_on_a_401(make_engine, configs, sandbox):
    token_file = sandbox / "etc/wazo-ha/provd-token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text("expired-token\n")
    token_file.chmod(0o600)
    refused = provd_check(make_engine(token=None, token_file="/etc/wazo-ha/provd-token"))
    assert refused.status == "FAIL" and "HTTP 401" in refused.detail
    assert f"token from {token_file}" in refused.detail and "expired-token" not in refused.detail + refused.fix
    assert "/etc/wazo-ha/provd-token" in refused.fix and "device_provisioners: []" in refused.fix
    # No token configured at all: said as such, with the file to create.
    missing = provd_check(make_engine(token=None))
    assert missing.status == "FAIL" and "no token configured" in missing.detail
    assert "/etc/wazo-ha/provd-token" in missing.fix


def cli(config, *argv, stdin=None):
    import subprocess
    import sys

    command = [sys.executable, "-m", "wazo_ha_core.cli.main", *argv, "--config", str(config)]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, input=stdin)


def write_config(path, tree):
    path.write_text(json.dumps(tree))
    path.chmod(0o600)
    return path


def test_config_set_with_provd_down_says_what_to_do(make_engine, tmp_path, sandbox):
    """Quick start step 2 with the defaults on a node where provd does not answer: the one error line says
    where the token goes and how to turn the provisioner off; nothing changed."""
    config = write_config(
        tmp_path / "config.yml",
        {
            "root": str(sandbox),
            "local_addresses": ["10.0.0.1"],
            "plugins": {"device_provisioners": ["provd"], "replication": [], "file_sync": [], "health_probes": []},
            "plugin_config": {"provd": {"url": "http://127.0.0.1:9/provd", "timeout": 2}},
            "sip_expiry": {"enabled": False},
            "slave_db": {"enabled": False},
            "schedules": {"enabled": False},
        },
    )
    make_engine()  # migrates the store in the sandbox
    result = cli(config, "config", "set", "node_type=master", "remote_address=10.0.0.2")
    assert result.returncode == 1, result
    error = [line for line in result.stderr.splitlines() if line.startswith("wazo-ha:")]
    assert len(error) == 1 and "127.0.0.1:9" in error[0] and "Connection refused" in error[0], result.stderr
    assert "/etc/wazo-ha/provd-token" in error[0] and "device_provisioners: []" in error[0]
    assert not (sandbox / "etc/xivo/ha.conf").exists()


def test_devices_resync_without_provisioner_is_a_clear_no_op(make_engine, tmp_path, sandbox):
    config = write_config(tmp_path / "config.yml", {"root": str(sandbox), "plugins": {"device_provisioners": []}})
    make_engine()
    result = cli(config, "devices", "resync")
    assert result.returncode == 0, result.stderr
    assert "no provisioner configured" in result.stdout and "nothing to resync" in result.stdout
    as_json = json.loads(cli(config, "devices", "resync", "--json").stdout)
    assert as_json["outcome"] == "skipped" and as_json["devices"] == 0
