"""wazo-confd, as far as it can run here: a real Flask app and ``flask_restful.Api(prefix="/1.1")``
served over HTTP on loopback, with the plugin loaded the way confd loads it (stevedore over the
installed entry point, then ``load(dependencies)``), on a sandboxed node (SQLite store).

Two stand-ins, for what is not on PyPI: wazo-auth's token check (:class:`StandInWazoAuth`,
following wazo-auth's answers) and wazo-bus's publisher (:class:`RecordingBusPublisher`).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flask
import flask_restful
import pytest
import yaml
from stevedore import NamedExtensionManager
from werkzeug.serving import make_server

from wazo_ha_confd.auth import TOKEN_FORBIDDEN, TOKEN_UNKNOWN, TOKEN_VALID, TokenAuthorizer
from wazo_ha_core.settings import PLUGIN_NAMESPACES, Settings
from wazo_ha_core.store import Store

MASTER_TENANT = "11111111-1111-4111-8111-111111111111"
OTHER_TENANT = "22222222-2222-4222-8222-222222222222"
LOCAL_ADDRESSES = ["10.0.0.1", "2001:db8::1"]

#: token -> (tenant, ACLs), like tokens wazo-auth would have issued.
TOKENS = {
    "admin-token": (MASTER_TENANT, ["confd.#"]),
    "ha-only-token": (MASTER_TENANT, ["confd.ha.read", "confd.ha.update", "confd.ha.status.read"]),
    "reader-token": (MASTER_TENANT, ["confd.ha.read"]),
    "users-token": (MASTER_TENANT, ["confd.users.read"]),
    "other-tenant-token": (OTHER_TENANT, ["confd.#"]),
}
ADMIN = "admin-token"


class StandInWazoAuth:
    """wazo-auth's token check (``HEAD /0.1/token/{token}?scope={acl}``): 204, 403 or 404.

    ACL patterns as wazo-auth matches them: ``*`` one dot-separated word, ``#`` anything.
    """

    def __init__(self, tokens: dict[str, tuple[str, list[str]]]):
        self.tokens = tokens
        self.checked: list[tuple[str, str]] = []

    def check(self, token: str, acl: str) -> int:
        self.checked.append((token, acl))
        if token not in self.tokens:
            return TOKEN_UNKNOWN
        granted = self.tokens[token][1]
        return TOKEN_VALID if any(_acl_pattern(pattern).fullmatch(acl) for pattern in granted) else TOKEN_FORBIDDEN

    def tenant_uuid(self, token: str) -> str | None:
        return self.tokens[token][0] if token in self.tokens else None


def _acl_pattern(pattern: str) -> re.Pattern:
    return re.compile(re.escape(pattern).replace(r"\*", r"[^.]*").replace(r"\#", r".*"))


class RecordingBusPublisher:
    """Stands in for confd's ``bus_publisher`` (wazo-bus is not on PyPI): records what is published."""

    def __init__(self):
        self.published: list[Any] = []
        self._lock = threading.Lock()

    def publish(self, event, headers=None, routing_key=None):
        with self._lock:
            self.published.append(event)

    def names(self) -> list[str]:
        with self._lock:
            return [event.name for event in self.published]


@dataclass
class Node:
    """A sandboxed node: its wazo-ha settings file and the paths tests look at."""

    root: Path
    config_file: Path
    tree: dict[str, Any]

    @property
    def ha_conf(self) -> Path:
        return self.root / "etc/xivo/ha.conf"

    @property
    def cron_dir(self) -> Path:
        return self.root / "etc/cron.d"

    def settings(self) -> Settings:
        return Settings.load(str(self.config_file))


