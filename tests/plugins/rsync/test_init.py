"""``init``: the key, its restricted line on the slave, the pinned host key; idempotent; rotation."""

from __future__ import annotations

import os
import stat

import pytest

from wazo_ha_core import PluginError

from .conftest import PEER


def our_lines(pair) -> list[str]:
    return [line for line in pair.sshd.authorized_keys.read_text().splitlines() if "wazo-ha-file-sync" in line]


def test_init_installs_a_restricted_key_and_pins_the_host_key(pair):
    pair.sshd.authorized_keys.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherAdminKeyKeptAsIs admin@site\n")
    pair.pin()
    result = pair.plugin().init(PEER)

    assert result.outcome == "synced"
    assert stat.S_IMODE(os.stat(pair.key_file).st_mode) == 0o600
    key_type, blob = pair.key_file.with_name(pair.key_file.name + ".pub").read_text().split()[:2]
    assert key_type == "ssh-ed25519"
    lines = pair.sshd.authorized_keys.read_text().splitlines()
    assert lines[0].endswith("admin@site"), "an existing key line must be kept"
    [line] = our_lines(pair)
    assert line.startswith('from="127.0.0.1",restrict,command="/usr/bin/python3 -I -S ')
    assert f"--root {pair.slave} " in line and "--allow /etc/xivo/asterisk " in line
    assert "--allow-tree /var/lib/wazo/sounds/tenants --protect monitor --protect recording" in line
    assert f" {key_type} {blob} " in line
    host_type, host_blob = pair.sshd.host_public_key
    assert pair.known_hosts.read_text() == f"[{PEER}]:{pair.sshd.port} {host_type} {host_blob}\n"


def test_init_again_changes_nothing(pair):
    pair.pin()
    pair.plugin().init(PEER)
    key_before = pair.key_file.read_bytes()
    keys_before = pair.sshd.authorized_keys.read_text()
    pins_before = pair.known_hosts.read_text()

    result = pair.plugin().init(PEER)

    assert result.outcome == "skipped", result.message
    assert pair.key_file.read_bytes() == key_before
    assert pair.sshd.authorized_keys.read_text() == keys_before
    assert len(our_lines(pair)) == 1
    assert pair.known_hosts.read_text() == pins_before


def test_rotate_replaces_the_key_on_both_sides(pair):
    pair.pin()
    pair.plugin().init(PEER)
    old_key = pair.tmp / "old_key"
    old_key.write_bytes(pair.key_file.read_bytes())
    old_key.chmod(0o600)
    old_blob = pair.key_file.with_name(pair.key_file.name + ".pub").read_text().split()[1]

    pair.plugin().init(PEER, rotate=True)

    new_blob = pair.key_file.with_name(pair.key_file.name + ".pub").read_text().split()[1]
    assert new_blob != old_blob
    [line] = our_lines(pair)
    assert new_blob in line and old_blob not in pair.sshd.authorized_keys.read_text()
    refused = pair.ssh("rsync", "--server", key=old_key)
    assert "Permission denied (publickey" in refused.stderr
    accepted = pair.ssh("id")
    assert "wazo-ha-rsync-receiver: refused" in accepted.stderr, "the new key must authenticate"


def test_init_refuses_a_changed_host_key(pair):
    pair.pin()
    pair.plugin().init(PEER)
    pair.sshd.kill()
    pair.sshd.new_host_key()
    pair.sshd.run()

    with pytest.raises(PluginError, match=r"host key of the slave 127\.0\.0\.1 does not match"):
        pair.plugin().init(PEER, rotate=True)
    assert pair.sshd.host_public_key[1] not in pair.known_hosts.read_text()


def test_wrong_password_is_a_clear_error_and_installs_nothing(pair, monkeypatch):
    monkeypatch.setenv("WAZO_HA_TEST_SLAVE_PASSWORD", "not-the-password")
    pair.pin()
    pins = pair.known_hosts.read_text()
    with pytest.raises(PluginError, match="refused the password of root"):
        pair.plugin().init(PEER)
    assert pair.sshd.authorized_keys.read_text() == ""
    assert pair.known_hosts.read_text() == pins
    assert not pair.key_file.exists(), "no sync key is made before the slave accepted the password"


def test_a_password_file_readable_by_others_is_refused(pair):
    password_file = pair.tmp / "password"
    password_file.write_text("whatever\n")
    password_file.chmod(0o644)
    pair.pin()
    with pytest.raises(PluginError, match=r"password_file .* is readable by others \(mode 644\)"):
        pair.plugin(password_env=None, password_file=str(password_file)).init(PEER)
    assert "whatever" not in pair.sshd.authorized_keys.read_text()


def test_password_from_a_private_file_works(pair):
    from tests.rig.sshd import ROOT_PASSWORD

    password_file = pair.tmp / "password"
    password_file.write_text(ROOT_PASSWORD + "\n")
    password_file.chmod(0o600)
    pair.pin()
    assert pair.plugin(password_env=None, password_file=str(password_file)).init(PEER).outcome == "synced"
