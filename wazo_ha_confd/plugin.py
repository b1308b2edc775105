"""The entry point wazo-confd loads: ``wazo_confd.plugins: wazo_ha``.

confd builds :class:`Plugin` with no arguments and calls ``load(dependencies)``
with, among others, ``api`` (a ``flask_restful.Api`` with prefix ``/1.1``),
``config`` (confd's configuration) and ``bus_publisher``. A load error is only
logged by confd, so every refusal here says what to fix.

Optional, in confd's configuration::

    wazo_ha:
      config_file: /etc/wazo-ha/config.yml   # the library's settings (default: $WAZO_HA_CONFIG or that path)
"""

from __future__ import annotations

import logging
from typing import Any

from wazo_ha_core.engine import HAEngine

from .auth import Authorizer, confd_authorizer
from .bus import EditedPublisher
from .resources import build_resources
from .service import HAService

log = logging.getLogger(__name__)

HA_URL = "/ha"
STATUS_URL = "/ha/status"
#: Not flask-restful's default (the class name), so confd's own plugin cannot collide with it.
ENDPOINTS = {HA_URL: "wazo_ha.ha", STATUS_URL: "wazo_ha.ha_status"}


class PluginLoadRefused(RuntimeError):
    """The plugin will not serve ``/ha``; the message says why and what to change."""


class Plugin:
    def __init__(self) -> None:
        self.service: HAService | None = None

    def load(self, dependencies: dict[str, Any]) -> None:
        api = dependencies["api"]
        config = dependencies.get("config") or {}
        # Not a confd key: only a host without confd's verifier (the tests) passes one.
        authorizer: Authorizer | None = dependencies.get("wazo_ha_authorizer") or confd_authorizer()
        if authorizer is None:
            raise PluginLoadRefused(
                "wazo_ha: wazo-confd's auth module (wazo_confd.auth) is not importable and no authorizer "
                "was given; refusing to serve /ha without ACL checks"
            )
        refuse_if_already_served(api)
        config_file = (config.get("wazo_ha") or {}).get("config_file")
        self.service = HAService(
            engine_factory=lambda: HAEngine.from_config(config_file),
            on_edited=EditedPublisher(dependencies["bus_publisher"]),
        )
        ha_resource, status_resource = build_resources(authorizer)
        api.add_resource(ha_resource, HA_URL, endpoint=ENDPOINTS[HA_URL], resource_class_args=(self.service,))
        api.add_resource(
            status_resource, STATUS_URL, endpoint=ENDPOINTS[STATUS_URL], resource_class_args=(self.service,)
        )
        log.info("wazo_ha: serving %s%s and %s%s through wazo-ha", api.prefix, HA_URL, api.prefix, STATUS_URL)


def refuse_if_already_served(api: Any) -> None:
    """Refuse when another plugin (confd's own ``ha``) already serves ``/ha``: both would edit the node."""
    app = getattr(api, "app", None)
    if app is None:  # an Api bound later (blueprint): nothing to inspect yet
        return
    wanted = f"{api.prefix}{HA_URL}"
    for rule in app.url_map.iter_rules():
        if rule.rule == wanted:
            raise PluginLoadRefused(
                f"wazo_ha: {wanted} is already served by endpoint {rule.endpoint!r} (wazo-confd's own ha plugin?); "
                "set enabled_plugins: {ha: false, wazo_ha: true} in wazo-confd's configuration"
            )
