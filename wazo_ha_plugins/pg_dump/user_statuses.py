"""Before each copy, the users' statuses the slave collected go to the master (issue 18; rules in
:mod:`wazo_ha_core.user_statuses.merge`).

A serving slave takes its users' DND, call filter, forwards and voicemail
switch from their phones. The next copy would overwrite them with the
master's; instead, each run first compares both servers with the *baseline*
(the statuses of the last verified copy, kept in the plugin's state), writes
on the master the groups that only the slave changed (or changed later), and
commits that before the copy's snapshot is taken, so the same run carries the
merged values back to the slave. A standby slave changes nothing, so in normal
operation a run only reads both sides.

Timing: every slave change is taken as made after any master change still
unreplicated (the master's were made before the failure, the slave's while it
served); two changes between two runs on both sides, the slave's wins.
Updates on the master are compare-and-set: a master row changed since it was
read is left alone and planned again next run.

Kept small on purpose: only users whose statuses differ from the schema's
defaults are stored in the baseline (a user absent from it has the defaults).

Cheap when the slave changed nothing (a standby, i.e. nearly every run): the
slave is asked only for its users whose statuses differ from the defaults
(the server filters; a few rows), and when those equal the baseline no
status can have changed on the slave, so nothing can go to the master: the
run reads nothing more, opens no master session and plans nothing (its
figures then hold ``statuses_to_master`` and ``status_conflicts``, both 0,
and not the two counts that need the master's statuses). Reading and merging every
user's statuses on both sides cost about 1 s of CPU per run at 20,000 users,
which follow mode pays at every change.
"""

from __future__ import annotations

from psycopg2 import sql

from wazo_ha_core.user_statuses.groups import STATUS_COLUMNS, STATUS_GROUPS, STATUS_KEY, STATUS_TABLE
from wazo_ha_core.user_statuses.merge import WHILE_SERVING, Side, StatusPlan, plan_status_merge

BASELINE_KEY = "user_statuses"
Statuses = dict[str, dict[str, tuple]]  # user uuid → group → values


def default_values(group: str) -> tuple:
    """The schema's defaults: switches 0, destinations '' (every column is NOT NULL)."""
    return tuple("" if column.startswith("dest") else 0 for column in STATUS_GROUPS[group])


DEFAULTS = {group: default_values(group) for group in STATUS_GROUPS}


def has_status_columns(cursor) -> bool:
    cursor.execute(
        "SELECT count(*) FROM information_schema.columns "
        "WHERE table_schema = 'public' AND table_name = %s AND column_name = ANY(%s)",
        (STATUS_TABLE, [STATUS_KEY, *STATUS_COLUMNS]),
    )
    return cursor.fetchone()[0] == len(STATUS_COLUMNS) + 1


def read_statuses(cursor, *, not_defaults: bool = False) -> Statuses:
    """Every user's statuses; with ``not_defaults``, only the users with a status not at the schema's default."""
    columns = sql.SQL(", ").join(map(sql.Identifier, STATUS_COLUMNS))
    query = sql.SQL("SELECT {key}, {columns} FROM public.{table}").format(
        key=sql.Identifier(STATUS_KEY), columns=columns, table=sql.Identifier(STATUS_TABLE)
    )
    if not_defaults:
        defaults = [value for group in STATUS_GROUPS for value in DEFAULTS[group]]
        query += sql.SQL(" WHERE ({}) IS DISTINCT FROM ({})").format(
            columns, sql.SQL(", ").join(map(sql.Literal, defaults))
        )
    cursor.execute(query)
    statuses: Statuses = {}
    for key, *values in cursor.fetchall():
        groups, position = {}, 0
        for group, columns in STATUS_GROUPS.items():
            groups[group] = tuple(values[position : position + len(columns)])
            position += len(columns)
        statuses[key] = groups
    return statuses


def compact(statuses: Statuses) -> dict[str, dict[str, list]]:
    """Only the users and groups that differ from the defaults, JSON-ready."""
    kept = {}
    for user, groups in statuses.items():
        differing = {group: list(values) for group, values in groups.items() if values != DEFAULTS[group]}
        if differing:
            kept[user] = differing
    return kept


def expand(stored: dict[str, dict[str, list]] | None, users) -> Statuses:
    stored = stored or {}
    return {
        user: {group: tuple(stored.get(user, {}).get(group, DEFAULTS[group])) for group in STATUS_GROUPS}
        for user in users
    }


class SlaveUnchanged(StatusPlan):
    """The plan when the slave holds the baseline: nothing to the master, no conflict (nothing else was read)."""

    def figures(self) -> dict[str, int]:
        return {"statuses_to_master": 0, "status_conflicts": 0}


def carry_back(connect_master, slave_cursor, state) -> StatusPlan | None:
    """Merge the slave's status changes into the master and commit them; ``None`` when there is nothing to
    compare with (no verified copy yet, or a database without Wazo's ``userfeatures``), :class:`SlaveUnchanged`
    when the slave's statuses are the baseline's (then nothing is read on the master).

    ``connect_master`` opens a new read-write session on the master (closed here); ``slave_cursor`` is the
    run's slave transaction, which holds the replication lock. Raises psycopg2 errors as the run does.
    """
    stored = state.get(BASELINE_KEY)
    if stored is None or not has_status_columns(slave_cursor):
        return None
    if compact(read_statuses(slave_cursor, not_defaults=True)) == stored:
        return SlaveUnchanged()  # the slave changed no status: nothing can go to the master
    slave = read_statuses(slave_cursor)
    connection = connect_master()
    try:
        cursor = connection.cursor()
        master = read_statuses(cursor)
        baseline = expand(stored, master.keys() | slave.keys())
        plan = plan_status_merge(
            baseline,
            {user: {group: Side(values) for group, values in groups.items()} for user, groups in master.items()},
            {
                user: {group: Side(values, WHILE_SERVING) for group, values in groups.items()}
                for user, groups in slave.items()
            },
        )
        plan.to_master = [update for update in plan.to_master if _compare_and_set(cursor, update)]
        connection.commit()
        return plan
    finally:
        connection.close()


def _compare_and_set(cursor, update) -> bool:
    """Write one group on the master only if it still holds what the plan read."""
    names = list(update.columns())
    statement = sql.SQL(
        "UPDATE public.{table} SET {assignments} WHERE {key} = %s AND ROW({names}) IS NOT DISTINCT FROM ROW({slots})"
    ).format(
        table=sql.Identifier(STATUS_TABLE),
        assignments=sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(name)) for name in names),
        key=sql.Identifier(STATUS_KEY),
        names=sql.SQL(", ").join(map(sql.Identifier, names)),
        slots=sql.SQL(", ").join([sql.Placeholder()] * len(names)),
    )
    cursor.execute(statement, (*update.values, update.user, *update.expected))
    return cursor.rowcount == 1


def read_baseline(slave_cursor) -> dict | None:
    """In the run's slave transaction, after the verified copy: the statuses both servers now hold."""
    if not has_status_columns(slave_cursor):
        return None
    return compact(read_statuses(slave_cursor, not_defaults=True))


def keep_baseline(state, baseline: dict | None) -> None:
    """Once the slave committed (never before: a baseline the slave does not hold would read as slave
    changes and undo the master's). Written only when it changed."""
    if baseline is not None and state.get(BASELINE_KEY) != baseline:
        state.set(BASELINE_KEY, baseline)
