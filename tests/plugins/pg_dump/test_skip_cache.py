"""The scheduled run's fast path (wazo_ha_core.skip_cache) on real clusters: skipped without the store when
both servers' markers still equal the cache's, and the full path whenever the cache is wrong in any way."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

from wazo_ha_core import HAEngine, Settings
from wazo_ha_core.skip_cache import cache
from wazo_ha_rig.waiting import wait_for

from .test_engine import config_file, engine_for

cli_main = importlib.import_module("wazo_ha_core.cli.main")


def replicate(config: str, *extra: str) -> dict:
    """One ``wazo-ha replicate --json`` in this process; its one result."""
    assert cli_main.main(["--config", config, "replicate", "--json", *extra]) == 0
    return RESULTS.pop()


RESULTS: list[dict] = []


@pytest.fixture(autouse=True)
def capture_results(monkeypatch):
    from wazo_ha_core.cli import replication

    monkeypatch.setattr(replication, "print_json", lambda value: RESULTS.append(value[0]))


@pytest.fixture
def cached(pair):
    """A master whose last run was skipped: the cache is written and the next unchanged run takes the fast path."""
    engine_for(pair)
    config = config_file(pair)
    assert replicate(config)["outcome"] == "copied"
    database = Settings.load(config).path("state_db")

    def skipped_and_cached() -> bool:
        # Skipped by fingerprints, it records the markers, then the cache; unless a commit on a server during
        # the scan (autovacuum after the copy) kept the markers from being recorded: then the next run.
        assert replicate(config)["outcome"] == "skipped"
        return cache.cache_path(database).exists()

    wait_for(skipped_and_cached, 60, "a skipped run that writes the skip cache", interval=0.5)
    return config, database


def journal(config: str) -> list:
    return HAEngine(Settings.load(config)).store.events(kind="replication", limit=100)


def test_an_unchanged_run_is_skipped_by_the_cache_without_sqlalchemy_and_journaled_later(pair, cached):
    config, database = cached
    script = (
        "import sys\nfrom wazo_ha_core.cli.main import main\n"
        f"code = main(['--config', {config!r}, 'replicate', '--json'])\n"
        "print('sqlalchemy imported:', 'sqlalchemy' in sys.modules)\nsys.exit(code)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    result = json.loads(out.split("sqlalchemy imported:")[0])[0]
    assert result["outcome"] == "skipped" and result["figures"]["unchanged_by"] == "markers"
    assert out.strip().endswith("sqlalchemy imported: False")
    assert cache.pending_count(database) == 1
    metrics = Settings.load(config).path("metrics_file").read_text()
    # What status shows without the store (its snapshot plus the pending runs) and what the journal gets.
    from wazo_ha_core.status_snapshot import load

    view = load(database, 20)
    newest = view.events(kind="replication", limit=1)[0]
    assert newest.figures.get("skip_cache") is True and newest.outcome == "skipped"
    assert view.last_event(("replication",), ("ok", "skipped")).started_at == newest.started_at
    assert f"wazo_ha_last_replication_timestamp_seconds {newest.ended_at.timestamp()!r}" in metrics
    events = journal(config)  # opening the engine folds the pending runs into the journal
    assert cache.pending_count(database) == 0
    assert events[0].figures.get("skip_cache") is True and events[0].started_at == newest.started_at
    assert [e.outcome for e in events][:2] == ["skipped", "skipped"] and events[-1].outcome == "ok"


@pytest.mark.parametrize(
    "change, check, expected",
    [
        (
            "UPDATE userfeatures SET firstname = E'Zoë\\ttab\\\\back\\nline' WHERE id = 100007",
            "SELECT firstname FROM userfeatures WHERE id = 100007",
            "Zoë\ttab\\back\nline",
        ),
        ("SELECT nextval('userfeatures_id_seq')", "SELECT last_value FROM userfeatures_id_seq", "100041"),
    ],
    ids=["row-edit", "sequence-only"],
)
def test_a_cache_claiming_unchanged_after_the_master_changed_costs_a_run_and_the_copy_is_made(
    pair, cached, change, check, expected
):
    config, _ = cached
    pair.master_sql(change)

    result = replicate(config)

    assert result["outcome"] == "copied" and "skip_cache" not in result["figures"]
    assert pair.slave_row(check)[0] == (int(expected) if expected.isdigit() else expected)


def test_a_forged_cache_for_the_current_store_with_old_markers_still_copies(pair, cached):
    """The worst wrong cache: derived from the store as it is now (so accepted), holding the markers of a
    state before the master's last change. The live markers differ: the full path copies."""
    config, database = cached
    old = json.loads(cache.cache_path(database).read_text())
    pair.master_sql("UPDATE userfeatures SET lastname = 'after the cache' WHERE id = 100003")
    assert replicate(config)["outcome"] == "copied"
    assert replicate(config)["outcome"] == "skipped"  # by fingerprints: a new cache, a new store marker
    current = json.loads(cache.cache_path(database).read_text())
    pair.master_sql("UPDATE userfeatures SET lastname = 'changed again' WHERE id = 100003")
    cache.cache_path(database).write_text(json.dumps({**current, "entry": old["entry"]}))

    result = replicate(config)

    assert result["outcome"] == "copied"
    assert pair.slave_sql("SELECT lastname FROM userfeatures WHERE id = 100003").strip() == "changed again"


def test_a_slave_edit_after_the_cache_is_refused_by_the_full_path(pair, cached):
    config, _ = cached
    pair.slave_sql("UPDATE userfeatures SET firstname = 'edited on the slave' WHERE id = 100001")

    assert cli_main.main(["--config", config, "replicate"]) == 1
    assert journal(config)[0].outcome == "refused"


@pytest.mark.parametrize("damage", ["missing", "garbage", "store-moved", "settings", "other-peer", "format"])
def test_a_cache_that_cannot_decide_sends_the_run_to_the_full_path(pair, cached, damage):
    config, database = cached
    path = cache.cache_path(database)
    data = json.loads(path.read_text())
    if damage == "missing":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"\x00{not json")
    elif damage == "store-moved":
        HAEngine(Settings.load(config)).store.plugin_state("test").set("x", 1)  # any write of the store
    elif damage == "settings":
        config = config_file(pair, name="other-timeout", timeout=599)
    elif damage == "other-peer":
        path.write_text(json.dumps({**data, "peer": "10.0.0.9", "peers": ["10.0.0.9"]}))
    elif damage == "format":
        path.write_text(json.dumps({**data, "format": 99}))

    result = replicate(config)

    assert result["outcome"] == "skipped" and "skip_cache" not in result["figures"]
    assert cache.pending_count(database) == 0


def test_pending_runs_are_bounded_then_journaled_by_the_full_path(pair, cached, monkeypatch):
    config, database = cached
    monkeypatch.setattr(cache, "PENDING_LIMIT", 2)
    by_cache = [replicate(config)["figures"].get("skip_cache") for _ in range(3)]

    assert by_cache == [True, True, None]  # the third took the full path, which journaled the two first
    assert cache.pending_count(database) == 0
    outcomes = [(e.outcome, e.figures.get("skip_cache")) for e in journal(config)]
    assert outcomes[:4] == [("skipped", None), ("skipped", True), ("skipped", True), ("skipped", None)]
    assert cache.cache_path(database).exists()  # written again by the full path's skipped run


def test_the_cache_file_is_private(pair, cached):
    _, database = cached
    assert cache.cache_path(database).stat().st_mode & 0o777 == 0o600
    replicate(cached[0])
    assert cache.pending_path(database).stat().st_mode & 0o777 == 0o600
