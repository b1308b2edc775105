"""The core around the plugin, on real clusters: peer from the HA settings, lock, journal, CLI, legacy script."""

from __future__ import annotations

import importlib
import json
import threading

import pytest
import yaml

from tests.rig.waiting import wait_for
from wazo_ha_core import AlreadyRunning, HAEngine, HASettings, PreflightError, Settings
from wazo_ha_core.cli.replication import legacy_db_replication

from .conftest import content

cli_main = importlib.import_module("wazo_ha_core.cli.main")


def config_file(pair, run_dir: str = "/run/wazo-ha", name: str = "", **plugin_overrides) -> str:
    """The settings file for (``run_dir``, ``name``); a configuration that differs needs its own ``name``."""
    suffix = f"-{name}" if name else ""
    path = pair.root / f"config-{run_dir.strip('/').replace('/', '-')}{suffix}.yml"
    tree = {
        "root": str(pair.root),
        "timeouts": {"connect": 2},
        "paths": {"run_dir": run_dir},
        "plugins": {"replication": ["pg_dump"]},
        "plugin_config": {"pg_dump": pair.plugin_config(**plugin_overrides)},
    }
    path.write_text(yaml.safe_dump(tree))
    return str(path)


def engine_for(pair, node_type: str = "master", **kwargs) -> HAEngine:
    engine = HAEngine(Settings.load(config_file(pair, **kwargs)))
    engine.store.upgrade()
    # Written straight to the store: validation refuses loopback as remote_address,
    # and the rig's slave cluster listens on loopback.
    engine.store.write_ha_settings(HASettings(node_type, "127.0.0.1" if node_type != "disabled" else ""))
    return engine


def test_master_replicates_to_its_remote_address_and_journals_figures(pair):
    engine = engine_for(pair)

    [result] = engine.replicate()
    [again] = engine.replicate()

    assert (result.outcome, again.outcome) == ("copied", "skipped")
    skipped, copied = engine.store.events(kind="replication")
    assert (copied.outcome, skipped.outcome) == ("ok", "skipped")
    assert copied.figures["peer"] == "127.0.0.1" and copied.figures["plugin"] == "pg_dump"
    for key in ("tables", "rows", "bytes", "duration"):
        assert copied.figures[key] > 0, key
    assert copied.figures["outcome"] == "copied"
    assert copied.duration is not None and copied.duration >= copied.figures["duration"] * 0.5


@pytest.mark.parametrize("node_type", ["slave", "disabled"])
def test_a_node_that_is_not_master_refuses(pair, node_type):
    engine = engine_for(pair, node_type)
    before = content(pair.slave)

    with pytest.raises(PreflightError, match=f"master only; this node's node_type is '{node_type}'"):
        engine.replicate()

    assert content(pair.slave) == before
    [event] = engine.store.events(kind="replication")
    assert event.outcome == "refused"


def test_two_runs_at_once_on_one_node_one_runs_one_exits_at_once(pair):
    engine = engine_for(pair)
    inside, release = threading.Event(), threading.Event()
    outcome: list = []

    def hold(message, figures):
        if not inside.is_set():
            inside.set()
            release.wait(60)

    first = threading.Thread(target=lambda: outcome.extend(engine.replicate(progress=hold)))
    first.start()
    try:
        wait_for(inside.is_set, 30, "first run streaming")
        with pytest.raises(AlreadyRunning, match="replication already running"):
            engine_for(pair).replicate()
        assert first.is_alive(), "the second run must not have waited for the first"
    finally:
        release.set()
        first.join(60)
    assert outcome[0].outcome == "copied"
    assert sorted(e.outcome for e in engine.store.events(kind="replication")) == ["ok", "refused"]


def test_two_masters_at_once_the_slave_lock_lets_one_through(pair):
    inside, release = threading.Event(), threading.Event()

    def hold(message, figures):
        if not inside.is_set():
            inside.set()
            release.wait(60)

    first = threading.Thread(target=lambda: pair.plugin().replicate(pair.peer, progress=hold))
    first.start()
    try:
        wait_for(inside.is_set, 30, "first run streaming")
        # Another node: its own run_dir, same slave.
        with pytest.raises(AlreadyRunning, match="replication already running"):
            engine_for(pair, run_dir="/run/other-master").replicate()
    finally:
        release.set()
        first.join(60)


def test_cli_replicate_json_and_exit_codes(pair, capsys):
    engine_for(pair)
    config = config_file(pair)

    assert cli_main.main(["--config", config, "replicate", "--json"]) == 0
    [result] = json.loads(capsys.readouterr().out)
    assert result["outcome"] == "copied"
    assert result["figures"]["tables"] > 100 and result["figures"]["written_tables"] > 0

    assert cli_main.main(["--config", config, "replicate"]) == 0
    assert capsys.readouterr().out.startswith("nothing changed since the last good copy")

    assert cli_main.main(["--config", config, "replicate", "--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["outcome"] == "copied"


def test_legacy_script_arguments_and_exit_codes(pair, capsys):
    engine = engine_for(pair, "disabled")  # today's script runs whatever the HA settings say, except on a slave
    config = config_file(pair)

    assert legacy_db_replication(["--config", config, "127.0.0.1"]) == 0
    assert legacy_db_replication(["--config", config, "not-an-ip"]) == 1
    assert "slave_ip must be an IP address, got 'not-an-ip'" in capsys.readouterr().err
    assert legacy_db_replication([]) == 1
    unreachable = config_file(pair, name="unreachable-slave", slave_port=1)
    assert legacy_db_replication(["--config", unreachable, "127.0.0.1"]) == 1
    assert "cannot connect to the slave" in capsys.readouterr().err
    # The refusal runs with the reachable slave's configuration: only the refusal can make it fail.
    assert Settings.load(config).plugin_config("pg_dump")["slave_port"] == pair.slave.port
    engine.store.write_ha_settings(HASettings("slave", "127.0.0.1"))
    assert legacy_db_replication(["--config", config, "127.0.0.1"]) == 1
    err = capsys.readouterr().err
    assert "this node is a slave" in err and "cannot connect" not in err
    [refused, *_] = engine.store.events(kind="replication")
    assert refused.outcome == "refused"
