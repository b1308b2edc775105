"""update_ha() end to end on a master: provd (stand-in), SIP expiry on real PostgreSQL, password, schedules.

The slave-side steps need the master's address to be one the test can connect
from (loopback), which validation refuses: they are covered step by step in
test_slave_db_access.py.
"""

from __future__ import annotations

import pytest

from tests.rig.provd_standin import ProvdStandIn
from wazo_ha_core.engine import HAEngine
from wazo_ha_core.errors import EditError
from wazo_ha_core.settings import Settings
from wazo_ha_core.store import Store

from .conftest import add_tenant, expiry, sip_rows

REGISTRAR = {"id": "default", "X_type": "registrar", "registrar_main": "10.0.0.1", "registrar_backup": "192.0.2.9"}
HA_VALUES = {"default_expiration": "240", "maximum_expiration": "300", "minimum_expiration": "180"}


@pytest.fixture
def provd():
    standin = ProvdStandIn().start()
    standin.add_config(REGISTRAR)
    yield standin
    standin.stop()


@pytest.fixture
def engine(tmp_path, pg_cluster, asterisk_db, provd):
    settings = Settings.from_tree(
        {
            "root": str(tmp_path / "root"),
            "local_addresses": ["10.0.0.1"],
            "config_db": {"url": pg_cluster.socket_url(asterisk_db)},
            "plugins": {"device_provisioners": ["provd"]},
            "plugin_config": {"provd": {"url": provd.url}},
            "schedules": {"systemctl": ["false"]},  # cron here: systemctl must not be called at all
            "follow": {"enabled": False},  # the follower's unit would need systemctl (tests/edit/test_schedules.py)
        }
    )
    store = Store.from_settings(settings)
    store.upgrade()
    engine = HAEngine(settings, store=store)
    yield engine
    store.close()


def node_files(root):
    """Every file an edit may change: the store and the metrics (which follow the journal) left out."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "wazo-ha" not in p.parts and p.suffix != ".prom"
    }


def mtimes(root):
    """Every node file but the state store, its status snapshot and the metrics (all follow the journal of the
    unchanged edit)."""
    journal_followers = ("state.db", "state.db.status.json")
    return {
        p: p.stat().st_mtime_ns
        for p in root.rglob("*")
        if p.is_file() and p.name not in journal_followers and p.suffix != ".prom"
    }


def test_enable_disable_and_a_failure_half_way(engine, provd, pg_cluster, asterisk_db, tmp_path, monkeypatch):
    root = tmp_path / "root"
    template = add_tenant(pg_cluster, asterisk_db, {"minimum_expiration": "60", "default_expiration": "120"})
    sip_before = sip_rows(pg_cluster, asterisk_db)

    # A failure at the last file step: provd, SIP rows, password and schedules all put back.
    real_write = engine.compat.write
    monkeypatch.setattr(engine.compat, "write", lambda ha: (_ for _ in ()).throw(PermissionError("read-only /etc")))
    with pytest.raises(EditError) as caught:
        engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert caught.value.step == "compatibility files" and caught.value.undo_failures == []
    assert provd.configs["default"] == REGISTRAR
    assert sip_rows(pg_cluster, asterisk_db) == sip_before
    assert node_files(root) == {}
    assert not (root / "etc/wazo-ha/replication-password").exists()
    monkeypatch.setattr(engine.compat, "write", real_write)

    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert provd.configs["default"]["registrar_backup"] == "10.0.0.2"
    assert expiry(pg_cluster, asterisk_db, template) == HA_VALUES
    assert "wazo-ha replicate" in (root / "etc/cron.d/xivo-ha-master").read_text()
    password_file = root / "etc/wazo-ha/replication-password"
    assert oct(password_file.stat().st_mode & 0o777) == "0o600"
    [event] = [e for e in engine.store.events() if e.outcome == "ok"]
    assert event.figures["steps"][-2:] == ["compatibility files", "state store"]

    # The same settings again: no PUT, no file rewritten.
    provd.requests.clear()
    stamps = mtimes(root)
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert provd.requests == []
    assert mtimes(root) == stamps

    engine.update_ha({"node_type": "disabled"})
    assert provd.configs["default"] == REGISTRAR
    assert sip_rows(pg_cluster, asterisk_db) == sip_before
    assert not (root / "etc/cron.d/xivo-ha-master").exists()
    assert password_file.exists()  # kept: re-enabling keeps the password the slave knows
