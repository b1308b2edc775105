"""Which ``userfeatures`` columns are the users' own statuses, in groups that travel together.

Checked against Wazo's schema (``asterisk-schema.sql``, table ``userfeatures``)
and the user services Wazo exposes to phones and apps: do not disturb,
incoming call filtering, the three forwards (unconditional, no answer, busy;
each a switch plus a destination) and the voicemail switch. A group is merged
as a whole: taking ``enableunc`` from one side and ``destunc`` from the other
would build a forward that nobody set.

Everything else in ``userfeatures`` (names, caller id, ring times, recording
rules, …) is administrators' configuration and follows the ordinary
replication rules.
"""

from __future__ import annotations

STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "dnd": ("enablednd",),
    "incallfilter": ("incallfilter",),
    "forward_unconditional": ("enableunc", "destunc"),
    "forward_noanswer": ("enablerna", "destrna"),
    "forward_busy": ("enablebusy", "destbusy"),
    "voicemail": ("enablevoicemail",),
}

STATUS_TABLE = "userfeatures"
STATUS_KEY = "uuid"  # how Wazo's APIs name a user

STATUS_COLUMNS: tuple[str, ...] = tuple(column for group in STATUS_GROUPS.values() for column in group)

#: The replication figure counting the groups of statuses written on the master (carried back from the slave): a
#: run with it is journaled even when it copied nothing to the slave (it changed the master).
CARRIED_BACK_FIGURE = "statuses_to_master"

#: Per table, the columns whose changes on a serving slave are the failover's own doing: the check for
#: slave-side configuration edits (:mod:`wazo_ha_plugins.pg_dump.slave_changes`) ignores them.
FAILOVER_COLUMNS: dict[str, tuple[str, ...]] = {STATUS_TABLE: STATUS_COLUMNS}
