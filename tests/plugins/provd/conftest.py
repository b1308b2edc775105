"""An engine with the real ``provd`` plugin (loaded through its entry point) and the provd stand-in."""

from __future__ import annotations

import pytest

from tests.rig.provd_standin import ProvdStandIn
from wazo_ha_core.engine import HAEngine
from wazo_ha_core.settings import Settings
from wazo_ha_core.store import Store

TOKEN = "test-token-1234"


@pytest.fixture
def provd():
    standin = ProvdStandIn(token=TOKEN).start()
    yield standin
    standin.stop()


@pytest.fixture
def sandbox(tmp_path):
    return tmp_path / "root"


@pytest.fixture
def make_engine(sandbox, provd):
    engines = []

    def make(**provd_config) -> HAEngine:
        settings = Settings.from_tree(
            {
                "root": str(sandbox),
                "local_addresses": ["10.0.0.1"],
                "plugins": {"device_provisioners": ["provd"]},
                "plugin_config": {"provd": {"url": provd.url, "token": TOKEN, "poll_interval": 0.01, **provd_config}},
                # Only provd is under test here; the other steps have tests/edit.
                "sip_expiry": {"enabled": False},
                "slave_db": {"enabled": False},
                "schedules": {"enabled": False},
            }
        )
        store = Store.from_settings(settings)
        store.upgrade()
        engine = HAEngine(settings, store=store)  # the real stevedore loader: the entry point is tested too
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.store.close()
