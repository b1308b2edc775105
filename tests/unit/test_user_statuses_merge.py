"""The users' statuses three-way merge (wazo_ha_core/user_statuses/merge.py), case by case and by property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from wazo_ha_core.user_statuses.groups import STATUS_COLUMNS, STATUS_GROUPS
from wazo_ha_core.user_statuses.merge import (
    BEFORE_TAKEOVER,
    WHILE_SERVING,
    Side,
    StatusUpdate,
    merge_group,
    plan_status_merge,
)

OFF, ON = (0,), (1,)
NO_FORWARD, FORWARD_1001 = (0, ""), (1, "1001")


def user(**groups):
    """A user's groups at their defaults, with some overridden."""
    values = {
        name: tuple(0 if c.startswith("enable") or c == "incallfilter" else "" for c in cols)
        for name, cols in STATUS_GROUPS.items()
    }
    values.update(groups)
    return values


def sides(groups, seen_at=BEFORE_TAKEOVER):
    return {name: Side(values, seen_at) for name, values in groups.items()}


def test_the_groups_are_the_user_services_columns_of_wazo_s_schema():
    assert set(STATUS_COLUMNS) == {
        "enablednd",
        "incallfilter",
        "enableunc",
        "destunc",
        "enablerna",
        "destrna",
        "enablebusy",
        "destbusy",
        "enablevoicemail",
    }
    assert STATUS_GROUPS["forward_unconditional"] == ("enableunc", "destunc")


def test_dnd_turned_on_on_the_serving_slave_goes_to_the_master():
    plan = plan_status_merge({"u1": user()}, {"u1": sides(user())}, {"u1": sides(user(dnd=ON), WHILE_SERVING)})
    assert plan.to_master == [StatusUpdate("u1", "dnd", ON, expected=OFF)]
    assert plan.to_master[0].columns() == {"enablednd": 1}
    assert plan.conflicts == [] and plan.to_slave == 0


def test_a_change_on_the_master_only_is_left_to_the_replication():
    plan = plan_status_merge({"u1": user()}, {"u1": sides(user(dnd=ON))}, {"u1": sides(user(), WHILE_SERVING)})
    assert plan.to_master == [] and plan.to_slave == 1


def test_both_changed_the_same_way_is_no_conflict():
    plan = plan_status_merge({"u1": user()}, {"u1": sides(user(dnd=ON))}, {"u1": sides(user(dnd=ON), WHILE_SERVING)})
    assert plan.to_master == [] and plan.to_slave == 0 and plan.conflicts == []


def test_a_master_change_before_the_failure_loses_to_the_slave_s_while_serving():
    baseline = {"u1": user(forward_busy=NO_FORWARD)}
    master = {"u1": sides(user(forward_busy=(1, "2000")))}  # made before the failure, lost in the failover
    slave = {"u1": sides(user(forward_busy=FORWARD_1001), WHILE_SERVING)}
    plan = plan_status_merge(baseline, master, slave)
    assert plan.to_master == [StatusUpdate("u1", "forward_busy", FORWARD_1001, expected=(1, "2000"))]
    assert [(c.group, c.winner) for c in plan.conflicts] == [("forward_busy", "slave")]


def test_a_master_change_seen_after_the_slave_s_wins():
    baseline = {"u1": user()}
    master = {"u1": sides(user(dnd=ON), seen_at=WHILE_SERVING + 3)}
    slave = {"u1": {**sides(user(), WHILE_SERVING), "dnd": Side((2,), WHILE_SERVING + 1)}}
    plan = plan_status_merge(baseline, master, slave)
    assert plan.to_master == [] and plan.to_slave == 1
    assert plan.conflicts[0].winner == "master"


def test_a_forward_travels_whole_never_switch_from_one_side_and_destination_from_the_other():
    baseline = {"u1": user(forward_noanswer=(1, "1000"))}
    master = {"u1": sides(user(forward_noanswer=(0, "1000")))}
    slave = {"u1": sides(user(forward_noanswer=(1, "3000")), WHILE_SERVING)}
    plan = plan_status_merge(baseline, master, slave)
    assert plan.to_master[0].columns() == {"enablerna": 1, "destrna": "3000"}


def test_users_on_one_side_only_are_not_statuses():
    plan = plan_status_merge(
        {"u1": user()}, {"u1": sides(user()), "u2": sides(user(dnd=ON))}, {"u1": sides(user()), "u3": sides(user())}
    )
    assert plan.to_master == [] and plan.unmatched == 2
    assert plan.figures()["status_users_unmatched"] == 2


# --- properties over random histories ---------------------------------------------------------------

values = st.tuples(st.integers(0, 2), st.sampled_from(["", "1001", "2000", "tab\there", "é\\n"]))
moments = st.integers(BEFORE_TAKEOVER, WHILE_SERVING + 5)


@given(base=values, master=values, slave=values, master_at=moments, slave_at=moments)
def test_the_result_is_always_one_side_s_values_whole(base, master, slave, master_at, slave_at):
    winner = merge_group(base, Side(master, master_at), Side(slave, max(slave_at, WHILE_SERVING)))
    result = {"master": master, "slave": slave, None: master}[winner]
    assert result in (master, slave)
    if master == slave:
        assert winner is None
    elif master == base:
        assert winner == "slave"  # only the slave changed: never lost
    elif slave == base:
        assert winner == "master"  # only the master changed: never lost


@given(
    histories=st.dictionaries(
        st.sampled_from(["u1", "u2", "u3"]),
        st.tuples(values, values, values, moments, moments),
        min_size=1,
    )
)
def test_after_applying_the_plan_and_replicating_the_later_change_of_each_group_holds(histories):
    baseline, master, slave, expected = {}, {}, {}, {}
    for uuid, (base, ours, theirs, ours_at, theirs_at) in histories.items():
        theirs_at = max(theirs_at, WHILE_SERVING)
        baseline[uuid] = {"forward_busy": base} | user_defaults_except_forward_busy()
        master[uuid] = {"forward_busy": Side(ours, ours_at)} | sides(user_defaults_except_forward_busy())
        slave[uuid] = {"forward_busy": Side(theirs, theirs_at)} | sides(user_defaults_except_forward_busy())
        if theirs != base and (ours == base or theirs_at >= ours_at):
            expected[uuid] = theirs
        else:
            expected[uuid] = ours
    plan = plan_status_merge(baseline, master, slave)
    on_master = {uuid: master[uuid]["forward_busy"].values for uuid in master}
    for update in plan.to_master:
        assert on_master[update.user] == update.expected  # compare-and-set holds on an unchanged master
        on_master[update.user] = update.values
    assert on_master == expected  # the replication then makes the slave equal to the master
    # and a second merge, master and slave now equal, has nothing to do
    settled = {
        uuid: {"forward_busy": values} | user_defaults_except_forward_busy() for uuid, values in on_master.items()
    }
    again = plan_status_merge(
        settled, {u: sides(g) for u, g in settled.items()}, {u: sides(g, WHILE_SERVING) for u, g in settled.items()}
    )
    assert again.to_master == [] and again.to_slave == 0 and again.conflicts == []


def user_defaults_except_forward_busy():
    defaults = user()
    del defaults["forward_busy"]
    return defaults
