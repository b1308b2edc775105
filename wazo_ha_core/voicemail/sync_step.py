"""Voicemail master → slave: the spool joins the file sync only when mirroring it erases nothing the slave has.

The sync mirrors (rsync ``--delete``): on a slave that recorded messages
while serving, or whose owners deleted or moved some, a mirror would erase
that. So before each sync the master pulls the slave's spool (the file-sync
backend's ``pull`` with ``mirror``, into ``<copy_back.staging_dir>/voicemail-sync/<plugin>/<peer>``)
and merges three ways (:mod:`.threeway`) against the base of the last mirror:

* the merge changes nothing on the master → the slave holds nothing the
  master lacks → the spool is mirrored with the other directories, and once
  the mirror is complete (rsync exit 0) the base becomes the master's spool
  as listed before the transfer;
* otherwise a copy-back is owed (the slave served, or still serves): the
  spool is left out of this sync, the event says why (``voicemail:
  held``, ``voicemail_copy_back_owed``) and a warning names the first
  differences, until ``wazo-ha copy-back`` has merged them (it then moves the
  base, and the next sync mirrors again).

Figures in the ``sync`` event: what the mirror carries to the slave
(``voicemail_to_slave_copied``, ``_deleted``, ``_moved``, ``_renumbered``,
``_greetings``). Left to say: a slave that starts serving between the pull
and the end of the transfer (a second or so) could lose what it recorded in
that window; the slave's watch takes several probe rounds to fail over, and
the master stops syncing once it is no longer the master.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import NotInitialised, PluginError, UnsupportedOperation
from .apply import base_file, load_base, save_base
from .layout import MAX_MESSAGES_LIMIT, parse_tree
from .threeway import Base, changes_for, leftovers, merge, real_problems

if TYPE_CHECKING:
    from ..extensions import FileSyncBackend
    from ..settings import Settings

SYNC_STAGING = "voicemail-sync"


@dataclass
class VoicemailGate:
    path: str  # the spool, as a node path (copy_back.voicemail_dir)
    include: bool = False
    figures: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    base_after: Base | None = None
    base_path: Path | None = None
    by_content: bool = False  # a file name the mirror keeps holds other bytes on the slave: compare by content

    def settle(self, result_figures: dict[str, Any], outcome: str) -> None:
        """After the sync: keep the base of a complete mirror (rsync exit 0); a partial one keeps the old base."""
        if self.include and outcome == "synced" and result_figures.get("rsync_exit") == 0:
            assert self.base_after is not None and self.base_path is not None
            save_base(self.base_path, self.base_after)
            self.figures["voicemail"] = "mirrored"
        elif self.include:
            self.figures["voicemail"] = "incomplete"
            self.warnings.append("voicemail: the mirror was not complete; its base is kept for the next sync")


def voicemail_gate(settings: Settings, backend: FileSyncBackend, peer: str) -> VoicemailGate | None:
    """Decide whether this sync may mirror the voicemail spool to ``peer`` (module docstring); None when off."""
    from ..copy_back.files import listing

    if not settings.get("file_sync.voicemail"):
        return None
    spool = str(settings.get("copy_back.voicemail_dir"))
    gate = VoicemailGate(spool, figures={"voicemail": "held"})
    live = settings.resolve(spool)
    if not live.is_dir():
        gate.figures["voicemail"] = "absent"
        return gate
    staging_root = settings.resolve(settings.get("copy_back.staging_dir"), key="copy_back.staging_dir")
    gate.base_path = base_file(staging_root, peer)
    staged_root = staging_root / SYNC_STAGING / backend.name / peer.replace(":", "_")
    problems: list[str] = []
    try:
        backend.pull(peer, [spool], staged_root, mirror=True)
    except (UnsupportedOperation, NotInitialised, PluginError) as exc:
        gate.warnings.append(f"voicemail not mirrored: cannot read the slave's spool to check it first ({exc})")
        return gate
    base = load_base(gate.base_path, problems)
    master_listing = listing(live, problems)
    slave_listing = listing(staged_root / spool.strip("/"), problems)
    master, slave = parse_tree(master_listing), parse_tree(slave_listing)
    merged = merge(master, slave, base, max_messages=MAX_MESSAGES_LIMIT)
    owed = changes_for(master, merged)
    # Files of the slave's spool the merge cannot read would be erased by a mirror: held until someone looks.
    # Not counted: what a mirror cut short left there (the master's own files; the next mirror completes them).
    cut_short = leftovers(slave_listing, slave, base, master)
    owed += [f"not understood on the slave: {problem}" for problem in real_problems(slave, cut_short)]
    gate.figures.update(merged.slave.figures("voicemail_to_slave"))
    gate.figures["voicemail_copy_back_owed"] = len(owed)
    gate.warnings += [f"voicemail: {problem}" for problem in problems]
    if owed:
        shown = "; ".join(owed[:3]) + (f"; and {len(owed) - 3} more" if len(owed) > 3 else "")
        gate.warnings.append(
            f"voicemail not mirrored to {peer}: the slave holds {len(owed)} change(s) the master does not have "
            f"(it served, or serves): run `wazo-ha copy-back` first. {shown}"
        )
        return gate
    gate.include, gate.base_after = True, Base.of(master)
    gate.by_content = any(
        slave_listing[name].digest != info.digest for name, info in master_listing.items() if name in slave_listing
    )
    return gate
