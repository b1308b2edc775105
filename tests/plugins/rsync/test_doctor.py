"""wazo-ha doctor, the rsync plugin's checks against a real sshd: TCP 22 (the rig's port), the key, its restriction."""

from __future__ import annotations

import os
import re

from wazo_ha_core.doctor import FAIL, PASS, run_checks

from .conftest import PEER


def reports(pair) -> dict:
    checks = pair.plugin().doctor_checks("master", PEER)
    return {report.name: report for report in run_checks(checks, default_timeout=30)}


def test_before_init_the_key_fails_with_the_init_fix(pair):
    found = reports(pair)
    tcp = found[f"master → slave TCP {pair.sshd.port}"]
    assert tcp.status == PASS, tcp.detail
    assert found["ssh key"].status == FAIL and "wazo-ha sync init" in found["ssh key"].fix
    assert found["ssh key restricted"].status == FAIL


def test_after_init_everything_passes_then_a_loose_mode_fails(pair):
    pair.pin()
    pair.plugin().init(PEER)
    found = reports(pair)
    assert {name: r.status for name, r in found.items()} == dict.fromkeys(found, PASS), found
    assert "refused by the slave's forced command" in found["ssh key restricted"].detail

    os.chmod(pair.key_file, 0o644)
    key = reports(pair)["ssh key"]
    assert key.status == FAIL and "0644" in key.detail and key.fix == f"chmod 600 {pair.key_file}"


def test_an_unrestricted_key_line_on_the_slave_fails(pair):
    pair.pin()
    pair.plugin().init(PEER)
    # What an admin "fixing" sync by hand might do: the options stripped from our line.
    text = pair.sshd.authorized_keys.read_text()
    pair.sshd.authorized_keys.write_text(re.sub(r'^from="[^"]*",restrict,command="[^"]*" ', "", text, flags=re.M))
    restricted = reports(pair)["ssh key restricted"]
    assert restricted.status == FAIL
    assert "runs any command on the slave" in restricted.detail and "--rotate" in restricted.fix


def test_a_closed_ssh_port_fails(pair):
    pair.sshd.kill()
    found = reports(pair)
    assert found[f"master → slave TCP {pair.sshd.port}"].status == FAIL


def test_no_checks_on_a_slave(pair):
    assert pair.plugin().doctor_checks("slave", PEER) == []
