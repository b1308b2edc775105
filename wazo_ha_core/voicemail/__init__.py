"""Voicemail spool (Asterisk app_voicemail file storage): layout model and copy-back merge, pure.

Not wired in yet: the failback copy-back and the master→slave sync will call
:func:`plan_copy_back` with listings they build; see docs/voicemail.rst.
"""

from .layout import FOLDERS, GREETINGS, FileInfo, Mailbox, Message, Spool, parse_tree
from .merge import Conflict, CopyFile, MessageMove, Overflow, Plan, apply_to_listing, plan_copy_back

__all__ = [
    "FOLDERS",
    "GREETINGS",
    "Conflict",
    "CopyFile",
    "FileInfo",
    "Mailbox",
    "Message",
    "MessageMove",
    "Overflow",
    "Plan",
    "Spool",
    "apply_to_listing",
    "parse_tree",
    "plan_copy_back",
]
