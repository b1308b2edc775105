"""wazo-ha doctor, the core: the runner's bounds, TCP on loopback, schedules, plugins, the command."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from wazo_ha_core import Check, CheckResult, FunctionCheck, TcpCheck
from wazo_ha_core.cli import doctor as doctor_cli
from wazo_ha_core.cli.common import UsageError
from wazo_ha_core.config import HASettings
from wazo_ha_core.doctor import FAIL, PASS, WARN, run_checks, worst
from wazo_ha_core.doctor_checks import doctor_checks, plugins_loaded, schedules_installed
from wazo_ha_core.errors import ValidationError
from wazo_ha_core.schedules import Schedules

from . import sample_plugins
from .conftest import TEST_PLUGINS


def test_runner_keeps_order_and_bounds_a_hung_check():
    release = threading.Event()
    checks = [
        FunctionCheck("hangs", lambda: release.wait(30) and CheckResult.passed("late"), timeout=0.3),
        FunctionCheck("fine", lambda: CheckResult.passed("ok")),
    ]
    try:
        reports = run_checks(checks, default_timeout=5)
    finally:
        release.set()
    assert [r.name for r in reports] == ["hangs", "fine"]
    assert reports[0].status == FAIL and "no answer within 0.3 s" in reports[0].detail
    assert reports[1].status == PASS


def test_runner_turns_a_raising_or_bad_check_into_fail():
    def boom():
        raise RuntimeError("kaput")

    reports = run_checks([FunctionCheck("raises", boom), FunctionCheck("bad", lambda: "yes")], default_timeout=5)
    assert reports[0].status == FAIL and "RuntimeError: kaput" in reports[0].detail
    assert reports[1].status == FAIL and "'yes'" in reports[1].detail


def test_worst():
    reports = run_checks(
        [FunctionCheck("a", lambda: CheckResult.passed("x")), FunctionCheck("b", lambda: CheckResult.warn("y", "z"))],
        5,
    )
    assert worst(reports) == WARN
    assert worst(reports[:1]) == PASS


@pytest.fixture
def listener():
    server = socket.create_server(("127.0.0.1", 0))
    yield server.getsockname()[1]
    server.close()


def test_tcp_check_passes_on_a_listener_and_fails_once_closed(listener):
    assert TcpCheck("t", "127.0.0.1", listener, 2, "open it").run().status == PASS
    closed = socket.create_server(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    result = TcpCheck("t", "127.0.0.1", port, 2, "open it").run()
    assert result.status == FAIL and f"127.0.0.1:{port}" in result.detail and result.fix == "open it"


def test_schedules_pass_when_written_fail_when_missing_warn_when_edited(make_engine):
    engine = make_engine()
    master = HASettings("master", "10.0.0.2")
    missing = schedules_installed(engine.settings, master)
    assert missing.status == FAIL and "xivo-ha-master" in missing.detail and "node_type=master" in missing.fix
    files, _ = Schedules(engine.settings).wanted(master)
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    assert schedules_installed(engine.settings, master).status == PASS
    next(iter(files)).write_text("* * * * * root something else\n")
    assert schedules_installed(engine.settings, master).status == WARN


def test_plugins_loaded_fails_naming_a_missing_plugin(make_engine):
    engine = make_engine(plugins={"service_managers": ["recording_services", "nowhere"]})
    result = plugins_loaded(engine)
    assert result.status == FAIL and "service_managers/nowhere: not installed" in result.detail
    engine = make_engine(plugins={"service_managers": ["recording_services"]})
    result = plugins_loaded(engine)
    assert result.status == PASS and "service_managers/recording_services" in result.detail


class CheckingServices(sample_plugins.RecordingServices):
    """Offers one check per role it is asked about, to prove the doctor asks with the right role and peer."""

    def doctor_checks(self, node_type, peer):
        return [FunctionCheck("seen", lambda: CheckResult.passed(f"{node_type} {peer}"))]


@pytest.fixture
def checking_plugin():
    TEST_PLUGINS["checking_services"] = CheckingServices
    yield
    del TEST_PLUGINS["checking_services"]


def test_plugin_checks_are_asked_with_role_and_peer_and_prefixed(make_engine, checking_plugin):
    engine = make_engine(plugins={"service_managers": ["checking_services"]})
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    names = [check.name for check in doctor_checks(engine)]
    assert "checking_services: seen" in names
    reports = {report.name: report for report in engine.doctor()}
    assert reports["checking_services: seen"].detail == "master 10.0.0.2"


class ServiceProbe(sample_plugins.AlwaysUpProbe):
    checks = "service"  # what a failure means to the watch: not to be confused with the doctor's checks


@pytest.fixture
def service_probe():
    TEST_PLUGINS["service_probe"] = ServiceProbe
    yield
    del TEST_PLUGINS["service_probe"]


def test_a_health_probe_offers_no_broken_doctor_checks(make_engine, service_probe):
    engine = make_engine(plugins={"health_probes": ["service_probe"]})
    engine.store.write_ha_settings(HASettings("slave", "10.0.0.2"))
    reports = engine.doctor()
    assert not [report for report in reports if report.name.startswith("service_probe:")]
    assert reports  # the core's checks still ran


def test_disabled_node_warns_and_checks_only_plugins(make_engine):
    engine = make_engine()
    names = [check.name for check in doctor_checks(engine)]
    assert names == ["plugins loaded", "HA enabled"]


class Args:
    json = False


def test_command_exits_1_on_fail_0_on_warn_and_prints_json(make_engine, capsys, checking_plugin):
    engine = make_engine()  # disabled: a WARN only
    assert doctor_cli.cmd_doctor(Args(), engine) == 0
    out = capsys.readouterr().out
    assert (
        "WARN  HA enabled" in out
        and "fix: check first with `wazo-ha doctor --as" in out
        and "WARN: 1 passed, 1 warned" in out
    )
    engine = make_engine(plugins={"service_managers": ["nowhere"]})
    args = Args()
    args.json = True
    assert doctor_cli.cmd_doctor(args, engine) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["verdict"] == "FAIL"
    assert {"name", "status", "detail", "fix", "duration"} <= set(data["checks"][0])
    assert data["checks"][0]["status"] == "FAIL"


class Abstract(Check):
    pass


def test_check_requires_run():
    with pytest.raises(TypeError):
        Abstract()


# --- preflight: doctor --as ROLE --peer ADDRESS before enabling -----------------------------


def closed_port() -> int:
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    server.close()
    return port


def preflight_engine(make_engine, **tree):
    return make_engine(
        config_db={"url": f"postgresql://postgres@127.0.0.1:{closed_port()}/asterisk"},
        schedules={"systemctl": ["true"], "command": "/nonexistent/bin/wazo-ha"},
        **tree,
    )


def test_the_disabled_node_fix_never_names_one_role_only(make_engine):
    [_, enabled] = make_engine().doctor()
    assert enabled.status == WARN
    assert "node_type=master remote_address=<slave>` on the master" in enabled.fix
    assert "node_type=slave remote_address=<master>` on the slave" in enabled.fix
    assert "doctor --as slave --peer <master>" in enabled.fix


def test_preflight_as_slave_checks_what_enabling_needs(make_engine):
    engine = preflight_engine(make_engine)
    reports = {report.name: report for report in engine.doctor(HASettings("slave", "10.0.0.2"))}
    assert "HA enabled" not in reports and "schedules installed" not in reports  # enabling writes them
    assert reports["configuration database"].status == FAIL
    assert "cannot read" in reports["configuration database"].detail
    command = reports["schedules command"]
    assert (
        command.status == FAIL and "/nonexistent/bin/wazo-ha" in command.detail and "schedules.command" in command.fix
    )
    systemctl = reports["systemctl"]  # the slave's watch is a systemd unit; `true` enables nothing
    assert systemctl.status == WARN and "not systemd's systemctl" in systemctl.detail
    assert "wazo-ha-watch.service" in systemctl.detail
    assert reports["witnesses"].status == WARN and "watch.witnesses is empty" in reports["witnesses"].detail
    assert engine.current_settings().node_type == "disabled"  # a preflight changes nothing
    assert engine.store.events() == []


def test_preflight_as_master_asks_the_plugins_as_master(make_engine, checking_plugin):
    engine = preflight_engine(make_engine, plugins={"service_managers": ["checking_services"]})
    reports = {report.name: report for report in engine.doctor(HASettings("master", "10.0.0.2"))}
    assert reports["checking_services: seen"].detail == "master 10.0.0.2"
    assert "witnesses" not in reports and "slave database UTF-8" not in reports
    # The master's default schedules are cron, but its follower is a unit; `true` enables nothing.
    assert reports["systemctl"].status == WARN and "wazo-ha-follow.service" in reports["systemctl"].detail


def test_preflight_refuses_a_bad_peer_naming_it(make_engine):
    engine = preflight_engine(make_engine)
    with pytest.raises(ValidationError, match="remote_address"):
        engine.doctor(HASettings("slave", "10.0.0.2;reboot"))


def test_preflight_command_line_needs_as_and_peer_together(make_engine):
    engine = preflight_engine(make_engine)
    args = Args()
    args.planned_role, args.peer = "slave", None
    with pytest.raises(UsageError, match="--as and --peer go together"):
        doctor_cli.cmd_doctor(args, engine)


def test_installed_units_with_a_stub_systemctl_are_not_reported_enabled(make_engine):
    engine = make_engine(schedules={"systemctl": ["true"], "kind": "systemd"})
    master = HASettings("master", "10.0.0.2")
    files, units = Schedules(engine.settings).wanted(master)
    assert units
    for path, content in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    result = schedules_installed(engine.settings, master)
    assert "enabled by wazo-ha" not in result.detail and "not enabled" in result.detail


def test_an_enabled_node_whose_schedules_run_a_missing_command_fails(make_engine, sandbox):
    """A virtualenv install: the cron file runs /usr/bin/wazo-ha, which is not there (issue 16, item 1)."""
    engine = make_engine(schedules={"systemctl": ["true"], "command": str(sandbox / "nowhere/wazo-ha")})
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    reports = {report.name: report for report in engine.doctor()}
    assert reports["schedules command"].status == FAIL and "nowhere/wazo-ha" in reports["schedules command"].detail
    assert "schedules installed" in reports  # beside it, not instead of it
