"""Voicemail spool (Asterisk app_voicemail file storage) on both nodes; see docs/voicemail.rst.

Pure: :mod:`.layout` (the model of a spool from a listing), :mod:`.threeway` (the two-way rules: a
three-way merge against the base, each side's plan), :mod:`.merge` (the additive copy-back plan, used
without a base). With I/O: :mod:`.apply` (the base file, a plan carried out on a live spool) and
:mod:`.sync_step` (the master → slave step of the file sync and its guard).
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
