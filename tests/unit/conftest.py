"""A sandboxed engine on the embedded SQLite store, with in-memory plugins."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from stevedore import NamedExtensionManager
from stevedore.extension import Extension

from wazo_ha_core.engine import HAEngine
from wazo_ha_core.plugins import PluginLoader
from wazo_ha_core.settings import PLUGIN_NAMESPACES, Settings, deep_merge
from wazo_ha_core.store import Store

from . import sample_plugins

LOCAL_ADDRESSES = ["10.0.0.1", "2001:db8::1"]
#: The default plugins talk to real provd, PostgreSQL, ssh...: unit tests enable only test plugins.
NO_PLUGINS = {"plugins": {group: [] for group in PLUGIN_NAMESPACES}}

TEST_PLUGINS = {
    "recording_provisioner": sample_plugins.RecordingProvisioner,
    "recording_services": sample_plugins.RecordingServices,
    "serving_services": sample_plugins.ServingServices,
    "recording_replication": sample_plugins.RecordingReplication,
    "recording_file_sync": sample_plugins.RecordingFileSync,
    "scripted_host": sample_plugins.ScriptedHostProbe,
    "scripted_sip": sample_plugins.ScriptedSipProbe,
    "scripted_copy_back": sample_plugins.ScriptedCopyBackRows,
}


def test_manager_factory(namespace, names, on_load_failure, on_missing):
    missing = [name for name in names if name not in TEST_PLUGINS]
    if missing:
        on_missing(missing)
    extensions = [Extension(name, None, TEST_PLUGINS[name], None) for name in names if name in TEST_PLUGINS]
    return NamedExtensionManager.make_test_instance(extensions, namespace=namespace)


@pytest.fixture
def sandbox(tmp_path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def make_engine(sandbox):
    engines = []

    def make(migrate: bool = True, **tree) -> HAEngine:
        tree = deep_merge(NO_PLUGINS, tree)
        tree = {
            "root": str(sandbox),
            "local_addresses": LOCAL_ADDRESSES,
            # No configuration database here (tests/edit has them on real PostgreSQL).
            "sip_expiry": {"enabled": False},
            "slave_db": {"enabled": False},
            "schedules": {"systemctl": ["true"]},
            **tree,
        }
        settings = Settings.from_tree(tree)
        store = Store.from_settings(settings)
        if migrate:
            store.upgrade()
        loader = PluginLoader(settings, store.plugin_state, test_manager_factory)
        engine = HAEngine(settings, store=store, loader=loader)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.store.close()


@pytest.fixture(autouse=True)
def clear_calls():
    sample_plugins.CALLS.clear()
    yield
    sample_plugins.CALLS.clear()


_HOLD_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.flock(fd, fcntl.LOCK_EX)
print("held", flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def lock_held_by_another_process(path: Path):
    """Another process (a second CLI run, confd) holds ``path`` with flock until the block ends."""
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_LOCK, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        yield
    finally:
        holder.communicate("", timeout=10)
