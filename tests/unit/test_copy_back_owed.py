"""The automatic copy-back's decision (wazo_ha_core.copy_back.owed), a pure function, on synthetic timelines.

Each timeline is the master's scheduled checks (one a minute) around a failover
and a failback, as the master sees them: whether the slave answers SIP, whether
any host probe reaches it, whether telephony runs here.
"""

from __future__ import annotations

import pytest

from wazo_ha_core.copy_back.owed import (
    NOTIFY_FAILURE,
    NOTIFY_RECOVERY,
    Observation,
    Policy,
    State,
    decide,
    finish,
)

POLICY = Policy(retry_min=60, retry_max=600, gap=300)
STANDBY = dict(peer_serving=False, peer_reachable=True)  # the slave stands by: host answers, no SIP
SERVING = dict(peer_serving=True, peer_reachable=True)  # the slave answers SIP: it serves
CUT = dict(peer_serving=False, peer_reachable=False)  # nothing answers: link cut


def run_timeline(steps, outcomes=(), state=None):
    """Feed ``(minute, observation kwargs)`` checks; each run ends with the next of ``outcomes``.

    Returns the final state and ``(minute, what)`` for every run and notification.
    """
    state = state or State()
    outcomes = list(outcomes)
    seen = []
    for minute, kwargs in steps:
        now = minute * 60.0
        decision = decide(state, Observation(now=now, **kwargs), POLICY)
        state = decision.state
        if decision.notify:
            seen.append((minute, decision.notify))
        if decision.run:
            outcome = outcomes.pop(0)
            seen.append((minute, f"run:{outcome}"))
            if outcome == "killed":  # the process died: running_since stays set
                continue
            state, notify = finish(state, outcome, now, now + 5, POLICY)
            if notify:
                seen.append((minute, notify))
    return state, seen


def test_a_master_that_never_saw_a_failover_owes_nothing_and_runs_nothing():
    state, seen = run_timeline([(m, STANDBY) for m in range(10)])
    assert not state.owed and seen == []


def test_a_slave_seen_serving_owes_a_copy_back_run_once_it_stopped_serving():
    steps = [(0, STANDBY), (1, SERVING), (2, SERVING), (3, STANDBY), (4, STANDBY), (5, STANDBY)]
    state, seen = run_timeline(steps, outcomes=["ok"])
    assert seen == [(3, "run:ok")]  # never while it served; once after; not again
    assert not state.owed and state.last_outcome == "ok"


def test_a_master_cut_off_owes_from_the_cut_and_runs_when_the_slave_is_back_and_standing_by():
    steps = [(0, STANDBY), (1, CUT), (2, CUT), (3, SERVING), (4, STANDBY)]
    state, seen = run_timeline(steps, outcomes=["ok"])
    assert seen == [(4, "run:ok")]
    assert not state.owed


def test_a_master_that_was_down_owes_a_copy_back_because_of_the_gap_alone():
    # The master crashed at minute 1 and came back at minute 20: it saw nothing of the failover.
    steps = [(0, STANDBY), (1, STANDBY), (20, STANDBY), (21, STANDBY)]
    state, seen = run_timeline(steps, outcomes=["ok"])
    assert seen == [(20, "run:ok")]
    assert not state.owed


def test_a_clock_that_went_back_owes_a_copy_back():
    state, seen = run_timeline([(100, STANDBY), (50, STANDBY)], outcomes=["ok"])
    assert seen == [(50, "run:ok")] and not state.owed


def test_failures_back_off_exponentially_and_notify_once_then_recovery():
    steps = [(0, SERVING)] + [(m, STANDBY) for m in range(1, 30)]
    state, seen = run_timeline(steps, outcomes=["failed", "partial", "failed", "failed", "ok"])
    runs = [(m, what) for m, what in seen if what.startswith("run:")]
    # Each run ends 5 s after it began; the next waits 60, 120, 240, 480 s from that end: minutes 1, 3, 6, 11, 20.
    assert [m for m, _ in runs] == [1, 3, 6, 11, 20]
    notifications = [(m, what) for m, what in seen if not what.startswith("run:")]
    assert notifications == [(1, NOTIFY_FAILURE), (20, NOTIFY_RECOVERY)]
    assert not state.owed and state.attempts == 0


def test_the_back_off_is_capped_by_retry_max():
    assert [POLICY.backoff(n) for n in range(1, 7)] == [60, 120, 240, 480, 600, 600]


def test_nothing_runs_while_the_slave_serves_or_cannot_be_reached_or_telephony_is_down_here():
    owed = State(owed_since=0.0, reason="test", evidence_at=0.0, last_check=0.0)
    for kwargs in (
        SERVING,
        CUT,
        dict(STANDBY, serving_here=False),
        dict(STANDBY, switched_over=True),
        dict(peer_serving=None, peer_reachable=True),  # no service probe: cannot tell
    ):
        decision = decide(owed, Observation(now=60.0, **kwargs), POLICY)
        assert not decision.run, kwargs
        assert decision.state.owed and decision.state.running_since is None


def test_a_killed_attempt_counts_as_failed_and_is_retried_after_the_back_off():
    steps = [(0, SERVING), (1, STANDBY), (2, STANDBY), (3, STANDBY), (4, STANDBY)]
    state, seen = run_timeline(steps, outcomes=["killed", "ok"])
    # Killed at 1; the check at 2 finds it (notified as the first failure); retried at 1 + 60 s = 2.
    assert seen == [(1, "run:killed"), (2, NOTIFY_FAILURE), (2, "run:ok"), (2, NOTIFY_RECOVERY)]
    assert not state.owed


def test_an_ok_run_that_began_before_the_last_evidence_does_not_clear_the_debt():
    state = State(owed_since=0.0, reason="test", evidence_at=120.0, last_check=120.0)
    after, _ = finish(state, "ok", started_at=60.0, now=130.0, policy=POLICY)
    assert after.owed
    cleared, _ = finish(state, "ok", started_at=120.0, now=130.0, policy=POLICY)
    assert not cleared.owed


@pytest.mark.parametrize("outcome", ["failed", "partial"])
def test_only_ok_clears(outcome):
    state = State(owed_since=0.0, reason="test", evidence_at=0.0, last_check=0.0)
    after, notify = finish(state, outcome, started_at=0.0, now=1.0, policy=POLICY)
    assert after.owed and after.attempts == 1 and after.next_attempt_at == 61.0 and notify == NOTIFY_FAILURE


def test_the_state_survives_a_round_trip_through_the_store_format():
    state = State(owed_since=1.0, reason="r", evidence_at=2.0, last_check=3.0, attempts=2, running_since=4.0)
    assert State.from_dict(state.as_dict()) == state
    assert State.from_dict(None) == State() and State.from_dict({"unknown": 1}) == State()
