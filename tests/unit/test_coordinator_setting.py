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


# --- coordination.* (docs/coordination.rst) --------------------------------------------------------------------

ETCD = {"plugins": {"coordinators": ["tooz"]}, "coordination": {"endpoints": ["http://192.0.2.1:2379"]}}


def _with(**section):
    return {"plugins": ETCD["plugins"], "coordination": {**ETCD["coordination"], **section}}


def test_a_coordinator_with_endpoints_is_accepted_and_none_needs_no_endpoint():
    assert Settings.from_tree(ETCD).get("coordination.lease_ttl") == 5
    assert Settings.from_tree({}).get("coordination.endpoints") == []


@pytest.mark.parametrize(
    "tree, key, value",
    [
        ({"plugins": {"coordinators": ["tooz"]}}, "coordination.endpoints", r"\[\]"),
        (_with(endpoints=["etcd3+http://h:2379"]), r"coordination.endpoints\[0\]", "etcd3"),
        (_with(endpoints=["http://h"]), r"coordination.endpoints\[0\]", "'http://h'"),
        (_with(endpoints=["http://u:secret@h:2379"]), r"coordination.endpoints\[0\]", "no user"),
        (_with(endpoints=["http://h:2379/v3?x=1"]), r"coordination.endpoints\[0\]", "no path"),
        (_with(key_prefix="/abs"), "coordination.key_prefix", "'/abs'"),
        (_with(node="two words"), "coordination.node", "'two words'"),
        (_with(priority=1.5), "coordination.priority", "1.5"),
        (_with(priority=101), "coordination.priority", "101"),
        (_with(lease_ttl=4.5), "coordination.lease_ttl", "4.5"),
        (_with(lease_ttl=4), "coordination.lease_ttl", "stop_margin \\+ 2 x timeout \\(4 s\\)"),
        (_with(timeout=2), "coordination.lease_ttl", "\\(6 s\\)"),
        (_with(stop_margin=3.5), "coordination.lease_ttl", "\\(5.5 s\\)"),
        (_with(cert_file="/etc/wazo-ha/etcd.pem"), "coordination.cert_file", "key_file go together"),
        (_with(guard_poll=0), "coordination.guard_poll", "got 0"),
        (_with(guard_poll=2), "coordination.guard_poll", "got 2"),
        (_with(guard_deadline=2.9), "coordination.guard_deadline", r"at most .*\(2.8 s.*got 2.9"),
        (_with(guard_deadline=2), "coordination.guard_deadline", r"renewal period \+ timeout \(2 s.*got 2"),
        (_with(guard_deadline="soon"), "coordination.guard_deadline", "'soon'"),
        ({**ETCD, "schedules": {"slave_mode": "check"}}, "schedules.slave_mode", "'check'"),
    ],
)
def test_bad_coordination_settings_name_the_field_and_the_value(tree, key, value):
    with pytest.raises(SettingsError, match=f"{key}: .*{value}") as caught:
        Settings.from_tree(tree)
    assert "secret" not in str(caught.value)


def test_the_lease_must_outlive_a_missed_renewal_plus_the_stop():
    # 5 s > 2 + 2 x 1: accepted; the derived renewal interval leaves room for one lost renewal and a slow one
    from wazo_ha_core.coordination.config import guard_config

    config = guard_config(Settings.from_tree(ETCD).get("coordination"))
    assert 2 * config.renew_every + 1 <= config.ttl - config.margin


def test_the_fence_guard_deadline_defaults_to_one_poll_before_the_keepers_fencing_point():
    from wazo_ha_core.coordination.config import guard_config, guard_deadline

    section = Settings.from_tree(ETCD).get("coordination")
    config = guard_config(section)
    assert section["fence_guard"] is True
    assert guard_deadline(section) == pytest.approx(config.ttl - config.margin - section["guard_poll"])
    assert guard_deadline(section) > config.renew_every + section["timeout"]
    assert guard_deadline(Settings.from_tree(_with(guard_deadline=2.5)).get("coordination")) == 2.5


def test_the_engine_builds_no_lease_keeper_with_the_none_coordinator(tmp_path):
    from wazo_ha_core.engine import HAEngine
    from wazo_ha_core.services import ServiceControl
    from wazo_ha_core.store import Store

    settings = Settings.from_tree({"root": str(tmp_path)})
    store = Store.from_settings(settings)
    store.upgrade()
    engine = HAEngine(settings, store)
    assert engine.lease_keeper(ServiceControl([]), standby=True) is None


def test_in_coordinated_mode_the_master_runs_the_watch_unit_too():
    from wazo_ha_core.config import HASettings
    from wazo_ha_core.schedules import WATCH, Schedules

    master = HASettings("master", "10.0.0.2")
    assert WATCH not in Schedules(Settings.from_tree({"schedules": {"kind": "systemd"}})).wanted(master)[1]
    tree = {**ETCD, "schedules": {"kind": "systemd"}}
    assert WATCH in Schedules(Settings.from_tree(tree)).wanted(master)[1]


def test_wazo_services_refuses_a_fencing_token_older_than_one_it_served_under():
    from wazo_ha_core.errors import PluginError

    manager = load_plugin("service_managers", "wazo_services")
    manager.accept_token(5)
    manager.accept_token(7)
    with pytest.raises(PluginError, match="fencing token 6 is older than 7"):
        manager.accept_token(6)
    manager.accept_token(7)  # the same lease's start retried
