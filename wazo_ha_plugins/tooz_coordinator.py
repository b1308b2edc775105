"""The ``tooz`` coordinator: the leader lock on etcd through OpenStack's tooz (``etcd3+http(s)://`` URLs).

Settings: the core's ``coordination.*`` (endpoints, TLS files, key prefix,
node, lease TTL, timeout), turned into this plugin's keys by
:func:`settings_config`; ``plugin_config.tooz`` overrides them: ``url`` (``etcd3+http://host:2379``; TLS
through ``etcd3+https://…?ca_cert=…&cert_cert=…&cert_key=…``), ``key_prefix``
(one per HA cluster on a shared etcd), ``node`` (this node's name, unique in
the cluster), ``priority`` (0 = preferred), ``lease_ttl`` (whole seconds,
etcd leases are integers) and ``timeout`` (whole seconds, every HTTP call).
Several URLs (one per etcd member): a call that fails moves the next call to
the next member, and the lease is renewed through whichever member answers.

The lock is tooz's etcd lock: a transaction that creates the key only if it
does not exist, attached to a lease. The fencing token is the key's
``create_revision``: etcd's revision grows with every write cluster-wide, so
each new acquisition gets a larger one. tooz is imported lazily (the
``coordination`` extra), so the core never needs it.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from typing import Any

from wazo_ha_core import Coordinator, CoordinatorUnavailable, Lease, LockHolder, PluginError

SCHEMES = ("etcd3+http", "etcd3+https")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_PREFIX = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _without_secrets(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def check_config(config: dict[str, Any]) -> None:
    """Raise PluginError naming the first bad key of ``plugin_config.tooz`` and its value."""

    def bad(key: str, reason: str) -> PluginError:
        value = config.get(key)
        if key == "url":
            value = (
                [_without_secrets(v) if isinstance(v, str) else v for v in value]
                if isinstance(value, list)
                else (_without_secrets(value) if isinstance(value, str) else value)
            )
        shown = _shown(value)
        return PluginError(f"plugin_config.tooz.{key}: {reason}, got {shown}")

    urls = config.get("url")
    for url in urls if isinstance(urls, list) and urls else [urls]:
        if not isinstance(url, str) or not url:
            raise bad("url", "must be an etcd3+http:// or etcd3+https:// URL (or a list of them)")
        try:
            parts = urllib.parse.urlsplit(url)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise bad("url", "is not a valid URL") from None
        if parts.scheme not in SCHEMES or not parts.hostname or any(c.isspace() for c in url):
            raise bad("url", f"must be a URL with scheme {' or '.join(SCHEMES)} and a host (fencing tokens need etcd)")
    if not isinstance(config.get("key_prefix"), str) or not _PREFIX.fullmatch(config["key_prefix"]):
        raise bad("key_prefix", "must be 1-128 characters of letters, digits, '.', '_', '-', '/'")
    if not isinstance(config.get("node"), str) or not _NAME.fullmatch(config["node"]):
        raise bad("node", "must be 1-63 characters of letters, digits, '.', '_', '-'")
    priority = config.get("priority")
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 1000:
        raise bad("priority", "must be an integer from 0 (preferred) to 1000")
    for key, low, high in (("lease_ttl", 2, 300), ("timeout", 1, 60)):
        value = config.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise bad(key, f"must be a whole number of seconds from {low} to {high}")
    if config["timeout"] * 2 >= config["lease_ttl"]:
        raise bad("timeout", f"must be less than half of lease_ttl ({config['lease_ttl']})")


class ToozCoordinator(Coordinator):
    default_config = {
        "url": None,
        "key_prefix": "wazo-ha",
        "node": None,
        "priority": 0,
        "lease_ttl": 5,
        "timeout": 2,
    }

    def __init__(self, context):
        super().__init__(context)
        if self.config.get("url") is None and context.settings is not None:
            self.config = {**self.config, **settings_config(context.settings), **context.config}
        check_config(self.config)
        urls = self.config["url"]
        self._urls = list(urls) if isinstance(urls, list) else [urls]
        self._current = 0  # the endpoint in use; the next one after a failure
        self._tooz = None
        self._lock_key = ""
        self._key = f"/{self.config['key_prefix'].strip('/')}/leader".encode()

    # --- connection ------------------------------------------------------------

    def _coordinator(self):
        if self._tooz is None:
            try:
                from tooz import coordination
            except ImportError:
                raise PluginError(
                    "the tooz coordinator needs tooz and etcd3gw: pip install 'wazo-ha[coordination]'"
                ) from None
            url = self._url_with_timeout(self._urls[self._current])
            member = f"{self.config['node']}-{uuid.uuid4().hex[:8]}".encode()
            coordinator = coordination.get_coordinator(url, member)
            # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE (and proxy variables) override the session's own CA
            # file: etcd must be verified with coordination.ca_file and reached directly, whatever the environment.
            coordinator.client.session.trust_env = False
            try:
                coordinator.start(start_heart=False)
            except Exception as exc:
                raise self._unavailable("connect", exc) from None
            self._tooz = coordinator
            self._lock_key = coordinator.get_lock(self._key)._key.decode()  # tooz prefixes its lock keys
        return self._tooz

    def _url_with_timeout(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        query = [(k, v) for k, v in urllib.parse.parse_qsl(parts.query) if k not in ("timeout", "lock_timeout")]
        query += [("timeout", str(self.config["timeout"])), ("lock_timeout", str(self.config["lease_ttl"]))]
        return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))

    def _unavailable(self, what: str, exc: BaseException) -> CoordinatorUnavailable:
        """The error to raise; the next call goes to the next endpoint (a member cut from the majority fails)."""
        where = _without_secrets(self._urls[self._current])
        if len(self._urls) > 1:
            self._tooz = None  # dropped, not stopped: stopping would wait on the failing member again
            self._current = (self._current + 1) % len(self._urls)
        return CoordinatorUnavailable(f"etcd at {where}: {what} failed: {type(exc).__name__}: {_shown(str(exc))}")

    def _client(self):
        return self._coordinator().client  # tooz's etcd3gw driver keeps an etcd3gw client

    def _read_key(self) -> tuple[str, dict] | None:
        try:
            client = self._client()
            found = client.get(self._lock_key, metadata=True)
        except CoordinatorUnavailable:
            raise
        except Exception as exc:
            raise self._unavailable("reading the leader key", exc) from None
        if not found:
            return None
        value, metadata = found[0]
        return (value.decode() if isinstance(value, bytes) else value), metadata

    # --- the contract ------------------------------------------------------------

    def acquire(self, node: str, ttl: float) -> Lease | None:
        coordinator = self._coordinator()
        lock = coordinator.get_lock(self._key)
        # tooz stores a per-lock random value and releases only if it still matches; ours also names the node.
        lock._uuid = _encode_value(f"{node}/{uuid.uuid4().hex}")
        try:
            granted = lock.acquire(blocking=False, timeout=int(ttl))
        except Exception as exc:
            raise self._unavailable("acquiring the leader lock", exc) from None
        if not granted:
            return None
        found = self._read_key()
        if found is None:
            return None  # expired already: the call took longer than the lease
        _value, metadata = found
        return Lease(node=node, token=int(metadata["create_revision"]), ttl=float(int(ttl)), handle=lock)

    def renew(self, lease: Lease) -> bool:
        lock = lease.handle
        try:
            remaining = self._gateway_lease(lock).refresh()
        except Exception as exc:
            raise self._unavailable("renewing the lease", exc) from None
        if remaining is None or int(remaining) <= 0:
            return False
        found = self._read_key()
        return found is not None and int(found[1]["create_revision"]) == lease.token

    def _gateway_lease(self, lock):
        """The lock's etcd lease through the current connection (it may have moved to another member)."""
        from etcd3gw.lease import Lease as GatewayLease

        return GatewayLease(lock._lease.id, self._client())

    def release(self, lease: Lease) -> None:
        # Revoking our own lease deletes only the keys attached to it: the lock if it is still ours, nothing else.
        try:
            self._gateway_lease(lease.handle).revoke()
        except Exception as exc:
            self.log.warning("could not release the leader lock (it expires by itself): %s", _shown(str(exc)))

    def holder(self) -> LockHolder | None:
        found = self._read_key()
        if found is None:
            return None
        value, metadata = found
        node = _decode_value(value).rsplit("/", 1)[0]
        expires_in = None
        lease_id = metadata.get("lease")
        if lease_id:
            from etcd3gw.lease import Lease as GatewayLease

            try:
                expires_in = float(GatewayLease(int(lease_id), self._client()).ttl())
            except Exception:
                expires_in = None  # read-only detail: the holder and token are what matter
        return LockHolder(node=node, token=int(metadata["create_revision"]), expires_in=expires_in)

    def close(self) -> None:
        if self._tooz is not None:
            try:
                self._tooz.stop()
            except Exception as exc:
                self.log.warning("closing the tooz coordinator: %s", _shown(str(exc)))
            self._tooz = None


def settings_config(settings) -> dict[str, Any]:
    """This plugin's keys from the core's ``coordination.*`` settings (``plugin_config.tooz`` overrides them)."""
    import socket

    from wazo_ha_core.coordination.config import tooz_urls

    section = settings.get("coordination")
    if not section["endpoints"]:
        return {}
    return {
        "url": tooz_urls(section, resolve=lambda path: str(settings.resolve(path))),
        "key_prefix": section["key_prefix"],
        "node": section["node"] or socket.gethostname().split(".")[0],
        "priority": int(section["priority"] or 0),
        "lease_ttl": int(section["lease_ttl"]),
        "timeout": int(section["timeout"]),
    }


def _encode_value(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def _decode_value(value: str) -> str:
    return value
