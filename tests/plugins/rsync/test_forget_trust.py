"""Disabling HA (or switching role) removes the sync key relationship; a failed edit puts it back.

The slave is modelled as a node of its own: an engine whose settings ``root`` is
the slave sandbox, with the plugin's default slave-side paths
(``/root/.ssh/authorized_keys``, ``/usr/local/libexec/wazo-ha/rsync-receiver``)
resolved under it. The master installs its key there through the real sshd,
whose ``AuthorizedKeysFile`` is linked to that file, so sshd itself says
whether the key still opens the slave.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wazo_ha_core import EditError, HAEngine, HASettings, NotInitialised, Settings
from wazo_ha_core.settings import PLUGIN_NAMESPACES, deep_merge

from .conftest import PEER, Pair, write

REFUSED = "wazo-ha-rsync-receiver: refused"
AUTHORIZED_KEYS = "/root/.ssh/authorized_keys"
RECEIVER = "/usr/local/libexec/wazo-ha/rsync-receiver"
#: Other people's lines, kept byte for byte: CRLF, trailing blanks, a comment mentioning our comment.
OTHER_LINES = (
    b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherAdminKeyKeptAsIs admin@site\r\n"
    b"# wazo-ha-file-sync was installed below  \n"
    b'from="10.9.9.9" ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDx backup@site   \n'
)
#: Only the file-sync plugin; no configuration database, schedules activated with `true`.
NODE = {
    "plugins": {group: [] for group in PLUGIN_NAMESPACES} | {"file_sync": ["rsync"]},
    "local_addresses": ["10.0.0.1"],
    "sip_expiry": {"enabled": False},
    "slave_db": {"enabled": False},
    "schedules": {"systemctl": ["true"]},
}


@pytest.fixture
def linked(pair: Pair) -> Pair:
    """The pair, with the master's key installed into the slave node's own authorized_keys."""
    slave_keys = pair.slave / AUTHORIZED_KEYS.lstrip("/")
    slave_keys.parent.mkdir(parents=True, mode=0o700)
    slave_keys.write_bytes(OTHER_LINES)
    os.chmod(slave_keys, 0o600)
    pair.sshd.authorized_keys.unlink()
    pair.sshd.authorized_keys.symlink_to(slave_keys)
    rsync = pair.tree["plugin_config"]["rsync"]
    rsync["authorized_keys_file"] = str(slave_keys)
    rsync["receiver_path"] = f"{pair.slave}{RECEIVER}"
    write(pair.master / "var/lib/asterisk/moh/a.wav", "a")
    pair.pin()
    pair.plugin().init(PEER)
    assert REFUSED in pair.ssh("id").stderr, "the key opens the slave (then the forced command refuses id)"
    return pair


def node_engine(pair: Pair, root: Path, node_type: str) -> HAEngine:
    """An engine for one node of the pair, in ``node_type``, with the plugin's own slave-side paths."""
    tree = deep_merge(pair.tree, NODE)
    tree["root"] = str(root)
    if root == pair.slave:
        tree["plugin_config"]["rsync"].update(authorized_keys_file=AUTHORIZED_KEYS, receiver_path=RECEIVER)
    engine = HAEngine(Settings.from_tree(tree))
    engine.store.upgrade()
    engine.store.write_ha_settings(HASettings(node_type, "10.0.0.2"))
    return engine


def our_line_removed(content: bytes) -> bytes:
    return b"".join(line for line in content.splitlines(keepends=True) if not line.endswith(b"wazo-ha-file-sync\n"))


