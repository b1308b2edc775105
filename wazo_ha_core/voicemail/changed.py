"""Which mailboxes a copy-back changed on the master, and whether their names may go to Asterisk (pure).

app_voicemail sends message-waiting notifications only for changes it makes
itself; files placed by another program are seen when it next counts the
mailbox. The copy-back asks it to recount each mailbox whose folders it
changed (messages added, renumbered, removed or moved to another folder), and
no other: :func:`from_plan` (the additive plan, no base) and
:func:`from_side_plan` (the master's side of the two-way merge) list them.
Greetings do not count: they change no message count.

The names come from directory names on disk, so :func:`refusal` checks each
one (full-string match) before it becomes a header of a request.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from .layout import short
from .merge import Plan
from .threeway import SidePlan

MailboxKey = tuple[str, str]  # (context, mailbox), as the spool's directories name them

#: voicemail.conf context names as Wazo writes them (tenant slugs, ``default``…): no ``@`` (it
#: separates mailbox and context in Asterisk's ``mailbox@context``), no spaces, no control characters.
CONTEXT_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,79}")
#: Mailbox numbers: digits in Wazo; letters, ``_``, ``.``, ``+`` and ``-`` allowed too; never ``@``.
MAILBOX_NAME = re.compile(r"[A-Za-z0-9_+][A-Za-z0-9_.+-]{0,79}")


def from_plan(plan: Plan, done: Iterable[tuple[str, str, int]] | None = None) -> set[MailboxKey]:
    """Mailboxes receiving a message in the additive ``plan``.

    ``done``: the ``(mailbox path, folder, slave number)`` of the moves actually
    carried out; without it every planned move counts.
    """
    finished = None if done is None else set(done)
    changed = set()
    for move in plan.messages:
        if finished is None or (move.mailbox, move.folder, move.slave_number) in finished:
            changed.add(_key(move.mailbox))
    return changed


def from_side_plan(side: SidePlan) -> set[MailboxKey]:
    """Mailboxes with any message operation (copy, delete, move, renumbering) in one side's plan."""
    return {_key(op.mailbox) for op in side.messages}


def refusal(context: str, mailbox: str) -> str | None:
    """Why ``(context, mailbox)`` must not be sent to Asterisk (``None``: it may), naming the value."""
    if not isinstance(context, str) or not CONTEXT_NAME.fullmatch(context):
        return f"voicemail context {short(context)} is not a context name (letters, digits, _ . + -): refused"
    if not isinstance(mailbox, str) or not MAILBOX_NAME.fullmatch(mailbox):
        return (
            f"voicemail mailbox {short(mailbox)} in context {short(context)} is not a mailbox name "
            "(letters, digits, _ . + -): refused"
        )
    return None


def _key(path: str) -> MailboxKey:
    context, _, mailbox = path.partition("/")
    return (context, mailbox)
