"""plugins.coordinators: the default `none` keeps two-node behaviour; one coordinator at most."""

from __future__ import annotations

import pytest

from tests.rig.plugin_loading import load_plugin
from wazo_ha_core.errors import SettingsError
from wazo_ha_core.extensions import Coordinator
from wazo_ha_core.settings import Settings


def test_the_default_is_the_none_coordinator():
    assert Settings.from_tree({}).enabled_plugins("coordinators") == ["none"]


def test_more_than_one_coordinator_is_refused_naming_the_setting():
    with pytest.raises(SettingsError, match=r"plugins\.coordinators: names at most one coordinator"):
        Settings.from_tree({"plugins": {"coordinators": ["none", "tooz"]}})


def test_the_none_coordinator_always_grants_and_renews():
    coordinator = load_plugin("coordinators", "none")
    assert isinstance(coordinator, Coordinator) and not coordinator.coordinated
    first = coordinator.acquire("master", 5)
    assert first is not None and coordinator.renew(first)
    second = coordinator.acquire("master", 5)
    assert second.token > first.token
    assert coordinator.holder().node == "master"
    coordinator.release(second)
    assert coordinator.holder() is None
