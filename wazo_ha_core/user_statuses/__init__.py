"""Users' own statuses (DND, call filtering, forwards, voicemail toggle) across failover and failback.

These ``userfeatures`` columns are changed by the users themselves, from their
phones (feature codes) or apps, not by an administrator. A slave serving
telephony collects such changes; they must go back to the master on failback,
neither overwritten by the next replication nor blocking it as a slave-side
configuration edit.

- :mod:`.groups` names the columns, grouped so that a forward's switch and its
  destination always travel together;
- :mod:`.merge` is the pure three-way merge deciding, per user and group, which
  side's value the master keeps.

The check for slave-side configuration edits ignores these columns
(:data:`FAILOVER_COLUMNS`): a DND toggled on the serving slave never blocks a
replication.
"""

from .groups import CARRIED_BACK_FIGURE, FAILOVER_COLUMNS, STATUS_COLUMNS, STATUS_GROUPS, STATUS_TABLE

__all__ = ["CARRIED_BACK_FIGURE", "FAILOVER_COLUMNS", "STATUS_COLUMNS", "STATUS_GROUPS", "STATUS_TABLE"]
