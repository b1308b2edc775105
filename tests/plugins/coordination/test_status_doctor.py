"""`wazo-ha status` and `wazo-ha doctor` in coordinated mode, against real etcd (plain and TLS).

The engine is built from settings (plugins.coordinators: [tooz], coordination.*), so the tooz plugin is
loaded through its entry point and reads the core's settings, as on a node.
"""

from __future__ import annotations

import time

import pytest

from tests.plugins.coordination.conftest import _require_etcd
from wazo_ha_core.coordination.doctor import coordination_checks
from wazo_ha_core.coordination.status import status_lines
from wazo_ha_core.doctor import FAIL, PASS, WARN
from wazo_ha_core.engine import HAEngine
from wazo_ha_core.settings import Settings
from wazo_ha_core.store import Store
from wazo_ha_rig.certificates import CertificateAuthority, certificate_from_another_authority
from wazo_ha_rig.etcd import EtcdCluster
from wazo_ha_rig.waiting import wait_for


def make_engine(tmp_path, endpoints, **coordination):
    settings = Settings.from_tree(
        {
            "root": str(tmp_path),
            "plugins": {"coordinators": ["tooz"]},
            "coordination": {"endpoints": endpoints, "node": "alpha", "lease_ttl": 5, **coordination},
        }
    )
    store = Store.from_settings(settings)
    store.upgrade()
    return HAEngine(settings, store)


def run(check):
    return check.run()


def test_status_shows_the_holder_its_token_and_the_lease_left(tmp_path, etcd, make_coordinator):
    engine = make_engine(tmp_path, etcd.endpoints())
    assert engine.status()["coordination"]["holder"] is None
    other = make_coordinator([etcd.tooz_url(0)], "beta", lease_ttl=5, timeout=2)
    lease = other.acquire("beta", 5)
    status = engine.status()["coordination"]
    assert status["coordinator"] == "tooz" and status["error"] is None
    assert status["holder"]["node"] == "beta" and status["holder"]["token"] == lease.token
    assert 0 < status["holder"]["lease_left"] <= 5
    [_, holder_line, guard_line] = status_lines(status)
    assert guard_line == "fence guard     NOT running"  # no watch on this test node
    assert holder_line.startswith(f"lock holder     beta  token {lease.token}  lease left ")


def test_status_with_etcd_gone_says_so_within_the_time_bound(tmp_path, etcd):
    engine = make_engine(tmp_path, etcd.endpoints())
    etcd.kill(0)
    started = time.monotonic()
    status = engine.status()["coordination"]
    assert time.monotonic() - started < 2 * 1 + 1.5  # connect + read, each bounded by coordination.timeout
    assert status["holder"] is None and "etcd at etcd3+http://127.0.0.1" in status["error"]
    assert status_lines(status)[1].startswith("lock holder     UNKNOWN  ")


def test_status_with_the_none_coordinator_reads_no_backend(tmp_path):
    settings = Settings.from_tree({"root": str(tmp_path)})
    store = Store.from_settings(settings)
    store.upgrade()
    assert HAEngine(settings, store).status()["coordination"] == {"coordinator": "none"}


def test_doctor_plain_http_endpoint_warns_clear_text_and_a_dead_one_fails(tmp_path, etcd3):
    etcd3.kill(2)
    engine = make_engine(tmp_path, etcd3.endpoints())
    healthy, _, dead, lease, _ = coordination_checks(engine.settings)
    # if the killed member led, the two others elect a new leader first (health is false meanwhile)
    result = wait_for(lambda: (found := run(healthy)).status == WARN and found, 10, "member 0 healthy again")
    assert "plain http" in result.detail
    result = run(dead)
    assert result.status == FAIL and "no answer" in result.detail and "etcdctl" in result.fix
    assert run(lease).status == PASS


def test_doctor_lease_shorter_than_the_watch_tolerance_warns(tmp_path, etcd):
    engine = make_engine(tmp_path, etcd.endpoints())
    engine.settings.tree["watch"].update(fall=5, interval=1.0)  # 5 s of tolerance; 5 - 2 s of lease before fencing
    result = run(coordination_checks(engine.settings)[-2])
    assert result.status == WARN and "at least 7 s" in result.fix


def test_doctor_states_the_fence_guards_bounds_and_whether_it_runs(tmp_path, etcd):
    from wazo_ha_core.coordination.fence import FenceGuard

    engine = make_engine(tmp_path, etcd.endpoints())
    [check] = [c for c in coordination_checks(engine.settings) if c.name == "fence guard"]
    result = run(check)
    assert result.status == WARN and "not running" in result.detail and "wazo-ha watch" in result.fix
    assert "2.8-3 s after the last renewal" in result.detail and "keeper at 3 s" in result.detail
    guard = FenceGuard(engine.settings.path("run_dir"), lambda: None, 0.2)
    assert guard.lock()  # as `wazo-ha fence-guard` does
    result = run(check)
    assert result.status == PASS and "running (pid " in result.detail
    engine.settings.tree["coordination"]["fence_guard"] = False
    assert run(check).status == WARN


@pytest.fixture
def etcd_tls():
    _require_etcd()
    authority = CertificateAuthority.create("etcd")
    try:
        with EtcdCluster.start(members=1, tls=authority.issue("IP:127.0.0.1")) as cluster:
            yield cluster, authority
    finally:
        authority.remove()


def test_tls_verified_endpoint_passes_and_the_lock_works_over_it(tmp_path, etcd_tls, make_coordinator):
    cluster, authority = etcd_tls
    [endpoint] = cluster.endpoints()
    assert endpoint.startswith("https://")
    engine = make_engine(tmp_path, [endpoint], ca_file=str(authority.certificate))
    engine.settings.tree["root"] = "/"  # the CA file is a real absolute path here
    result = run(coordination_checks(engine.settings)[0])
    assert result.status == PASS and "TLS verified" in result.detail
    coordinator = engine.coordinator()
    try:
        lease = coordinator.acquire("alpha", 5)
        assert lease is not None and coordinator.renew(lease)
        assert coordinator.holder().token == lease.token
    finally:
        coordinator.close()


def test_tls_with_the_wrong_authority_fails_in_doctor_and_in_the_lock(tmp_path, etcd_tls):
    cluster, _ = etcd_tls
    _wrong, other_authority = certificate_from_another_authority("IP:127.0.0.1")
    try:
        engine = make_engine(tmp_path, cluster.endpoints(), ca_file=str(other_authority.certificate))
        engine.settings.tree["root"] = "/"
        result = run(coordination_checks(engine.settings)[0])
        assert result.status == FAIL and "TLS" in result.detail
        coordinator = engine.coordinator()
        from wazo_ha_core.errors import CoordinatorUnavailable

        with pytest.raises(CoordinatorUnavailable):
            coordinator.acquire("alpha", 5)
        coordinator.close()
    finally:
        other_authority.remove()
