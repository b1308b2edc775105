"""SIP registration expiry on Wazo's real schema: set on enable, restored exactly on disable."""

from __future__ import annotations

import pytest

from wazo_ha_core.config import DISABLED, HASettings
from wazo_ha_core.errors import EditStepError
from wazo_ha_core.settings import Settings
from wazo_ha_core.sip_expiry import SipExpiryStep
from wazo_ha_core.store import Store

from .conftest import add_tenant, expiry, sip_rows

MASTER = HASettings("master", "10.0.0.2")
SLAVE = HASettings("slave", "10.0.0.2")
HA_VALUES = {"default_expiration": "240", "maximum_expiration": "300", "minimum_expiration": "180"}


@pytest.fixture
def step_factory(tmp_path, pg_cluster, asterisk_db):
    settings = Settings.from_tree({"root": str(tmp_path), "config_db": {"url": pg_cluster.socket_url(asterisk_db)}})
    store = Store.from_settings(settings)
    store.upgrade()
    yield lambda: SipExpiryStep(settings, store.plugin_state("edit.sip_expiry"))
    store.close()


@pytest.fixture
def tenants(pg_cluster, asterisk_db):
    return {
        # Today's non-HA values on a full aor section with another option beside them.
        "full": add_tenant(
            pg_cluster,
            asterisk_db,
            {
                "minimum_expiration": "60",
                "default_expiration": "120",
                "maximum_expiration": "3600",
                "max_contacts": "1",
            },
        ),
        "partial": add_tenant(pg_cluster, asterisk_db, {"default_expiration": "120"}),  # the others absent
        "no_aor": add_tenant(pg_cluster, asterisk_db, None),  # no aor section at all
        "no_template": add_tenant(pg_cluster, asterisk_db, None, with_template=False),
    }


def test_enable_sets_values_and_disable_restores_every_row(step_factory, tenants, pg_cluster, asterisk_db):
    before = sip_rows(pg_cluster, asterisk_db)
    step_factory().apply(DISABLED, MASTER)
    for name in ("full", "partial", "no_aor"):
        assert expiry(pg_cluster, asterisk_db, tenants[name]) == HA_VALUES, name
    assert "max_contacts|1" in sip_rows(pg_cluster, asterisk_db)
    step_factory().apply(MASTER, SLAVE)  # role change: still enabled, values kept, originals still remembered
    step_factory().apply(SLAVE, DISABLED)
    assert sip_rows(pg_cluster, asterisk_db) == before  # values back, created rows and section deleted
    assert expiry(pg_cluster, asterisk_db, tenants["full"]) == {
        "default_expiration": "120",
        "maximum_expiration": "3600",
        "minimum_expiration": "60",
    }


def test_repeated_apply_touches_no_row(step_factory, tenants, pg_cluster, asterisk_db):
    step_factory().apply(DISABLED, MASTER)
    versions = pg_cluster.psql(asterisk_db, "SELECT uuid, xmin FROM endpoint_sip_section_option ORDER BY 1;")
    step_factory().apply(MASTER, HASettings("master", "10.0.0.3"))
    assert pg_cluster.psql(asterisk_db, "SELECT uuid, xmin FROM endpoint_sip_section_option ORDER BY 1;") == versions


def test_undo_puts_rows_and_memory_back(step_factory, tenants, pg_cluster, asterisk_db):
    before = sip_rows(pg_cluster, asterisk_db)
    step = step_factory()
    step.apply(DISABLED, MASTER)
    step.undo(DISABLED, MASTER)
    assert sip_rows(pg_cluster, asterisk_db) == before
    assert step.state.get("previous") is None
    # Undo of a disable puts the HA values back, and the memory of the originals with them.
    step_factory().apply(DISABLED, MASTER)
    disabling = step_factory()
    disabling.apply(MASTER, DISABLED)
    disabling.undo(MASTER, DISABLED)
    assert expiry(pg_cluster, asterisk_db, tenants["full"]) == HA_VALUES
    step_factory().apply(MASTER, DISABLED)
    assert sip_rows(pg_cluster, asterisk_db) == before


def test_disabled_by_setting_touches_nothing(tmp_path, tenants, pg_cluster, asterisk_db, caplog):
    settings = Settings.from_tree(
        {"root": str(tmp_path), "config_db": {"url": "postgresql://nobody@/nowhere"}, "sip_expiry": {"enabled": False}}
    )
    before = sip_rows(pg_cluster, asterisk_db)
    with caplog.at_level("INFO"):
        SipExpiryStep(settings, state=None).apply(DISABLED, MASTER)
    assert sip_rows(pg_cluster, asterisk_db) == before
    assert "sip_expiry.enabled is false" in caplog.text


def test_unreachable_database_is_a_clear_error(tmp_path):
    settings = Settings.from_tree(
        {"root": str(tmp_path), "config_db": {"url": f"postgresql://postgres@/asterisk?host={tmp_path}"}}
    )
    store = Store.from_settings(settings)
    store.upgrade()
    with pytest.raises(EditStepError, match=r"cannot set the SIP registration expiry on .*asterisk"):
        SipExpiryStep(settings, store.plugin_state("edit.sip_expiry")).apply(DISABLED, MASTER)
