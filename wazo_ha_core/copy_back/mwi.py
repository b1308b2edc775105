"""After a copy-back: have Asterisk recount the mailboxes whose folders changed (message-waiting lamps).

The service managers own telephony on this node, so they do it
(:meth:`~wazo_ha_core.extensions.ServiceManager.refresh_mailboxes`;
``wazo_services`` sends AMI ``VoicemailRefresh`` through wazo-amid). A refresh
never fails the copy-back: the files are already safe, and app_voicemail
counts the mailbox again at its next poll or when its owner next calls in.
Each mailbox not refreshed is a *notice* (a warning that leaves the outcome
``ok``) naming it; the figures are ``mwi_refreshed`` and ``mwi_failed``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..errors import PluginError, UnsupportedOperation
from ..voicemail.changed import MailboxKey, refusal

log = logging.getLogger(__name__)


@dataclass
class Refreshed:
    refreshed: int = 0
    failed: int = 0
    notices: list[str] = field(default_factory=list)

    def figures(self) -> dict[str, int]:
        return {"mwi_refreshed": self.refreshed, "mwi_failed": self.failed}


def refresh(managers: Iterable, mailboxes: Iterable[MailboxKey]) -> Refreshed:
    """Ask the first service manager that can to recount ``mailboxes``; never raises (see the module docstring)."""
    result = Refreshed()
    wanted: list[MailboxKey] = []
    for context, mailbox in sorted(set(mailboxes)):
        problem = refusal(context, mailbox)
        if problem is not None:
            result.failed += 1
            result.notices.append(f"message-waiting not refreshed: {problem}")
        else:
            wanted.append((context, mailbox))
    if not wanted:
        return result
    for manager in managers:
        try:
            answer = manager.refresh_mailboxes(wanted)
        except UnsupportedOperation:
            continue
        except Exception as exc:  # a PluginError, or a plugin bug: every mailbox failed for that reason
            if not isinstance(exc, PluginError):
                log.exception("service manager %r failed to refresh mailboxes", manager.name)
            reason = str(exc) or type(exc).__name__
            answer_failed = {f"{context}/{mailbox}": reason for context, mailbox in wanted}
            answer_refreshed = 0
        else:
            answer_failed = dict(answer.figures.get("failed") or {})
            answer_refreshed = int(answer.figures.get("refreshed") or 0)
        result.refreshed += answer_refreshed
        result.failed += len(answer_failed)
        result.notices += [
            f"message-waiting of voicemail {where} not refreshed by {manager.name}: {reason}"
            for where, reason in sorted(answer_failed.items())
        ]
        return result
    result.failed += len(wanted)
    result.notices.append(
        f"message-waiting of {len(wanted)} voicemail mailbox(es) not refreshed: no service manager can "
        f"({', '.join(f'{c}/{m}' for c, m in wanted[:10])}); Asterisk counts them again at its next poll"
    )
    return result
