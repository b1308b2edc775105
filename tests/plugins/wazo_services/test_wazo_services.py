"""wazo_services driving a real monit that supervises the SIP stand-in (sipp answering OPTIONS).

The commands are the test settings' argument lists: ``monit -c <rc> start standin``
to take over, ``… stop standin`` to give back, and a status script that checks
the stand-in's PID — the same shape as a production node's ``wazo-service`` lines.
"""

from __future__ import annotations

import os
import signal
import socket

import pytest

from tests.rig.monit import SERVICE, Monit
from tests.rig.plugin_loading import load_plugin
from tests.rig.waiting import wait_for
from wazo_ha_core import PluginError, PluginLoadError

ADDRESS, PORT = "127.0.0.1", 15080


@pytest.fixture(scope="module")
def monit(tmp_path_factory):
    monit = Monit.start(tmp_path_factory.mktemp("monit"), ADDRESS, PORT)
    yield monit
    monit.stop()


@pytest.fixture
def marker(tmp_path):
    return tmp_path / "ran"


def manager(monit, marker=None, **overrides):
    touch = [["touch", str(marker)]] if marker else []
    config = {
        "status_commands": [monit.status_command],
        "start_commands": [monit.command("start", SERVICE), *touch],
        "stop_commands": [monit.command("stop", SERVICE), *touch],
        "active_calls_command": None,
        "settle": 15,
        **overrides,
    }
    return load_plugin("service_managers", "wazo_services", config)


def sip_answers() -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.connect((ADDRESS, PORT))
        local = sock.getsockname()
        request = (
            f"OPTIONS sip:{ADDRESS}:{PORT} SIP/2.0\r\nVia: SIP/2.0/UDP {local[0]}:{local[1]};branch=z9hG4bKt1\r\n"
            f"From: <sip:t@{local[0]}>;tag=1\r\nTo: <sip:{ADDRESS}>\r\nCall-ID: t1@x\r\nCSeq: 1 OPTIONS\r\n"
            "Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        )
        try:
            sock.send(request.encode())
            return sock.recv(4096).startswith(b"SIP/2.0 200")
        except OSError:
            return False


@pytest.fixture
def stopped(monit):
    manager(monit).stop()
    assert not monit.standin_running()
    yield
    manager(monit).stop()


def test_take_over_starts_the_stand_in_through_monit_and_it_answers_sip(monit, stopped):
    services = manager(monit)
    assert services.status().active is False
    services.start()
    assert monit.standin_running()  # start returns only once the status checks pass
    wait_for(sip_answers, 5, "the stand-in answering OPTIONS")
    assert services.status().active is True
    assert "standin" in monit.cli("summary").stdout


def test_take_over_twice_acts_once(monit, stopped, marker):
    manager(monit, marker).start()
    assert marker.exists()
    marker.unlink()
    pid = monit.standin_pid()
    manager(monit, marker).start()
    assert not marker.exists(), "the second take over ran its commands again"
    assert monit.standin_pid() == pid


def test_give_back_stops_it_and_twice_acts_once(monit, stopped, marker):
    manager(monit).start()
    manager(monit, marker).stop()
    assert marker.exists() and not monit.standin_running()
    assert manager(monit).status().active is False
    marker.unlink()
    manager(monit, marker).stop()
    assert not marker.exists(), "the second give back ran its commands again"


def test_monit_supervises_the_stand_in_after_take_over(monit, stopped):
    manager(monit).start()
    os.kill(monit.standin_pid(), signal.SIGKILL)  # the stand-in monit started for this test
    wait_for(monit.standin_running, 20, "monit restarting the killed stand-in")


def test_failing_step_is_named_and_stops_the_sequence(monit, stopped, marker):
    services = manager(monit, start_commands=[monit.command("start", SERVICE), ["false"], ["touch", str(marker)]])
    with pytest.raises(PluginError, match=r"wazo_services take over: step 2/3: `false` failed: exit 1"):
        services.start()
    assert not marker.exists()


def test_missing_program_is_named(monit, stopped):
    services = manager(monit, start_commands=[["wazo-no-such-tool", "start"]])
    with pytest.raises(PluginError, match=r"step 1/1: `wazo-no-such-tool start` failed: 'wazo-no-such-tool' not found"):
        services.start()


def test_ignored_failure_does_not_stop_the_sequence(monit, stopped):
    services = manager(
        monit, start_commands=[{"command": ["false"], "ignore_failure": True}, monit.command("start", SERVICE)]
    )
    services.start()
    assert monit.standin_running()


def test_start_that_starts_nothing_fails_after_settle(monit, stopped):
    services = manager(monit, start_commands=[["true"]], settle=0.5)
    with pytest.raises(PluginError, match=r"after 0.5 s these checks still fail: .*standin-status"):
        services.start()


def test_arguments_are_never_given_to_a_shell(monit, stopped, tmp_path):
    witness = tmp_path / "pwned"
    services = manager(monit, start_commands=[["echo", f"; touch {witness}"], monit.command("start", SERVICE)])
    services.start()
    assert not witness.exists()


def test_active_calls_are_read_from_the_command_output(monit):
    assert manager(monit, active_calls_command=["echo", "2 active calls\n7 calls processed"]).active_calls() == 2
    assert manager(monit, active_calls_command=["false"]).active_calls() is None
    assert manager(monit, active_calls_command=["no-such-asterisk"]).active_calls() is None


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("status_commands", ["monit status"], r"status_commands\[0\] must be an argument list.*'monit status'"),
        ("start_commands", "monit start all", r"start_commands must be a list of commands, got 'monit start all'"),
        ("stop_commands", [{"command": ["x"], "ignore": 1}], r"stop_commands\[0\]: unknown key\(s\) \['ignore'\]"),
        ("settle", -1, r"settle must be a number of seconds >= 0, got -1"),
    ],
)
def test_bad_settings_name_the_key_and_value(monit, key, value, message):
    with pytest.raises(PluginLoadError, match=message):
        manager(monit, **{key: value})
