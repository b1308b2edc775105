"""Three-way merge of the users' statuses at failback (pure: reads and writes nothing).

Inputs, per user (by uuid) and status group (:data:`.groups.STATUS_GROUPS`):
the *baseline* (the values both servers held after the last verified copy,
i.e. what the slave started serving with), the master's values now and the
slave's values now, each with the moment its change was first seen.

"Most recent" without trusting two clocks: moments are positions on one
timeline, never wall-clock times of two machines.

- :data:`BEFORE_TAKEOVER` — a master change not seen later than that. While the
  slave served, phones were on the slave and the master was failed, so a master
  change found at failback was normally made before the failure;
- :data:`WHILE_SERVING` — every slave change (the slave only serves after it
  took over, so its changes are later than the master's above);
- ``WHILE_SERVING + n`` — the n-th observation made by a single observer that
  reads both servers after the master's return (the master's own clock only
  numbers its observations; it is never compared with the slave's).

Rules for one group, applied as a whole (a forward's switch and destination
never come from different sides):

- changed on one side only → that side's values win (to the master when the
  slave changed, to the slave by the next replication when the master did);
- changed on both sides to the same values → nothing to do;
- changed on both sides differently → the later moment wins; at the same moment
  the slave's, the server the phones were on;
- a user on one side only is configuration, not status: counted, left to the
  replication's own rules.

Every update carries the master's values it was planned against, so whoever
applies it can compare-and-set and never overwrite a change made since.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .groups import STATUS_GROUPS

BEFORE_TAKEOVER = 0
WHILE_SERVING = 1

Values = tuple[Any, ...]


@dataclass(frozen=True)
class Side:
    """One server's values of one group, and when their change from the baseline was first seen."""

    values: Values
    seen_at: int = BEFORE_TAKEOVER


@dataclass(frozen=True)
class StatusUpdate:
    """Write ``values`` on the master for ``user``'s ``group``, only if it still holds ``expected``."""

    user: str
    group: str
    values: Values
    expected: Values

    def columns(self) -> dict[str, Any]:
        return dict(zip(STATUS_GROUPS[self.group], self.values, strict=True))


@dataclass(frozen=True)
class Conflict:
    """Both sides changed a group differently; ``winner`` is ``"master"`` or ``"slave"``."""

    user: str
    group: str
    master: Values
    slave: Values
    winner: str


@dataclass
class StatusPlan:
    to_master: list[StatusUpdate] = field(default_factory=list)
    to_slave: int = 0  # groups changed on the master only: the next replication carries them
    conflicts: list[Conflict] = field(default_factory=list)
    unmatched: int = 0  # users present on one server only

    def figures(self) -> dict[str, int]:
        return {
            "statuses_to_master": len(self.to_master),
            "statuses_to_slave": self.to_slave,
            "status_conflicts": len(self.conflicts),
            "status_users_unmatched": self.unmatched,
        }


def merge_group(baseline: Values, master: Side, slave: Side) -> str | None:
    """Which side's values the group ends with: ``"master"``, ``"slave"``, or ``None`` if both already agree."""
    if master.values == slave.values:
        return None
    master_changed = master.values != baseline
    slave_changed = slave.values != baseline
    if slave_changed and not master_changed:
        return "slave"
    if master_changed and not slave_changed:
        return "master"
    return "master" if master.seen_at > slave.seen_at else "slave"


def plan_status_merge(
    baseline: Mapping[str, Mapping[str, Values]],
    master: Mapping[str, Mapping[str, Side]],
    slave: Mapping[str, Mapping[str, Side]],
) -> StatusPlan:
    """The plan for every user known to both servers (and to the baseline; a user added since is configuration).

    Each mapping goes user uuid → group name → values (or :class:`Side`); a
    missing group raises ``KeyError`` naming it, since the callers read all of
    :data:`.groups.STATUS_GROUPS` at once.
    """
    plan = StatusPlan()
    for user in sorted(master.keys() | slave.keys()):
        if user not in master or user not in slave or user not in baseline:
            plan.unmatched += 1
            continue
        for group in STATUS_GROUPS:
            ours, theirs, base = master[user][group], slave[user][group], baseline[user][group]
            winner = merge_group(base, ours, theirs)
            if winner is None:
                continue
            if ours.values != base and theirs.values != base:
                plan.conflicts.append(Conflict(user, group, ours.values, theirs.values, winner))
            if winner == "slave":
                plan.to_master.append(StatusUpdate(user, group, theirs.values, expected=ours.values))
            else:
                plan.to_slave += 1
    return plan
