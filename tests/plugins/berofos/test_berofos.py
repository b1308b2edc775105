"""berofos against a FAKE ``bnfos``: the bero*fos relay box cannot run here.

The fake is an executable that appends its argv (one JSON list per line) to a
file and exits with the code in ``$FAKE_BNFOS_EXIT`` (default 0), which is all
the plugin relies on: ``bnfos --set mode=N -f <section>`` per relay, exit 0 on
success, a message on stderr otherwise.
"""

from __future__ import annotations

import json
import os
import sys

import pytest

from tests.rig.plugin_loading import load_plugin
from wazo_ha_core import PluginError

FAKE_BNFOS = """#!{python}
import json, os, sys
with open({record!r}, "a") as handle:
    handle.write(json.dumps(sys.argv[1:]) + "\\n")
code = int(os.environ.get("FAKE_BNFOS_EXIT", "0"))
if code:
    print("bnfos: cannot reach the relay", file=sys.stderr)
sys.exit(code)
"""


@pytest.fixture
def rig(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    record = tmp_path / "argv.log"
    fake = tmp_path / "bin" / "bnfos"
    fake.parent.mkdir()
    fake.write_text(FAKE_BNFOS.format(python=sys.executable, record=str(record)))
    fake.chmod(0o755)

    class Rig:
        conf = root / "etc" / "bnfos.conf"

        def manager(self, **config):
            return load_plugin("service_managers", "berofos", {"bnfos": str(fake), **config}, root=str(root))

        def calls(self):
            if not record.exists():
                return []
            return [json.loads(line) for line in record.read_text().splitlines()]

        def write_conf(self, *sections):
            body = "".join(
                f"[{s}]\nmac=00:19:32:00:00:{i:02x}\nhost=192.0.2.{i}\nlogin=admin:s3cret\n"
                for i, s in enumerate(sections)
            )
            self.conf.write_text(body)
            self.conf.chmod(0o600)

    return Rig()


def test_take_over_switches_every_relay_to_this_node(rig):
    rig.write_conf("fos1", "fos2")
    rig.manager().start()
    assert rig.calls() == [["--set", "mode=0", "-f", "fos1"], ["--set", "mode=0", "-f", "fos2"]]


def test_give_back_switches_them_back_in_reverse_order(rig):
    rig.write_conf("fos1", "fos2")
    manager = rig.manager()
    manager.start()
    manager.stop()
    assert rig.calls()[2:] == [["--set", "mode=1", "-f", "fos2"], ["--set", "mode=1", "-f", "fos1"]]
    assert manager.status().active is False


def test_second_take_over_talks_to_no_relay(rig):
    rig.write_conf("fos1")
    manager = rig.manager()
    manager.start()
    manager.start()
    assert len(rig.calls()) == 1
    assert manager.status().active is True


def test_no_config_file_means_nothing_to_do_even_without_bnfos(rig):
    manager = rig.manager(bnfos="no-such-bnfos")
    manager.start()
    manager.stop()
    assert rig.calls() == []
    assert manager.status().active is None


def test_config_without_the_program_is_a_clear_error(rig):
    rig.write_conf("fos1")
    with pytest.raises(PluginError, match=r"bnfos command 'no-such-bnfos' is not installed"):
        rig.manager(bnfos="no-such-bnfos").start()


def test_failing_relay_is_named_and_the_password_is_not(rig, monkeypatch):
    rig.write_conf("fos1", "fos2")
    monkeypatch.setenv("FAKE_BNFOS_EXIT", "3")
    with pytest.raises(PluginError) as raised:
        rig.manager().start()
    message = str(raised.value)
    assert "relay [fos1]" in message and "exit 3: bnfos: cannot reach the relay" in message
    assert "s3cret" not in message
    assert len(rig.calls()) == 1  # stopped at the failing relay
    monkeypatch.setenv("FAKE_BNFOS_EXIT", "0")
    rig.manager().start()  # a retry switches what was not switched
    assert rig.calls()[-1] == ["--set", "mode=0", "-f", "fos2"]


def test_odd_section_names_stay_one_argument(rig):
    rig.write_conf("fos 1; rm -rf /")
    rig.manager().start()
    assert rig.calls() == [["--set", "mode=0", "-f", "fos 1; rm -rf /"]]


def test_broken_config_file_is_reported_without_its_content(rig):
    rig.conf.write_text("login=admin:s3cret\n[fos1\n")
    with pytest.raises(PluginError, match="not a valid INI file") as raised:
        rig.manager().start()
    assert "s3cret" not in str(raised.value)


def test_world_readable_config_is_warned_about(rig, caplog):
    rig.write_conf("fos1")
    os.chmod(rig.conf, 0o644)
    rig.manager().start()
    assert "readable by everyone" in caplog.text
