"""The authorized_keys line stays one line: a newline in a setting cannot split it (issue 11, item 6)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wazo_ha_core import PluginError
from wazo_ha_core.errors import SettingsError
from wazo_ha_plugins.rsync import trust

from .conftest import PEER, Pair, write

OTHER_ADMIN = b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherAdminKeyKeptAsIs admin@site\n"


def attempt_init(pair: Pair, **overrides):
    """init with the settings tree changed as in ``overrides``; the error, whoever raises it."""
    pair.pin()  # so that only the value can be what init refuses
    file_sync = overrides.pop("file_sync", None)
    if file_sync:
        pair.tree = {**pair.tree, "file_sync": file_sync}
    with pytest.raises((PluginError, SettingsError)) as refused:
        pair.plugin(**overrides).init(PEER)
    return str(refused.value)


def assert_nothing_reached_the_slave(pair: Pair) -> None:
    assert pair.sshd.authorized_keys.read_bytes() == OTHER_ADMIN
    assert not (pair.tmp / "slave-bin/rsync-receiver").exists()
    assert not pair.key_file.exists(), "no sync key is made for a refused init"


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"file_sync": {"tenant_sounds_excluded": ["recording\n"]}}, "'recording\\n'"),
        ({"file_sync": {"tenant_sounds_excluded": ["monitor", "x\nssh-ed25519 AAAA evil"]}}, "'x\\nssh-ed25519"),
        ({"file_sync": {"directories": ["/var/lib/asterisk/moh\n"]}}, "'/var/lib/asterisk/moh\\n'"),
        ({"from_addresses": ["127.0.0.1\n"]}, "from_addresses: '127.0.0.1\\n'"),
        ({"from_addresses": ["127.0.0.1,0.0.0.0/0"]}, "from_addresses: '127.0.0.1,0.0.0.0/0'"),
        ({"from_addresses": ['127.0.0.1",command="sh']}, "from_addresses:"),
        ({"from_addresses": ["*"]}, "from_addresses: '*'"),
        ({"from_addresses": ["slave.example.com"]}, "from_addresses: 'slave.example.com'"),
        ({"from_addresses": ["10.0.0.1/8"]}, "has host bits set"),
        ({"from_addresses": ["fe80::1%eth0\n"]}, "from_addresses:"),
        ({"from_addresses": [12]}, "from_addresses: 12 is not an IP address"),
    ],
    ids=[
        "excluded-newline",
        "excluded-second-key",
        "directory-newline",
        "from-newline",
        "from-comma",
        "from-quote",
        "from-wildcard",
        "from-hostname",
        "from-host-bits",
        "from-zone",
        "from-int",
    ],
)
def test_values_that_would_split_or_widen_the_key_line_are_refused_and_nothing_is_written(pair, overrides, named):
    pair.sshd.authorized_keys.write_bytes(OTHER_ADMIN)
    write(pair.master / "var/lib/asterisk/moh/a.wav", "a")

    message = attempt_init(pair, **overrides)

    assert named in message
    assert_nothing_reached_the_slave(pair)


def test_valid_addresses_and_networks_go_into_from(pair):
    pair.pin()
    pair.plugin(from_addresses=["127.0.0.1", "10.1.0.0/16", "::1"]).init(PEER)
    [line] = [line for line in pair.sshd.authorized_keys.read_text().splitlines() if trust.KEY_COMMENT in line]
    assert line.startswith('from="127.0.0.1,10.1.0.0/16,::1",restrict,command="')


text = st.text(max_size=40)
parts = {
    "key_type": st.one_of(st.just("ssh-ed25519"), text),
    "blob": st.one_of(st.just("AAAAC3NzaC1lZDI1NTE5AAAAIOtherAdminKeyKeptAsIs"), text),
    "from_addresses": st.lists(st.one_of(st.sampled_from(["127.0.0.1", "10.0.0.0/8", "::1"]), text), max_size=3),
    "command": st.one_of(st.just("/usr/bin/python3 -I -S /r --root /"), text),
}


@settings(max_examples=500)
@given(**parts)
def test_authorized_line_is_exactly_one_line_or_an_error(key_type, blob, from_addresses, command):
    try:
        line = trust.authorized_line(key_type, blob, from_addresses, command)
    except PluginError:
        return
    assert len(line.splitlines()) == 1 and not set(line) & {"\n", "\r", "\0"}
    assert line.count('"') == 4, "only our own quotes around from= and command="
    assert line.endswith(f" {key_type} {blob} {trust.KEY_COMMENT}")
    assert line.startswith('from="') and '",restrict,command="' in line


@given(st.lists(text, max_size=6))
def test_forced_command_words_are_checked_whole(words):
    try:
        command = trust.forced_command("/usr/bin/python3", "/r", "/", words, [], [])
    except PluginError:
        return
    assert trust.COMMAND.fullmatch(command)
