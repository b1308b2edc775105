"""The event journal: what happened, when, how long it took and how it ended.

Every edit, replication, sync, failover and failback is one :class:`Event`,
appended once when it ends (the journal is append-only). :meth:`Journal.record`
wraps an operation so that its outcome is journaled whether it returns or raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger(__name__)

#: Outcomes an event can end with.
OUTCOMES = ("ok", "skipped", "unchanged", "failed", "refused")


@dataclass
class Event:
    kind: str
    started_at: datetime
    ended_at: datetime | None = None
    outcome: str = "ok"
    message: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    id: int | None = None

    @property
    def duration(self) -> float | None:
        if self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "duration": self.duration,
            "outcome": self.outcome,
            "message": self.message,
            "figures": self.figures,
        }


class Journal:
    """Appends events to a sink (the store) and tells listeners about each one."""

    def __init__(self, append: Callable[[Event], None]):
        self._append = append
        self.listeners: list[Callable[[Event], None]] = []

    def append(self, event: Event) -> None:
        if event.ended_at is None:
            event.ended_at = utcnow()
        self._append(event)
        self.notify(event)

    def notify(self, event: Event) -> None:
        """Tell listeners about an event already written (e.g. in the same transaction as an edit)."""
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:  # a broken listener must not hide the event or fail the operation
                log.exception("journal listener %r failed on a %s event", listener, event.kind)

    @contextmanager
    def record(self, kind: str) -> Iterator[Event]:
        """Journal the enclosed operation; an exception marks it ``failed`` and is re-raised."""
        event = Event(kind=kind, started_at=utcnow())
        try:
            yield event
        except BaseException as exc:
            event.outcome = "failed"
            event.message = event.message or str(exc) or type(exc).__name__
            event.ended_at = utcnow()
            self.append(event)
            raise
        event.ended_at = utcnow()
        self.append(event)


def utcnow() -> datetime:
    return datetime.now(UTC)
