"""The ``ha_edited`` bus event, as wazo-confd's own HA plugin publishes it.

Inside confd, wazo-bus's own class is used (``wazo_bus``, or ``xivo_bus`` on
older releases). Where wazo-bus is not installed (it is not on PyPI: the tests,
another host), :class:`HAEdited` follows the same contract: a service event
named ``ha_edited`` with routing key ``config.ha.edited`` and an empty payload.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

log = logging.getLogger(__name__)


class HAEdited:
    """Same attributes as wazo-bus's ``HAEditedEvent`` (``name``, ``routing_key``, ``marshal()``, ``headers``)."""

    service = "confd"
    name = "ha_edited"
    routing_key_fmt = "config.ha.edited"

    def __init__(self) -> None:
        self.content: dict[str, Any] = {}

    @property
    def routing_key(self) -> str:
        return self.routing_key_fmt

    @property
    def required_access(self) -> str:
        return f"event.{self.name}"

    @property
    def headers(self) -> dict[str, Any]:
        return {"name": self.name}

    def marshal(self) -> dict[str, Any]:
        return dict(self.content)

    def __repr__(self) -> str:
        return f"<Event: {self.name} (routing key {self.routing_key})>"


def ha_edited_event() -> Any:
    """wazo-bus's ``HAEditedEvent`` when importable, else :class:`HAEdited`."""
    for module in ("wazo_bus.resources.ha.event", "xivo_bus.resources.ha.event"):
        try:
            event_class = importlib.import_module(module).HAEditedEvent
        except (ImportError, AttributeError):
            continue
        return event_class()
    return HAEdited()


class EditedPublisher:
    """The engine's edit listener: one ``ha_edited`` per effective edit, through confd's ``bus_publisher``."""

    def __init__(self, bus_publisher: Any):
        self.bus_publisher = bus_publisher

    def __call__(self, before, after) -> None:
        # The engine calls this only after a successful edit that changed something,
        # and logs (without undoing the edit) if publishing fails.
        self.bus_publisher.publish(ha_edited_event())
        log.info("published ha_edited (%s -> %s)", before.node_type, after.node_type)