@pytest.mark.parametrize("after", [{"node_type": "disabled"}, {"node_type": "master", "remote_address": "10.0.0.2"}])
def test_leaving_the_slave_role_removes_the_key_and_the_receiver(linked, after):
    pair = linked
    slave_keys = pair.slave / AUTHORIZED_KEYS.lstrip("/")
    receiver = pair.slave / RECEIVER.lstrip("/")
    before = slave_keys.read_bytes()
    assert receiver.exists() and b"wazo-ha-file-sync\n" in before
    engine = node_engine(pair, pair.slave, "slave")

    engine.update_ha(after)

    assert slave_keys.read_bytes() == our_line_removed(before)
    assert OTHER_LINES in slave_keys.read_bytes()
    assert stat.S_IMODE(slave_keys.stat().st_mode) == 0o600
    assert not receiver.exists()
    refused = pair.ssh("id")
    assert "Permission denied (publickey" in refused.stderr, refused.stderr
    assert REFUSED not in refused.stderr
    [event] = engine.store.events(limit=1)
    assert "file sync trust rsync" in event.figures["steps"]

    engine.update_ha({"node_type": "disabled"})  # again (or from master): nothing left to remove
    assert slave_keys.read_bytes() == our_line_removed(before)


def test_a_later_step_failing_puts_the_key_and_the_receiver_back(linked):
    pair = linked
    slave_keys = pair.slave / AUTHORIZED_KEYS.lstrip("/")
    receiver = pair.slave / RECEIVER.lstrip("/")
    keys_before, receiver_before = slave_keys.read_bytes(), receiver.read_bytes()
    engine = node_engine(pair, pair.slave, "slave")
    # The compatibility files step cannot write ha.conf where a directory stands.
    (pair.slave / "etc/xivo/ha.conf").mkdir(parents=True)

    with pytest.raises(EditError, match="compatibility files") as failed:
        engine.update_ha({"node_type": "disabled"})

    assert failed.value.step == "compatibility files" and failed.value.undo_failures == []
    assert slave_keys.read_bytes() == keys_before
    assert receiver.read_bytes() == receiver_before
    assert stat.S_IMODE(receiver.stat().st_mode) == 0o755
    assert engine.get_ha()["node_type"] == "slave"
    [event] = engine.store.events(limit=1)
    assert event.outcome == "failed" and "file sync trust rsync" in event.figures["steps"]
    assert REFUSED in pair.ssh("id").stderr, "the key opens the slave again"
    result = pair.plugin().sync(PEER, ["/var/lib/asterisk/moh"])
    assert result.figures["rsync_exit"] == 0 and (pair.slave / "var/lib/asterisk/moh/a.wav").read_text() == "a"


@pytest.mark.parametrize("after", [{"node_type": "disabled"}, {"node_type": "slave", "remote_address": "10.0.0.2"}])
def test_leaving_the_master_role_removes_the_key_pair_and_the_pin(linked, after):
    pair = linked
    other_pin = b"[10.7.7.7]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherSlavePinKeptAsIs\n"
    pair.known_hosts.write_bytes(other_pin + pair.known_hosts.read_bytes())
    engine = node_engine(pair, pair.master, "master")
    engine.store.write_ha_settings(HASettings("master", PEER))

    engine.update_ha(after)

    assert not pair.key_file.exists()
    assert not pair.key_file.with_name(pair.key_file.name + ".pub").exists()
    assert pair.known_hosts.read_bytes() == other_pin
    with pytest.raises(NotInitialised, match="run `wazo-ha sync init` first"):
        pair.plugin().sync(PEER, ["/var/lib/asterisk/moh"])


def test_a_symlinked_authorized_keys_stays_a_link_and_loses_our_line(linked):
    pair = linked
    slave_keys = pair.slave / AUTHORIZED_KEYS.lstrip("/")
    target = pair.slave / "etc/ssh/authorized/root"
    target.parent.mkdir(parents=True)
    os.replace(slave_keys, target)
    slave_keys.symlink_to("../../etc/ssh/authorized/root")
    before = target.read_bytes()
    engine = node_engine(pair, pair.slave, "slave")

    engine.update_ha({"node_type": "disabled"})

    assert os.readlink(slave_keys) == "../../etc/ssh/authorized/root"
    assert target.read_bytes() == our_line_removed(before) == OTHER_LINES
    assert "Permission denied (publickey" in pair.ssh("id").stderr
