"""The tooz coordinator against real etcd (Debian etcd-server): one member, then a three-member cluster."""

from __future__ import annotations

import time

import pytest

from wazo_ha_core.errors import CoordinatorUnavailable, PluginError
from wazo_ha_rig.waiting import wait_for

TTL = 3


def test_only_one_node_acquires_and_the_holder_is_visible(etcd, make_coordinator):
    first, second = make_coordinator(etcd.tooz_url(), "alpha"), make_coordinator(etcd.tooz_url(), "beta")
    lease = first.acquire("alpha", TTL)
    assert lease is not None and lease.token > 0
    assert second.acquire("beta", TTL) is None
    holder = second.holder()
    assert (holder.node, holder.token) == ("alpha", lease.token)
    assert 0 < holder.expires_in <= TTL
    assert first.renew(lease) is True


def test_tokens_grow_with_every_acquisition_and_a_lease_expires_when_not_renewed(etcd, make_coordinator):
    first, second = make_coordinator(etcd.tooz_url(), "alpha"), make_coordinator(etcd.tooz_url(), "beta")
    lease = first.acquire("alpha", TTL)
    stopped_renewing = time.monotonic()
    taken = wait_for(lambda: second.acquire("beta", TTL), TTL + 5, "beta acquires once alpha's lease expired")
    assert time.monotonic() - stopped_renewing >= TTL - 0.5  # not before the lease could expire
    assert taken.token > lease.token
    assert first.renew(lease) is False  # the old lease is gone; never revived
    second.release(taken)
    again = first.acquire("alpha", TTL)
    assert again.token > taken.token


def test_release_frees_the_lock_at_once(etcd, make_coordinator):
    first, second = make_coordinator(etcd.tooz_url(), "alpha"), make_coordinator(etcd.tooz_url(), "beta")
    lease = first.acquire("alpha", TTL)
    first.release(lease)
    first.release(lease)  # idempotent
    assert second.acquire("beta", TTL) is not None


def test_renew_fails_cleanly_and_in_time_when_etcd_is_gone(etcd, make_coordinator):
    coordinator = make_coordinator(etcd.tooz_url(), "alpha")
    lease = coordinator.acquire("alpha", TTL)
    etcd.kill(0)
    for call in (lambda: coordinator.renew(lease), lambda: coordinator.acquire("alpha", TTL), coordinator.holder):
        started = time.monotonic()
        with pytest.raises(CoordinatorUnavailable, match=r"etcd at etcd3\+http://127\.0\.0\.1"):
            call()
        assert time.monotonic() - started < coordinator.time_bound + 1.0


def test_three_members_losing_one_changes_nothing_losing_two_fails_in_time(etcd3, make_coordinator):
    coordinator = make_coordinator(etcd3.tooz_url(0), "alpha")
    lease = coordinator.acquire("alpha", TTL)
    etcd3.kill(2)
    # If member 2 led, a renewal may fail during the re-election; the guard retries, and the lease holds well
    # before its fencing point (TTL - margin).
    renewed_at = time.monotonic()
    wait_for(lambda: coordinator.renew(lease), TTL - 1.5, "a renewal through the two remaining members")
    assert time.monotonic() - renewed_at < TTL - 1.5
    assert coordinator.holder().token == lease.token
    etcd3.kill(1)  # member 0 alone: no quorum
    started = time.monotonic()
    with pytest.raises(CoordinatorUnavailable):
        if coordinator.renew(lease) is False:
            raise CoordinatorUnavailable("renew refused")
    assert time.monotonic() - started < coordinator.time_bound + 1.0


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("url", "http://127.0.0.1:2379", "scheme etcd3\\+http"),
        ("url", "etcd3+http://u:secret@", "a host"),
        ("url", "etcd3+http://h:99999", "not a valid URL"),
        ("node", "bad name\n", "node: must be"),
        ("key_prefix", "/abs", "key_prefix: must be"),
        ("priority", -1, "priority: must be"),
        ("lease_ttl", 1, "lease_ttl: must be"),
        ("timeout", 3, "timeout: must be less than half"),
    ],
)
def test_settings_are_validated_with_the_key_and_value(make_coordinator, key, value, message):
    config = {"url": "etcd3+http://127.0.0.1:2379", "node": "alpha", key: value}
    url = config.pop("url")
    node = config.pop("node")
    with pytest.raises(PluginError, match=message) as caught:
        make_coordinator(url, node, **config)
    assert "secret" not in str(caught.value)
