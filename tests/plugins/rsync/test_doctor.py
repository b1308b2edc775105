"""wazo-ha doctor, the rsync plugin's checks against a real sshd: TCP 22 (the rig's port), the key, its restriction."""

from __future__ import annotations

import logging
import os
import re

from tests.rig.plugin_loading import MemoryState
from wazo_ha_core import PluginContext, Settings
from wazo_ha_core.doctor import FAIL, PASS, WARN, run_checks
from wazo_ha_plugins.rsync import RsyncBackend

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


# --- the slave's sshd, for `sync init` (wazo_ha_plugins/rsync/sshd_checks.py) ----------------------------

MASTER = "10.203.9.2"  # only written into `sshd -T -C addr=…`: no packet goes there


def reconfigure(sshd, **options) -> None:
    """Rewrite options of the rig sshd's config (``PermitRootLogin="prohibit-password"``), then restart it."""
    lines = sshd.config.read_text().splitlines()
    for keyword, value in options.items():
        lines = [line for line in lines if not line.startswith(f"{keyword} ")] + [f"{keyword} {value}"]
    sshd.config.write_text("\n".join(lines) + "\n")
    sshd.kill()
    sshd.run()


def test_from_the_master_before_init_the_password_login_is_offered(pair):
    check = reports(pair)["slave sshd"]
    assert check.status == PASS, check
    assert "OpenSSH" in check.detail and "offers root: publickey,password" in check.detail.replace(", ", ",")
    assert "PermitRootLogin yes" in check.detail  # what cannot be seen from the master is said


def test_from_the_master_an_sshd_without_password_login_fails_with_the_drop_in(pair):
    reconfigure(pair.sshd, PasswordAuthentication="no")
    check = reports(pair)["slave sshd"]
    assert check.status == FAIL and "no password login" in check.detail
    assert "PermitRootLogin yes" in check.fix and "sshd_config.d/wazo-ha-sync-init.conf" in check.fix
    assert "Match Address 127.0.0.1" in check.fix  # the master's own address, as the slave sees it
    assert "prohibit-password" in check.fix  # and how to close it again afterwards
    # Once the key exists, the password is not needed any more: publickey is enough.
    pair.key_file.parent.mkdir(parents=True)
    pair.key_file.write_text("placeholder")
    check = reports(pair)["slave sshd"]
    assert check.status == PASS and "no password needed" in check.detail


def test_from_the_master_a_host_key_other_than_the_pinned_one_fails(pair):
    pair.pin()
    pair.sshd.new_host_key()
    pair.sshd.kill()
    pair.sshd.run()
    check = reports(pair)["slave sshd"]
    assert check.status == FAIL and "not the one pinned" in check.detail and "--replace" in check.fix


def slave_plugin(pair, **overrides) -> RsyncBackend:
    """The plugin as the slave node runs it: root `/`, so authorized_keys_file is the rig sshd's own file."""
    settings = Settings.from_tree({**pair.tree, "root": "/"})
    config = {**settings.plugin_config("rsync"), **overrides}
    context = PluginContext("rsync", "wazo_ha.file_sync", config, settings, MemoryState(), logging.getLogger("t"))
    return RsyncBackend(context)


def slave_check(pair, master: str = MASTER):
    plugin = slave_plugin(pair, sshd_test_command=["/usr/sbin/sshd", "-T", "-f", str(pair.sshd.config)])
    [check] = plugin.doctor_checks("slave", master)
    assert check.name == "sshd lets the master in"
    [report] = run_checks([check], default_timeout=30)
    return report


def test_on_the_slave_sshd_t_tells_permit_root_login(pair):
    assert slave_check(pair).status == PASS  # the rig: PermitRootLogin yes, PasswordAuthentication yes
    # Debian's default: the master's `sync init` could not log in with the password.
    reconfigure(pair.sshd, PermitRootLogin="prohibit-password")
    refused = slave_check(pair)
    assert refused.status == FAIL and "PermitRootLogin prohibit-password" in refused.detail
    assert f"Match Address {MASTER}" in refused.fix and "PermitRootLogin yes" in refused.fix


def test_on_the_slave_a_match_block_for_the_master_only_is_honoured(pair):
    pair.sshd.config.write_text(
        pair.sshd.config.read_text().replace("PermitRootLogin yes\n", "PermitRootLogin prohibit-password\n")
        + f"Match Address {MASTER}\n  PermitRootLogin yes\n"
    )
    assert slave_check(pair, MASTER).status == PASS
    assert slave_check(pair, "10.203.9.3").status == FAIL  # another master address: not opened


def test_on_the_slave_once_the_key_is_installed_prohibit_password_passes_and_yes_warns(pair):
    pair.pin()
    pair.plugin().init(PEER)  # installs our key line in the rig sshd's authorized_keys
    opened = slave_check(pair)
    assert opened.status == WARN and "still log in with a password" in opened.detail
    assert "prohibit-password" in opened.fix
    reconfigure(pair.sshd, PermitRootLogin="prohibit-password")
    assert slave_check(pair).status == PASS
    reconfigure(pair.sshd, PermitRootLogin="no")
    assert slave_check(pair).status == FAIL


def test_on_the_slave_no_sshd_fails_naming_the_package(pair):
    plugin = slave_plugin(pair, sshd_test_command=["/nonexistent/sshd", "-T"])
    [report] = run_checks(plugin.doctor_checks("slave", MASTER), default_timeout=30)
    assert report.status == FAIL and "openssh-server" in report.fix
