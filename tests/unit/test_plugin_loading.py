"""Plugin discovery: real entry points and stevedore test instances; every failure is one clear error."""

from __future__ import annotations

import sys
import textwrap

import pytest
from stevedore import NamedExtensionManager
from stevedore.extension import Extension, ExtensionManager

from tests.rig.plugin_loading import MemoryState
from wazo_ha_core.errors import PluginLoadError
from wazo_ha_core.plugins import PluginLoader
from wazo_ha_core.settings import PLUGIN_NAMESPACES, Settings

from . import sample_plugins
from .sample_plugins import RecordingProvisioner, RecordingServices


def settings_with(**plugins) -> Settings:
    enabled = {group: plugins.get(group, []) for group in PLUGIN_NAMESPACES}
    return Settings.from_tree({"plugins": enabled, "plugin_config": {"relay": {"fail_on": "x"}}})


def test_manager_factory_with_test_instances():
    """stevedore's make_test_instance stands in for installed entry points."""
    extensions = {
        "wazo": Extension("wazo", None, RecordingServices, None),
        "relay": Extension("relay", None, RecordingProvisioner, None),
    }

    def factory(namespace, names, on_load_failure, on_missing):
        missing = [n for n in names if n not in extensions]
        if missing:
            on_missing(missing)
        return NamedExtensionManager.make_test_instance(
            [extensions[n] for n in names if n in extensions], namespace=namespace
        )

    loader = PluginLoader(
        settings_with(service_managers=["wazo"], device_provisioners=["relay"]), lambda owner: MemoryState(), factory
    )
    [services] = loader.load("service_managers")
    assert isinstance(services, RecordingServices)
    assert services.context.namespace == "wazo_ha.service_managers"
    [provisioner] = loader.load("device_provisioners")
    assert provisioner.config == {"fail_on": "x"}  # its section merged over default_config
    assert loader.load("replication") == []


@pytest.fixture
def installed_plugins(tmp_path, monkeypatch):
    """A real distribution with real entry points, on sys.path (found through importlib.metadata)."""
    dist = tmp_path / "site_ha_plugins-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: site-ha-plugins\nVersion: 1.0\n")
    module = "tests.unit.sample_plugins"
    (dist / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""
            [wazo_ha.service_managers]
            recording = {module}:RecordingServices
            half_done = {module}:HalfDoneServices
            not_a_plugin = {module}:NotAPlugin
            exploding = {module}:ExplodingConstructor
            broken_import = site_ha_missing_module:Relay
            [wazo_ha.replication]
            recording = {module}:RecordingReplication
            wrong_point = {module}:RecordingServices
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    # stevedore keeps the entry points of a namespace once read, whatever sys.path says since:
    # an empty cache for this test, so that an earlier load in the same process cannot hide ours.
    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})
    yield


def test_real_entry_points_load_in_configured_order(installed_plugins):
    settings = settings_with(service_managers=["recording"], replication=["recording"])
    loader = PluginLoader(settings, lambda owner: MemoryState())
    [manager] = loader.load("service_managers")
    assert type(manager).__name__ == "RecordingServices"
    assert manager.name == "recording"
    [replication] = loader.load("replication")
    assert replication.replicate("10.0.0.2").outcome == "copied"


@pytest.mark.parametrize(
    ("group", "name", "cause"),
    [
        ("service_managers", "absent", "not installed"),
        ("service_managers", "broken_import", "failed to import site_ha_missing_module:Relay: ModuleNotFoundError"),
        ("service_managers", "half_done", "HalfDoneServices does not implement status, stop"),
        ("service_managers", "not_a_plugin", "NotAPlugin is not a subclass of ServiceManager"),
        ("replication", "wrong_point", "RecordingServices is not a subclass of ReplicationBackend"),
        ("service_managers", "exploding", "failed to start: RuntimeError: cannot find /etc/bnfos.conf (test)"),
    ],
)
def test_each_load_failure_is_one_clear_error(installed_plugins, group, name, cause):
    loader = PluginLoader(
        settings_with(**{group: ["recording", name] if group == "service_managers" else [name]}),
        lambda owner: MemoryState(),
    )
    with pytest.raises(PluginLoadError) as caught:
        loader.load(group)
    error = caught.value
    assert error.namespace == f"wazo_ha.{group}"
    assert error.name == name
    assert cause in error.cause
    assert f"wazo_ha.{group}" in str(error) and name in str(error)


def test_inventory_lists_installed_and_enabled_with_reasons(installed_plugins):
    loader = PluginLoader(settings_with(service_managers=["recording", "half_done", "absent"]), lambda o: MemoryState())
    reports = {(r.group, r.name): r for r in loader.inventory()}
    assert reports[("service_managers", "recording")].ok and reports[("service_managers", "recording")].enabled
    assert "does not implement" in reports[("service_managers", "half_done")].error
    assert reports[("service_managers", "absent")].installed is False
    assert "not installed" in reports[("service_managers", "absent")].error
    # installed but not enabled: listed, import checked, not built
    exploding = reports[("service_managers", "exploding")]
    assert not exploding.enabled and exploding.ok
    assert "failed to import" in reports[("service_managers", "broken_import")].error
    assert {r.group for r in reports.values()} >= {"service_managers", "replication"}


def test_cli_plugins_exits_1_without_traceback(installed_plugins, tmp_path, capsys):
    from wazo_ha_core.cli.main import main

    config = tmp_path / "config.yml"
    config.write_text(f"root: {tmp_path}/root\nplugins: {{service_managers: [broken_import]}}\n")
    assert main(["plugins", "--config", str(config)]) == 1
    out = capsys.readouterr().out
    assert "wazo_ha.replication" in out and "wazo_ha.device_provisioners" in out
    assert "broken_import" in out and "ERROR: failed to import" in out
    assert "Traceback" not in out


def test_sample_module_is_importable():
    assert sys.modules.get("tests.unit.sample_plugins") is sample_plugins
