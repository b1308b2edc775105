"""A PUT that takes time, a second PUT meanwhile, and an edit step that fails."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from wazo_ha_core.settings import PLUGIN_NAMESPACES
from wazo_ha_rig.waiting import wait_for

from .conftest import ADMIN

GATE = Path(__file__).with_name("gate.py")
MASTER = {"node_type": "master", "remote_address": "10.0.0.2"}
SLAVE = {"node_type": "slave", "remote_address": "10.0.0.2"}


def release(gate: Path) -> None:
    """Let every gate.py go; never blocks, also when no gate waits any more (it was killed on a timeout)."""
    (gate / "released").touch()
    try:
        os.close(os.open(gate / "release", os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # ENXIO: nobody reads the FIFO
        pass


def test_second_put_while_an_edit_runs_is_refused_at_once(make_node, start_confd, tmp_path):
    gate = tmp_path / "gate"
    gate.mkdir()
    os.mkfifo(gate / "release")
    # systemd schedules: the edit calls "systemctl", here a gate held shut until the test opens it.
    node = make_node(schedules={"kind": "systemd", "systemctl": [sys.executable, str(GATE), str(gate)]})
    confd = start_confd(node)
    first: dict[str, object] = {}
    editing = threading.Thread(target=lambda: first.update(answer=confd.request("PUT", "/1.1/ha", MASTER)))
    editing.start()
    try:
        wait_for(lambda: (gate / "entered").exists(), timeout=30, what="the first edit reaches systemctl")

        status, answer = confd.request("PUT", "/1.1/ha", SLAVE)
        assert status == 409
        assert answer == [
            "Conflict: an HA settings edit is already in progress on this node; retry when it has finished"
        ]
        # Reads are not blocked by the edit: they show the settings still in force.
        assert confd.request("GET", "/1.1/ha") == (200, {"node_type": "disabled", "remote_address": ""})
        assert confd.request("GET", "/1.1/ha/status", token=ADMIN)[0] == 200
    finally:
        release(gate)
        editing.join(timeout=60)

    assert first["answer"] == (204, None)
    assert confd.request("GET", "/1.1/ha") == (200, MASTER)
    assert confd.bus.names() == ["ha_edited"]  # the refused PUT published nothing
    # Once the first edit is done, the next one goes through.
    assert confd.request("PUT", "/1.1/ha", SLAVE) == (204, None)
    assert confd.bus.names() == ["ha_edited", "ha_edited"]


def test_put_while_the_cli_edits_is_refused_with_409(make_node, start_confd, tmp_path):
    """The one-edit rule holds across processes: ``wazo-ha config set`` and confd share the node's edit lock."""
    gate = tmp_path / "gate"
    gate.mkdir()
    os.mkfifo(gate / "release")
    node = make_node(schedules={"kind": "systemd", "systemctl": [sys.executable, str(GATE), str(gate)]})
    confd = start_confd(node)
    wazo_ha = str(Path(sys.executable).with_name("wazo-ha"))
    cli = subprocess.Popen(
        [wazo_ha, "--config", str(node.config_file), "config", "set", "node_type=master", "remote_address=10.0.0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: (gate / "entered").exists(), timeout=30, what="the CLI's edit reaches systemctl")
        status, answer = confd.request("PUT", "/1.1/ha", SLAVE)
        assert status == 409
        assert answer[0].startswith("Conflict: an HA settings edit is already in progress")
    finally:
        release(gate)
        _, err = cli.communicate(timeout=60)
    assert cli.returncode == 0, err
    assert confd.request("GET", "/1.1/ha") == (200, MASTER)
    assert confd.bus.names() == []  # the refused PUT published nothing; the CLI's edit is not confd's


def test_taking_a_serving_slave_out_of_its_role_is_a_409_and_changes_nothing(make_node, start_confd):
    # The real wazo_services manager, its status command saying telephony runs (the slave took over).
    node = make_node(
        plugins={**{group: [] for group in PLUGIN_NAMESPACES}, "service_managers": ["wazo_services"]},
        plugin_config={
            "wazo_services": {"status_commands": [["true"]], "stop_commands": [["false"]], "active_calls_command": None}
        },
    )
    confd = start_confd(node)
    assert confd.request("PUT", "/1.1/ha", SLAVE) == (204, None)
    ha_conf = node.ha_conf.read_bytes()

    status, answer = confd.request("PUT", "/1.1/ha", {"node_type": "disabled"})

    assert status == 409
    assert answer[0].startswith("Conflict: this slave serves telephony")
    assert confd.request("GET", "/1.1/ha") == (200, SLAVE)
    assert node.ha_conf.read_bytes() == ha_conf
    assert confd.bus.names() == ["ha_edited"]  # only the first PUT's


def test_failing_step_is_undone_and_reported(make_node, start_confd):
    node = make_node()
    confd = start_confd(node)
    assert confd.request("PUT", "/1.1/ha", MASTER) == (204, None)
    cron_before = {path.name: path.read_text() for path in node.cron_dir.iterdir()}
    # A file where the role sentinels' directory should be: the compatibility-files step fails
    # after the schedules were rewritten for the slave role.
    sentinels = node.root / "var/lib/wazo"
    for sentinel in sentinels.iterdir():
        sentinel.unlink()
    sentinels.rmdir()
    sentinels.write_text("in the way\n")

    status, answer = confd.request("PUT", "/1.1/ha", SLAVE)

    assert status == 500
    assert len(answer) == 1
    assert answer[0].startswith("HA edit failed at step 'compatibility files': ")
    assert answer[0].endswith("; every earlier step was undone")
    assert confd.request("GET", "/1.1/ha") == (200, MASTER)
    assert json.loads(node.ha_conf.read_text()) == MASTER
    assert {path.name: path.read_text() for path in node.cron_dir.iterdir()} == cron_before
    assert confd.bus.names() == ["ha_edited"]  # only the first, successful edit
    assert confd.request("GET", "/1.1/ha/status")[1]["events"][0]["outcome"] == "failed"
