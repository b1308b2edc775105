"""The users' own status columns: what a user changes from a phone while a node serves.

A user toggles do-not-disturb, call filtering, forwards and voicemail from
the phone (star codes, function keys, the apps); Asterisk's AGIs write the
choice into ``userfeatures``. While the slave serves after a failover these
writes land on the slave: they are the failover's own doing, not an
administrator's configuration edit. So:

* the check for slave-side configuration edits (:mod:`wazo_ha_plugins.pg_dump.slave_changes`)
  ignores these columns: a DND toggled on the slave never blocks a replication;
* what becomes of them at failback (kept from the slave or the master) is the
  merge of issue 18; until then the master's values win, as in Wazo's HA.

The one list; every module that treats these columns differently imports it.
"""

from __future__ import annotations

#: Table holding the users' status columns.
USER_TABLE = "userfeatures"

#: Columns of :data:`USER_TABLE` a user sets from the phone (DND, incoming call filter,
#: unconditional / no-answer / busy forwards with their destinations, voicemail on/off).
USER_STATUS_COLUMNS: tuple[str, ...] = (
    "enablednd",
    "incallfilter",
    "enableunc",
    "destunc",
    "enablerna",
    "destrna",
    "enablebusy",
    "destbusy",
    "enablevoicemail",
)

#: Per table, the columns whose changes on a serving slave are the failover's own doing.
FAILOVER_COLUMNS: dict[str, tuple[str, ...]] = {USER_TABLE: USER_STATUS_COLUMNS}