@pytest.fixture
def make_node(tmp_path):
    """``make_node(**overrides)``: a node with no default plugin (they need provd, PostgreSQL, ssh...)."""
    stores = []

    def make(**overrides) -> Node:
        root = tmp_path / "root"
        root.mkdir(exist_ok=True)
        tree = {
            "root": str(root),
            "local_addresses": LOCAL_ADDRESSES,
            "plugins": {group: [] for group in PLUGIN_NAMESPACES},
            "sip_expiry": {"enabled": False},
            "slave_db": {"enabled": False},
            "schedules": {"systemctl": ["true"]},
            "timeouts": {"command": 30},
            **overrides,
        }
        config_file = tmp_path / "wazo-ha.yml"
        config_file.write_text(yaml.safe_dump(tree))
        node = Node(root, config_file, tree)
        store = Store.from_settings(node.settings())
        store.upgrade()
        stores.append(store)
        return node

    yield make
    for store in stores:
        store.close()


@dataclass
class ConfdServer:
    """A Flask app with confd's ``Api(prefix="/1.1")``, the plugins loaded, served on loopback."""

    app: flask.Flask
    api: flask_restful.Api
    manager: NamedExtensionManager
    bus: RecordingBusPublisher
    auth: StandInWazoAuth
    port: int = 0
    _server: Any = None
    _thread: threading.Thread | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = ADMIN,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """(status, the JSON body decoded, the text of any other body, or None when empty)."""
        headers = {}
        if token is not None:
            headers["X-Auth-Token"] = token
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if data is not None:
            headers["Content-Type"] = content_type
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        if not payload.strip():
            return response.status, None
        if response.getheader("Content-Type", "").startswith("application/json"):
            return response.status, json.loads(payload)
        return response.status, payload.decode(errors="replace")

    def rules(self) -> set[str]:
        return {rule.rule for rule in self.app.url_map.iter_rules()}


def load_like_confd(enabled_plugins: dict[str, bool], dependencies: dict[str, Any]) -> NamedExtensionManager:
    """What confd does (``xivo.plugin_helpers.load``): by name, from ``enabled_plugins``, load errors only logged."""
    names = [name for name, enabled in enabled_plugins.items() if enabled]
    manager = NamedExtensionManager(
        namespace="wazo_confd.plugins",
        names=names,
        name_order=True,
        invoke_on_load=True,
        on_missing_entrypoints_callback=lambda missing: pytest.fail(f"entry points missing: {missing}"),
        on_load_failure_callback=lambda _manager, entrypoint, exc: pytest.fail(f"{entrypoint}: {exc}"),
    )
    manager.map(lambda extension: extension.obj.load(dependencies))
    return manager


@pytest.fixture
def start_confd():
    """``start_confd(node, enabled_plugins=..., before_load=None, authorizer=...)`` -> a running ConfdServer."""
    servers: list[ConfdServer] = []

    def start(
        node: Node,
        enabled_plugins: dict[str, bool] | None = None,
        before_load=None,
        with_authorizer: bool = True,
    ) -> ConfdServer:
        app = flask.Flask("wazo-confd-standin")
        api = flask_restful.Api(app, prefix="/1.1")
        if before_load:
            before_load(api)
        bus = RecordingBusPublisher()
        auth = StandInWazoAuth(TOKENS)
        dependencies = {
            "api": api,
            "config": {"wazo_ha": {"config_file": str(node.config_file)}},
            "bus_publisher": bus,
            "token_changed_subscribe": lambda callback: None,
        }
        if with_authorizer:
            dependencies["wazo_ha_authorizer"] = TokenAuthorizer(auth, MASTER_TENANT)
        manager = load_like_confd(enabled_plugins or {"ha": False, "wazo_ha": True}, dependencies)
        server = ConfdServer(app, api, manager, bus, auth)
        server._server = make_server("127.0.0.1", 0, app, threaded=True)
        server.port = server._server.server_port
        server._thread = threading.Thread(target=server._server.serve_forever, name="confd-standin", daemon=True)
        server._thread.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server._server.shutdown()
        server._thread.join(timeout=10)
        for extension in server.manager.extensions:
            if extension.obj.service is not None:
                extension.obj.service.close()
