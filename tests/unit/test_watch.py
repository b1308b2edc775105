"""The watch state machine on synthetic timelines: no I/O, no clock, no sleeps."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wazo_ha_core.watch import (
    Action,
    Health,
    Observation,
    Role,
    RoundVerdict,
    Watch,
    WatchConfig,
    WatchState,
    judge_round,
)

UP, DOWN, UNKNOWN = Health.UP, Health.DOWN, Health.UNKNOWN

# Round shorthands: host health, service health.
SERVING = (UP, UP)
DEAD = (DOWN, DOWN)
ASTERISK_DOWN = (UP, DOWN)
BROKEN_PROBE = (UNKNOWN, DOWN)


def observations(host: Health | None, service: Health | None) -> list[Observation]:
    result = []
    if host is not None:
        result.append(Observation("host", host, "icmp"))
    if service is not None:
        result.append(Observation("service", service, "sip"))
    return result


class Driver:
    """Runs a watch over a timeline like the real loop does, confirming every action."""

    def __init__(self, config: WatchConfig | None = None, role: Role = Role.STANDBY, witnesses=(UP,)):
        self.watch = Watch(config or WatchConfig(), role)
        self.witnesses = list(witnesses)
        self.actions: list[tuple[float, Action]] = []
        self.notes: list[tuple[float, str]] = []
        self.action_ok = True

    def round(self, now: float, health: tuple, *, paused: bool = False, active_calls: int | None = None):
        decision = self.watch.observe(now, observations(*health), paused=paused, active_calls=active_calls)
        self.notes += [(now, note.kind) for note in decision.notes]
        if decision.action is Action.CHECK_WITNESSES:
            decision = self.watch.witnessed(now, self.witnesses)
            self.notes += [(now, note.kind) for note in decision.notes]
        if decision.action in (Action.TAKE_OVER, Action.GIVE_BACK):
            self.actions.append((now, decision.action))
            self.watch.done(decision.action, self.action_ok, now)
        return decision

    def run(self, start: float, rounds: list[tuple], interval: float = 1.0, **kwargs) -> float:
        now = start
        for health in rounds:
            self.round(now, health, **kwargs)
            now += interval
        return now


# --- one round ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "service", "verdict"),
    [
        (UP, UP, RoundVerdict.GOOD),
        (DOWN, DOWN, RoundVerdict.FAILED),
        (DOWN, UP, RoundVerdict.FAILED),  # the host check failing fails the round
        (UP, DOWN, RoundVerdict.FAILED),  # Asterisk dead on a reachable master
        (UNKNOWN, DOWN, RoundVerdict.UNKNOWN),  # a broken host probe never counts as down
        (UNKNOWN, UP, RoundVerdict.GOOD),  # SIP answered, so the host is up
        (UP, UNKNOWN, RoundVerdict.UNKNOWN),
        (DOWN, UNKNOWN, RoundVerdict.FAILED),
        (None, DOWN, RoundVerdict.FAILED),  # only a service probe configured
        (UP, None, RoundVerdict.GOOD),
        (None, None, RoundVerdict.UNKNOWN),
        (UNKNOWN, UNKNOWN, RoundVerdict.UNKNOWN),
    ],
)
def test_round_verdict(host, service, verdict):
    assert judge_round(observations(host, service))[0] is verdict


def test_any_probe_of_a_kind_answering_is_enough():
    round_ = [Observation("host", DOWN, "icmp"), Observation("host", UP, "tcp"), Observation("service", UP, "sip")]
    assert judge_round(round_)[0] is RoundVerdict.GOOD


def test_failed_round_reason_names_the_probe_and_its_reason():
    verdict, reason = judge_round([Observation("host", UP, "icmp"), Observation("service", DOWN, "sip", "timeout")])
    assert verdict is RoundVerdict.FAILED
    assert "sip: timeout" in reason


# --- failover ------------------------------------------------------------------------


def test_failover_after_exactly_fall_failed_rounds_with_detection_time():
    driver = Driver(WatchConfig(fall=3))
    driver.run(0, [SERVING] * 5 + [DEAD] * 2)
    assert driver.actions == []
    decision = driver.watch.observe(7.0, observations(*DEAD))
    assert decision.action is Action.TAKE_OVER
    assert decision.figures == {"failed_rounds": 3, "detection": 2.0}
    driver.watch.done(Action.TAKE_OVER, True, 7.0)
    assert driver.watch.role is Role.ACTIVE


def test_service_down_on_reachable_master_fails_over():
    driver = Driver()
    driver.run(0, [SERVING, ASTERISK_DOWN, ASTERISK_DOWN, ASTERISK_DOWN])
    assert driver.actions == [(3.0, Action.TAKE_OVER)]


def test_a_good_round_breaks_the_streak():
    driver = Driver()
    driver.run(0, [DEAD, DEAD, SERVING, DEAD, DEAD, SERVING, DEAD, DEAD])
    assert driver.actions == []


def test_broken_probe_never_causes_failover_even_for_long():
    driver = Driver()
    driver.run(0, [BROKEN_PROBE] * 100)
    assert driver.actions == []


def test_unknown_round_interrupts_a_failing_streak():
    driver = Driver()
    driver.run(0, [DEAD, DEAD, BROKEN_PROBE, DEAD, DEAD])
    assert driver.actions == []
    driver.run(5, [DEAD])
    assert driver.actions == [(5.0, Action.TAKE_OVER)]


def test_take_over_is_decided_once_then_nothing_while_active():
    driver = Driver()
    driver.run(0, [DEAD] * 20)
    assert [action for _, action in driver.actions] == [Action.TAKE_OVER]


def test_cut_off_node_does_not_fail_over_and_notes_it_once():
    driver = Driver(WatchConfig(witnesses=True), witnesses=[DOWN, DOWN])
    driver.run(0, [DEAD] * 10)
    assert driver.actions == []
    assert [kind for _, kind in driver.notes].count("failover-refused") == 1
    assert driver.watch.role is Role.STANDBY


def test_broken_witness_probe_refuses_too():
    driver = Driver(WatchConfig(witnesses=True), witnesses=[UNKNOWN])
    driver.run(0, [DEAD] * 5)
    assert driver.actions == []


def test_one_witness_answering_is_enough():
    driver = Driver(WatchConfig(witnesses=True), witnesses=[DOWN, UP])
    driver.run(0, [DEAD] * 3)
    assert driver.actions == [(2.0, Action.TAKE_OVER)]


def test_reconnected_node_fails_over_after_fall_fresh_rounds_once_a_witness_answers_again():
    driver = Driver(WatchConfig(witnesses=True), witnesses=[DOWN])
    driver.run(0, [DEAD] * 5)
    driver.witnesses = [UP]
    driver.run(5, [DEAD] * 2)
    assert driver.actions == []  # the rounds failed while cut off do not count
    driver.run(7, [DEAD])
    assert driver.actions == [(7.0, Action.TAKE_OVER)]


def test_standby_cut_off_then_reconnected_to_a_serving_master_does_not_take_over():
    # The link comes back between a round's master probe (failed: still cut off) and its witness probe.
    driver = Driver(WatchConfig(witnesses=True), witnesses=[DOWN])
    driver.run(0, [DEAD] * 5)
    driver.witnesses = [UP]
    driver.run(5, [DEAD])
    driver.run(6, [SERVING] * 5)
    assert driver.actions == []
    assert driver.watch.role is Role.STANDBY


def test_paused_takes_no_action_and_resume_acts_on_what_is_true_then():
    driver = Driver()
    driver.run(0, [DEAD] * 10, paused=True)
    assert driver.actions == []
    assert [kind for _, kind in driver.notes].count("failover-paused") == 1
    driver.run(10, [DEAD], paused=False)
    assert driver.actions == [(10.0, Action.TAKE_OVER)]


def test_paused_then_master_recovers_no_action_after_resume():
    driver = Driver()
    driver.run(0, [DEAD] * 5 + [SERVING] * 3, paused=True)
    driver.run(8, [SERVING] * 3)
    assert driver.actions == []


def test_failed_take_over_is_retried_after_the_retry_delay():
    driver = Driver(WatchConfig(retry=10))
    driver.action_ok = False
    driver.run(0, [DEAD] * 3)
    assert driver.watch.role is Role.STANDBY
    driver.action_ok = True
    driver.run(3, [DEAD] * 9)  # until 11.0: still inside the retry delay
    assert len(driver.actions) == 1
    driver.run(12, [DEAD])
    assert driver.actions[-1] == (12.0, Action.TAKE_OVER)
    assert driver.watch.role is Role.ACTIVE


def test_observe_refuses_to_run_before_the_action_is_confirmed():
    watch = Watch(WatchConfig(fall=1))
    assert watch.observe(0, observations(*DEAD)).action is Action.TAKE_OVER
    with pytest.raises(RuntimeError):
        watch.observe(1, observations(*DEAD))


# --- failback -------------------------------------------------------------------------


def failed_over(config: WatchConfig) -> tuple[Driver, float]:
    driver = Driver(config)
    now = driver.run(0, [DEAD] * config.fall)
    assert driver.watch.role is Role.ACTIVE
    return driver, now


def test_failback_waits_for_rise_rounds_and_the_stability_window():
    driver, now = failed_over(WatchConfig(rise=3, stability=30))
    driver.run(now, [SERVING] * 30)  # good for 29 s: not yet
    assert len(driver.actions) == 1
    driver.run(now + 30, [SERVING])
    assert driver.actions[-1] == (now + 30, Action.GIVE_BACK)
    assert driver.watch.role is Role.STANDBY


def test_rise_rounds_are_needed_even_when_the_window_is_short():
    driver, now = failed_over(WatchConfig(rise=5, stability=0))
    driver.run(now, [SERVING] * 4)
    assert len(driver.actions) == 1
    driver.run(now + 4, [SERVING])
    assert driver.actions[-1][1] is Action.GIVE_BACK


def test_a_failed_round_restarts_the_stability_window():
    driver, now = failed_over(WatchConfig(stability=10))
    now = driver.run(now, [SERVING] * 9 + [ASTERISK_DOWN] + [SERVING] * 10)
    assert len(driver.actions) == 1
    driver.run(now, [SERVING])
    assert driver.actions[-1] == (now, Action.GIVE_BACK)


def test_flapping_master_causes_one_failover_and_no_failback():
    driver = Driver(WatchConfig(stability=30))
    pattern = [DEAD] * 3 + [SERVING, SERVING, DEAD] * 40
    driver.run(0, pattern)
    assert [action for _, action in driver.actions] == [Action.TAKE_OVER]


def test_failback_waits_for_calls_then_goes():
    driver, now = failed_over(WatchConfig(stability=5, courtesy_max=600))
    now = driver.run(now, [SERVING] * 100, active_calls=2)
    assert len(driver.actions) == 1
    assert [kind for _, kind in driver.notes].count("failback-delayed") == 1
    driver.run(now, [SERVING], active_calls=0)
    assert driver.actions[-1] == (now, Action.GIVE_BACK)


def test_failback_courtesy_has_a_maximum():
    driver, now = failed_over(WatchConfig(stability=5, courtesy_max=60, max_gap=5))
    start = now
    while len(driver.actions) == 1:
        driver.round(now, SERVING, active_calls=3)
        now += 1
    moment, action = driver.actions[-1]
    assert action is Action.GIVE_BACK
    # stable after 5 s, then at most 60 s of courtesy
    assert moment - start == pytest.approx(4 + 60, abs=1)


def test_unknown_call_count_does_not_delay_failback():
    driver, now = failed_over(WatchConfig(stability=3))
    driver.run(now, [SERVING] * 4, active_calls=None)
    assert driver.actions[-1][1] is Action.GIVE_BACK


def test_paused_active_node_does_not_give_back():
    driver, now = failed_over(WatchConfig(stability=3))
    now = driver.run(now, [SERVING] * 20, paused=True)
    assert len(driver.actions) == 1
    driver.run(now, [SERVING])
    assert driver.actions[-1][1] is Action.GIVE_BACK


def test_node_starting_active_gives_back_only_after_the_window():
    driver = Driver(WatchConfig(stability=10), role=Role.ACTIVE)
    driver.run(0, [SERVING] * 10)
    assert driver.actions == []
    driver.run(10, [SERVING])
    assert driver.actions == [(10.0, Action.GIVE_BACK)]


# --- clocks ---------------------------------------------------------------------------


def test_clock_jumping_forward_mid_window_does_not_shorten_it():
    driver, now = failed_over(WatchConfig(stability=30, max_gap=5))
    driver.run(now, [SERVING] * 3)
    driver.run(now + 3 + 3600, [SERVING] * 29)  # a one-hour jump: the window restarts after it
    assert len(driver.actions) == 1
    assert any(kind == "clock-gap" for _, kind in driver.notes)


def test_clock_going_backwards_restarts_the_window():
    driver, now = failed_over(WatchConfig(stability=10))
    driver.run(now, [SERVING] * 8)
    driver.run(now - 100, [SERVING] * 10)
    assert len(driver.actions) == 1
    driver.run(now - 90, [SERVING])
    assert driver.actions[-1][1] is Action.GIVE_BACK


def test_clock_jump_breaks_a_failing_streak():
    driver = Driver(WatchConfig(max_gap=5))
    driver.run(0, [DEAD, DEAD])
    driver.run(1000, [DEAD, DEAD])
    assert driver.actions == []
    driver.run(1002, [DEAD])
    assert driver.actions == [(1002, Action.TAKE_OVER)]


def test_state_round_trips_through_a_dict():
    driver = Driver()
    driver.run(0, [DEAD, DEAD])
    restored = Watch(WatchConfig(), state=WatchState.from_dict(driver.watch.state.as_dict()))
    assert restored.observe(2.0, observations(*DEAD)).action is Action.TAKE_OVER


@pytest.mark.parametrize("bad", [{"fall": 0}, {"rise": 1.5}, {"stability": -1}, {"fall": True}])
def test_bad_config_names_the_field(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        WatchConfig(**bad)


# --- properties over random timelines ---------------------------------------------------

HEALTHS = st.sampled_from([UP, DOWN, UNKNOWN, None])
ROUND = st.tuples(HEALTHS, HEALTHS)
STEP = st.one_of(
    st.just(1.0),
    st.floats(min_value=0.1, max_value=3.0),
    st.floats(min_value=-50, max_value=500),  # jumps either way
)


@settings(max_examples=300, deadline=None)
@given(
    rounds=st.lists(st.tuples(ROUND, STEP, st.integers(0, 2)), min_size=1, max_size=120),
    fall=st.integers(1, 4),
    rise=st.integers(1, 4),
    stability=st.sampled_from([0.0, 5.0, 30.0]),
    witnesses=st.lists(HEALTHS.filter(lambda h: h is not None), max_size=2),
)
def test_properties_of_any_timeline(rounds, fall, rise, stability, witnesses):
    config = WatchConfig(fall=fall, rise=rise, stability=stability, witnesses=bool(witnesses))
    driver = Driver(config, witnesses=witnesses)
    now, history = 0.0, []  # (time, verdict) of every round, in order
    for health, step, calls in rounds:
        acted_before = len(driver.actions)
        decision = driver.round(now, health, active_calls=calls)
        history.append((now, decision.verdict))
        if len(driver.actions) > acted_before:
            action = driver.actions[-1][1]
            recent = [verdict for _, verdict in history[-(fall if action is Action.TAKE_OVER else rise) :]]
            if action is Action.TAKE_OVER:
                # never without `fall` consecutive failed rounds, never on a broken probe alone
                assert recent == [RoundVerdict.FAILED] * fall
                if witnesses:
                    assert UP in witnesses
            else:
                assert recent == [RoundVerdict.GOOD] * rise
        now += step
    # actions alternate: take over, give back, take over...
    kinds = [action for _, action in driver.actions]
    assert all(a is not b for a, b in itertools.pairwise(kinds))
    if kinds:
        assert kinds[0] is Action.TAKE_OVER


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([SERVING, DEAD, ASTERISK_DOWN, BROKEN_PROBE]), st.booleans()), max_size=80))
def test_failback_never_inside_the_stability_window(timeline):
    config = WatchConfig(stability=10, rise=2)
    driver = Driver(config, role=Role.ACTIVE)
    good_since = None
    for index, (health, _) in enumerate(timeline):
        now = float(index)
        verdict = driver.round(now, health).verdict
        if verdict is RoundVerdict.GOOD:
            good_since = now if good_since is None else good_since
        else:
            good_since = None
        if driver.actions and driver.actions[-1] == (now, Action.GIVE_BACK):
            assert now - good_since >= 10
            break


@settings(max_examples=300, deadline=None)
@given(
    rounds=st.lists(
        st.tuples(
            st.sampled_from([SERVING, DEAD, ASTERISK_DOWN, BROKEN_PROBE]),
            st.one_of(st.just(1.0), st.floats(min_value=-120.0, max_value=-0.01)),  # on time, or backwards
        ),
        min_size=1,
        max_size=100,
    ),
    fall=st.integers(1, 4),
    rise=st.integers(1, 4),
    stability=st.sampled_from([0.0, 3.0, 10.0]),
    role=st.sampled_from([Role.STANDBY, Role.ACTIVE]),
)
def test_clock_going_backwards_restarts_every_count(rounds, fall, rise, stability, role):
    """An action counts only rounds observed since the clock last went backwards, and the window too."""
    driver = Driver(WatchConfig(fall=fall, rise=rise, stability=stability, max_gap=5), role=role)
    now, previous, since_reset = 0.0, None, []  # (time, verdict) of the rounds since the last backward jump
    for health, step in rounds:
        if previous is not None and now < previous:
            since_reset = []
        acted = len(driver.actions)
        since_reset.append((now, driver.round(now, health).verdict))
        if len(driver.actions) > acted:
            verdicts = [verdict for _, verdict in since_reset]
            if driver.actions[-1][1] is Action.TAKE_OVER:
                assert verdicts[-fall:] == [RoundVerdict.FAILED] * fall and len(verdicts) >= fall
            else:
                good_run = list(itertools.takewhile(lambda r: r[1] is RoundVerdict.GOOD, reversed(since_reset)))
                assert len(good_run) >= rise
                assert now - good_run[-1][0] >= stability, "the window counted time from before the jump"
        previous, now = now, now + step
