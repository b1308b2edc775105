"""Taking over and giving back telephony across the enabled service managers.

Take over runs the managers in configured order, give back in reverse order.
Both are best effort: a manager that fails does not stop the others, and the
failures are raised together at the end (:class:`ServiceSwitchError`). During
a failover the master is gone, so undoing the managers that did start would
leave the phones with nobody; during a give back, stopping as much as
possible is what frees the master's way.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from .errors import PluginError, ServiceSwitchError
from .extensions import ServiceManager, ServiceState
from .logs import REPORTED

log = logging.getLogger(__name__)

TAKE_OVER, GIVE_BACK = "take over", "give back"


class ServiceControl:
    def __init__(self, managers: Sequence[ServiceManager]):
        self.managers = list(managers)

    def take_over(self, token: int | None = None) -> dict[str, Any]:
        """Start every manager in order; with a fencing ``token`` (coordinated mode) each gets it first."""
        return self._switch(TAKE_OVER, self.managers, token)

    def give_back(self) -> dict[str, Any]:
        return self._switch(GIVE_BACK, list(reversed(self.managers)))

    def status(self) -> list[tuple[str, ServiceState]]:
        """Each manager's state; one that raises is reported as unknown with its error."""
        states = []
        for manager in self.managers:
            try:
                states.append((manager.name, manager.status()))
            except Exception as exc:  # a status probe must not hide the others
                states.append((manager.name, ServiceState(None, f"status failed: {exc}")))
        return states

    def is_active(self) -> bool:
        """Whether any manager says its services are taken over here."""
        return any(state.active for _, state in self.status())

    def active_calls(self) -> int | None:
        """Calls carried here, summed over the managers that can tell; ``None`` when none can."""
        counts = []
        for manager in self.managers:
            try:
                count = manager.active_calls()
            except Exception as exc:
                log.warning("%s cannot count active calls: %s", manager.name, exc)
                count = None
            if count is not None:
                counts.append(count)
        return sum(counts) if counts else None

    def _switch(self, action: str, managers: list[ServiceManager], token: int | None = None) -> dict[str, Any]:
        failures: dict[str, str] = {}
        done = []
        for manager in managers:
            try:
                if action == TAKE_OVER:
                    if token is not None:
                        manager.accept_token(token)
                    manager.start()
                else:
                    manager.stop()
                done.append(manager.name)
            except Exception as exc:  # any manager error; a non-PluginError is a plugin bug, logged with its trace
                if not isinstance(exc, PluginError):
                    log.exception("%s %s: unexpected error", manager.name, action)
                failures[manager.name] = str(exc) or type(exc).__name__
                log.error("%s %s failed: %s", manager.name, action, failures[manager.name], extra=REPORTED)
        if failures:
            raise ServiceSwitchError(action, failures)
        figures: dict[str, Any] = {"managers": done}
        if token is not None:
            figures["token"] = token
        return figures
