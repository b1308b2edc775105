"""etcd members for the coordinator tests: started and removed by the fixtures."""

from __future__ import annotations

import logging
import os
import shutil

import pytest

from tests.rig.plugin_loading import MemoryState
from wazo_ha_core.extensions import PluginContext
from wazo_ha_core.settings import Settings
from wazo_ha_plugins.tooz_coordinator import ToozCoordinator
from wazo_ha_rig.etcd import EtcdCluster


def _require_etcd() -> None:
    if os.geteuid() != 0:
        pytest.skip("the etcd rig runs etcd as the etcd user: run the tests as root")
    if shutil.which("etcd") is None:
        pytest.fail("etcd missing: run ./run-tests, which installs etcd-server")


@pytest.fixture
def etcd():
    _require_etcd()
    with EtcdCluster.start(members=1) as cluster:
        yield cluster


@pytest.fixture
def etcd3():
    _require_etcd()
    with EtcdCluster.start(members=3) as cluster:
        yield cluster


@pytest.fixture
def make_coordinator():
    made = []

    def make(url: str, node: str, **config) -> ToozCoordinator:
        section = {"url": url, "node": node, "lease_ttl": 3, "timeout": 1, **config}
        context = PluginContext(
            name="tooz",
            namespace="wazo_ha.coordinators",
            config=section,
            settings=Settings.from_tree({}),
            state=MemoryState(),
            log=logging.getLogger("test.tooz"),
        )
        coordinator = ToozCoordinator(context)
        made.append(coordinator)
        return coordinator

    yield make
    for coordinator in made:
        coordinator.close()
