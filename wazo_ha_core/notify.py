"""Telling people: a mail to root and callbacks for the embedding application.

Today's Wazo mails root when replication fails. We do that for every event an
operator must hear about — a failed replication or sync, a failover, a
failback — through the local ``sendmail`` when there is one, and call the
hooks an embedding application registered (``engine.notifier.hooks``).
A notification that cannot be delivered is logged; it never fails the
operation it reports.
"""

from __future__ import annotations

import logging
import socket
import subprocess
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

from .journal import Event

log = logging.getLogger(__name__)

#: ``hook(subject, event)``: called for every notifiable event.
NotificationHook = Callable[[str, Event], None]


def subject_for(event: Event) -> str | None:
    """The mail subject for an event worth a notification, or ``None``."""
    host = socket.gethostname()
    if event.kind in ("replication", "sync") and event.outcome == "failed":
        return f"wazo-ha on {host}: {event.kind} failed"
    if event.kind == "replication" and event.outcome == "refused" and event.figures.get("slave_changes"):
        return f"wazo-ha on {host}: replication refused, the slave's configuration was edited"
    if event.kind in ("switchover", "switchback") and event.outcome == "failed":
        return f"wazo-ha on {host}: {event.kind} failed"
    if event.kind == "copy-back":
        return _copy_back_subject(event, host)
    if event.kind in ("failover", "failback") and event.outcome == "ok":
        return f"wazo-ha on {host}: {event.kind}"
    return None


def _copy_back_subject(event: Event, host: str) -> str | None:
    """A failed run is told; an automatic retry that fails again is not (the streak was told once, at its
    first failure); the run that ends a told streak is told too (docs/copy_back.rst)."""
    streak = event.figures.get("streak_notified")
    if event.outcome in ("failed", "partial"):
        if event.figures.get("automatic") and streak:
            return None
        what = "failed" if event.outcome == "failed" else "left items on the slave"
        return f"wazo-ha on {host}: copy-back {what}"
    if event.outcome == "ok" and streak:
        return f"wazo-ha on {host}: copy-back succeeded again, nothing owed to the master any more"
    return None


class Notifier:
    def __init__(self, mail_to: str | None, sendmail: Path, timeout: float = 30.0):
        self.mail_to = mail_to
        self.sendmail = sendmail
        self.timeout = timeout
        self.hooks: list[NotificationHook] = []
        self._warned_no_sendmail = False

    @classmethod
    def from_settings(cls, settings) -> Notifier:
        # sendmail is a program of this node, not of the sandbox: not resolved under root.
        return cls(settings.get("notifications.mail_to"), Path(settings.get("notifications.sendmail")))

    def on_event(self, event: Event) -> None:
        """Journal listener."""
        subject = subject_for(event)
        if subject is None:
            return
        for hook in self.hooks:
            try:
                hook(subject, event)
            except Exception:
                log.exception("notification hook %r failed", hook)
        if self.mail_to:
            self._mail(subject, event)

    def _mail(self, subject: str, event: Event) -> None:
        if not self.sendmail.exists():
            if not self._warned_no_sendmail:
                log.warning("no %s: %r not mailed to %s", self.sendmail, subject, self.mail_to)
                self._warned_no_sendmail = True
            return
        message = EmailMessage()
        message["To"] = self.mail_to
        message["Subject"] = subject
        lines = [
            f"{event.kind}: {event.outcome}",
            f"started: {event.started_at.isoformat()}",
            f"ended:   {event.ended_at.isoformat() if event.ended_at else '-'}",
        ]
        if event.message:
            lines.append(f"message: {event.message}")
        for key, value in sorted(event.figures.items()):
            lines.append(f"{key}: {value}")
        message.set_content("\n".join(lines) + "\n")
        try:
            # -t: recipients from the headers, so nothing from the event reaches argv.
            subprocess.run(
                [str(self.sendmail), "-t", "-oi"],
                input=message.as_bytes(),
                check=True,
                capture_output=True,
                timeout=self.timeout,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("could not mail %r to %s: %s", subject, self.mail_to, exc)
