"""The fence guard (wazo_ha_core/coordination/fence.py): the pure rule, the file between the two processes,
the guard's loop with a fake clock, and the lease keeper arming and disarming it. The real guard process
against a frozen watch is tested end to end in tests/coordination_e2e (the SIGSTOP scenario)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from tests.unit.test_lease_keeper import CONFIG, advance, keeper  # noqa: F401 - the keeper fixture
from wazo_ha_core.coordination.fence import (
    Arming,
    FenceControl,
    FenceFile,
    FenceGuard,
    boot_id,
    due,
    finished,
    guard_running,
)
from wazo_ha_rig.waiting import wait_for

BOOT = "boot-1"


def guard_command(run_dir, then: str) -> list[str]:
    """A stand-in guard process: takes the lock as `wazo-ha fence-guard` does (stopping nothing), then ``then``."""
    script = "\n".join(
        [
            "import pathlib, sys, threading, time",
            f"sys.path.insert(0, {os.getcwd()!r})",
            "from wazo_ha_core.coordination.fence import FenceGuard",
            f"guard = FenceGuard(pathlib.Path({str(run_dir)!r}), lambda: None, 0.05)",
            "assert guard.lock()",
            then,
        ]
    )
    return [sys.executable, "-c", script]


def test_due_only_for_an_armed_token_of_this_boot_once_its_deadline_is_reached():
    armed = Arming(7, 10.0, BOOT)
    assert not due(armed, 9.99, BOOT, None)
    assert due(armed, 10.0, BOOT, None)
    assert not due(armed, 11.0, BOOT, (7, 10.0)), "one stop per arming"
    assert due(Arming(7, 12.0, BOOT), 12.5, BOOT, (7, 10.0)), "pushed and missed again: stops again"
    assert not due(Arming(None, None, BOOT), 99.0, BOOT, None), "disarmed"
    assert not due(armed, 99.0, "boot-0", None), "a file from another boot is ignored"
    assert not due(None, 99.0, BOOT, None)


def test_the_fence_file_is_private_and_an_unreadable_one_is_due(tmp_path):
    fence = FenceFile(tmp_path / "run")
    assert fence.read() is None
    fence.arm(3, 42.5)
    assert fence.read() == Arming(3, 42.5, boot_id())
    assert stat.S_IMODE(os.stat(fence.path).st_mode) == 0o600
    fence.disarm()
    assert not fence.read().armed
    fence.path.write_text("{half")
    assert due(fence.read(), 0.0, boot_id(), None), "fail safe: a corrupt file fences"


class Stops:
    def __init__(self, fail=0):
        self.count, self.fail = 0, fail

    def __call__(self):
        self.count += 1
        if self.count <= self.fail:
            raise RuntimeError("monit: not answering")


def test_the_guard_stops_once_when_the_deadline_is_not_pushed_and_retries_a_failed_stop(tmp_path):
    clock = {"now": 100.0}
    stops, recorded = Stops(fail=1), []
    guard = FenceGuard(tmp_path, stops, 0.2, clock=lambda: clock["now"], on_fenced=lambda *a: recorded.append(a))
    control = FenceControl(tmp_path, ["true"], deadline=2.8)
    control.arm(5, 100.0)
    clock["now"] = 102.0
    assert guard.check() is None and stops.count == 0
    control.arm(5, 101.0)  # a renewal sent at 101 pushes the deadline to 103.8
    clock["now"] = 103.0
    assert guard.check() is None
    clock["now"] = 103.8
    assert guard.check() == "failed" and guard.check() == "stopped" and stops.count == 2
    assert guard.check() is None and stops.count == 2, "not again for the same arming"
    wait_for(lambda: recorded, 5, "the stop recorded")
    assert recorded[0][0] == 5
    control.disarm()
    clock["now"] = 200.0
    assert guard.check() is None


def test_one_guard_per_node_and_its_pid_is_readable(tmp_path):
    first, second = FenceGuard(tmp_path, Stops(), 0.2), FenceGuard(tmp_path, Stops(), 0.2)
    assert guard_running(tmp_path) is None
    assert first.lock()
    assert not second.lock()
    assert guard_running(tmp_path) == os.getpid()


def test_ensure_starts_a_guard_in_a_session_of_its_own_and_reuses_a_running_one(tmp_path):
    control = FenceControl(tmp_path, guard_command(tmp_path, "time.sleep(60)"), deadline=2.8)
    try:
        assert control.ensure()
        pid = guard_running(tmp_path)
        assert pid == control._child.pid and os.getsid(pid) == pid, "its own session"
        assert control.ensure() and guard_running(tmp_path) == pid, "not started twice"
    finally:
        control._child.kill()
        control._child.wait()
    assert not FenceControl(tmp_path, ["true"], deadline=2.8).ensure(), "a second watch on the node is refused"
    broken = FenceControl(tmp_path / "other", [sys.executable, "-c", "raise SystemExit(3)"], deadline=2.8)
    assert not broken.ensure(), "a guard that does not start: no guard, no lock"


def test_the_guard_outlives_the_watch_only_to_fence():
    assert not finished(Arming(None, None, BOOT), BOOT, None, watch_alive=True), "a watch runs (maybe frozen)"
    assert finished(Arming(None, None, BOOT), BOOT, None, watch_alive=False), "disarmed, no watch: exit"
    assert finished(None, BOOT, None, watch_alive=False)
    assert not finished(Arming(4, 50.0, BOOT), BOOT, None, watch_alive=False), "a crashed watch: fence first"
    assert finished(Arming(4, 50.0, BOOT), BOOT, (4, 50.0), watch_alive=False), "then exit"


def test_a_real_guard_process_exits_once_the_watch_is_gone_and_nothing_is_armed(tmp_path):
    watch = FenceControl(tmp_path, guard_command(tmp_path, "guard.run(threading.Event())"), deadline=2.8)
    assert watch.ensure()
    watch.arm(9, -1e9)  # due long ago: the guard fences at once, then has nothing left
    wait_for(lambda: watch._child.poll() is None and guard_running(tmp_path), 5, "guard running")
    os.close(watch._watch_lock)  # the watch ends (the kernel releases its lock)
    assert watch._child.wait(10) == 0, "exited on its own"


def test_the_keeper_arms_before_the_start_pushes_at_renewals_and_disarms_once_stopped(keeper, tmp_path):  # noqa: F811
    keeper.fence = control = FenceControl(tmp_path / "run", ["true"], deadline=2.8)
    control.ensure = lambda: True  # the guard process itself: the test above and the e2e SIGSTOP scenario
    keeper.test_manager.gate.set()
    keeper.tick()
    assert control.file.read() == Arming(1, 100.0 + 2.8, boot_id()), "armed with the acquisition's send time"
    wait_for(lambda: keeper.test_manager.active, 5, "serving")
    keeper.test_clock["now"] += 1.0
    keeper.tick()
    assert control.file.read().fence_at == pytest.approx(101.0 + 2.8)
    keeper.shutdown()
    assert not control.file.read().armed


def test_no_guard_no_lock(keeper, tmp_path):  # noqa: F811
    keeper.fence = FenceControl(tmp_path / "run", ["true"], deadline=2.8)
    keeper.fence.ensure = lambda: False
    keeper.tick()
    assert keeper.coordinator.held is None and not keeper.serving


def test_a_start_resumed_past_the_guards_deadline_does_not_start(keeper, tmp_path):  # noqa: F811
    keeper.fence = control = FenceControl(tmp_path / "run", ["true"], deadline=2.8)
    control.ensure = lambda: True
    real_take_over = keeper.services.take_over

    def frozen_then_resumed(token):  # the start thread frozen with the process, resumed after the deadline
        keeper.test_clock["now"] += 2.9  # past the guard's deadline (2.8 s), not yet the keeper's own (3 s)
        keeper._check_start_allowed(token)
        return real_take_over(token=token)

    keeper.services.take_over = lambda token=None: frozen_then_resumed(token)
    keeper.test_manager.gate.set()
    keeper.tick()
    wait_for(lambda: keeper._starting is None or not keeper._starting.is_alive(), 5, "the start attempt ended")
    assert keeper.test_manager.calls == [], "telephony not started under a token past its guard deadline"
    [event] = keeper.test_store.events(kind="serve")
    assert event.outcome == "failed"


def test_the_guard_process_command_runs_the_cli():
    shown = subprocess.run(
        [sys.executable, "-m", "wazo_ha_core.cli.main", "fence-guard", "--help"], capture_output=True, text=True
    )
    assert shown.returncode == 0 and "fence-guard" in shown.stdout


def test_a_keeper_only_late_starts_again_after_its_guard_fenced(keeper, tmp_path):  # noqa: F811
    keeper.fence = control = FenceControl(tmp_path / "run", ["true"], deadline=2.8)
    control.ensure = lambda: True
    keeper.test_manager.gate.set()
    keeper.tick()
    wait_for(lambda: keeper.test_manager.active, 5, "serving")
    keeper.test_clock["now"] += 0.5
    keeper.tick()
    guard = FenceGuard(tmp_path / "run", keeper.test_manager.stop, 0.2, clock=lambda: control.fence_at)
    assert guard.check() == "stopped" and not keeper.test_manager.active  # the watch was late, the guard fenced
    keeper.test_clock["now"] += 0.5  # a renewal in time (before the keeper's own fencing point): the lease holds
    keeper.tick()
    wait_for(lambda: advance(keeper, 0.5) or keeper.test_manager.active, 5, "started again under the lease")
    assert keeper.node.guard.token == 1 and keeper.test_manager.tokens == [1, 1]
