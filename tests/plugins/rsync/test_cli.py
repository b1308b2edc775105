"""``wazo-ha sync``, ``wazo-ha sync init`` and the legacy ``xivo-sync`` / ``wazo-sync``: roles, exit codes, journal."""

from __future__ import annotations

import io
import json

from wazo_ha_core.cli.main import main
from wazo_ha_core.cli.sync import legacy_main

from .conftest import write


def events(pair, kind):
    return [event for event in pair.engine().store.events(kind=kind, limit=50)]


def pin_through_cli(pair, capsys, monkeypatch) -> str:
    """``host-key show`` on the slave node, its output on ``host-key pin``'s stdin on the master."""
    assert main(["sync", "host-key", "show", "--config", str(pair.slave_node_config())]) == 0
    shown = capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(shown))
    assert main(["sync", "host-key", "pin", "--config", str(pair.config_file)]) == 0
    return capsys.readouterr().out


def test_not_a_master_is_an_error(pair, capsys):
    pair.engine("slave")
    assert main(["sync", "--config", str(pair.config_file)]) == 1
    assert "file sync runs on the master only; this node is 'slave'" in capsys.readouterr().err
    assert legacy_main(["--config", str(pair.config_file)]) == 1
    assert legacy_main(["-i", "--config", str(pair.config_file)]) == 1
    assert events(pair, "sync")[0].outcome == "refused"


def test_before_init_sync_says_so_and_exits_0_or_1_with_strict(pair, capsys):
    pair.engine("master")
    assert main(["sync", "--config", str(pair.config_file)]) == 0
    assert "run `wazo-ha sync init` first" in capsys.readouterr().err
    assert main(["sync", "--strict", "--config", str(pair.config_file)]) == 1
    assert legacy_main(["--config", str(pair.config_file)]) == 0, "today's wazo-sync exits 0 without a key"
    [latest, *_] = events(pair, "sync")
    assert latest.outcome == "skipped" and "sync init" in latest.message


def test_init_then_sync_then_json_report_and_journal(pair, capsys, monkeypatch):
    write(pair.master / "etc/xivo/asterisk/a.conf", "a")
    pair.engine("master")
    assert "rsync: pinned SHA256:" in pin_through_cli(pair, capsys, monkeypatch)
    assert main(["sync", "init", "--config", str(pair.config_file)]) == 0
    assert "rsync: new key, key installed on the slave\n" in capsys.readouterr().out
    assert legacy_main(["--init", "--config", str(pair.config_file)]) == 0, "init again is not an error"
    assert "already set up, nothing changed" in capsys.readouterr().out

    assert main(["sync", "--json", "--config", str(pair.config_file)]) == 0
    report = json.loads(capsys.readouterr().out)
    [result] = report["results"]
    assert report["initialised"] is True
    assert result["figures"]["files_transferred"] == 1 and result["figures"]["rsync_exit"] == 0
    assert (pair.slave / "etc/xivo/asterisk/a.conf").read_text() == "a"

    [latest, *_] = events(pair, "sync")
    assert latest.outcome == "ok"
    assert latest.figures["files_transferred"] == 1
    assert latest.figures["peer"] == "127.0.0.1"
    assert "skipped /var/lib/wazo-auth-keys: no such directory" in " ".join(latest.figures["warnings"])
    assert [event.outcome for event in events(pair, "sync-init")] == ["unchanged", "ok"]
    assert legacy_main(["--config", str(pair.config_file)]) == 0


def test_a_failed_sync_exits_1_and_is_journaled(pair, capsys, monkeypatch):
    write(pair.master / "etc/xivo/asterisk/a.conf", "a")
    pair.engine("master")
    pin_through_cli(pair, capsys, monkeypatch)
    assert main(["sync", "init", "--config", str(pair.config_file)]) == 0
    pair.sshd.kill()
    pair.sshd.new_host_key()
    pair.sshd.run()
    assert main(["sync", "--config", str(pair.config_file)]) == 1
    assert "does not match the key pinned in" in capsys.readouterr().err
    assert legacy_main(["--config", str(pair.config_file)]) == 1
    latest = events(pair, "sync")[0]
    assert latest.outcome == "failed" and "host key" in latest.message
