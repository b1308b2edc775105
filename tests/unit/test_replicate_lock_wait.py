"""A hand-run ``wazo-ha replicate`` meeting another run's lock (the follower's): it waits, with a deadline.

Real processes: the lock is held by another process through ``flock`` on the
same file, as the follower holds it; the command is the real CLI.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from tests.unit.test_cli import config, wazo_ha  # noqa: F401 (the fixture)
from wazo_ha_core import AlreadyRunning
from wazo_ha_core.replication import run_lock

ENTRY_POINT = "import sys; from wazo_ha_core.cli.main import main; sys.exit(main())"
HOLDER = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "os.ftruncate(fd, 0); os.write(fd, b'%d\\n' % os.getpid())\n"
    "print('held', flush=True)\n"
    "sys.stdin.read()  # until the test closes stdin\n"
)


@pytest.fixture
def master_node(config):  # noqa: F811
    assert wazo_ha("db", "upgrade", config=config).returncode == 0
    assert wazo_ha("config", "set", "node_type=master", "remote_address=10.0.0.2", config=config).returncode == 0
    return config


def hold_lock(root):
    lock = root / "run/wazo-ha/replication.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline() == "held\n"
    return holder


def test_a_hand_run_waits_for_the_lock_then_runs(master_node, tmp_path):
    holder = hold_lock(tmp_path / "root")
    try:
        command = subprocess.Popen(
            [sys.executable, "-c", ENTRY_POINT, "replicate", "--wait", "60", "--config", str(master_node)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        said = command.stderr.readline()  # blocks until the command says it waits
        assert f"replication already running (lock {tmp_path}/root/run/wazo-ha/replication.lock held, PID " in said
        assert f"PID {holder.pid}): waiting up to 60 s for it to end" in said
        holder.stdin.close()  # the other run ends
        _, rest = command.communicate(timeout=60)
    finally:
        holder.kill()
        holder.wait()
    # It got the lock and ran: here the plugin fails to reach a PostgreSQL that this test does not start.
    assert "already running" not in rest, rest
    assert command.returncode == 1 and "wazo-ha:" in rest and "Traceback" not in rest


def test_a_hand_run_gives_up_at_its_deadline_naming_the_holder(master_node, tmp_path):
    holder = hold_lock(tmp_path / "root")
    try:
        result = wazo_ha("replicate", "--wait", "0.5", config=master_node)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "waiting up to 0.5 s for it to end" in result.stderr
    assert f"held by another run, PID {holder.pid}; waited 0.5 s)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("value", ["-1", "nan", "inf", "soon", "3601"])
def test_a_bad_wait_is_a_usage_error_naming_the_option(master_node, value):
    result = wazo_ha("replicate", "--wait", value, config=master_node)
    assert result.returncode == 2
    assert f"--wait must be seconds from 0 to 3600, got {value!r}" in result.stderr


def test_the_engine_waits_in_process_and_tells_once(tmp_path):
    run_dir = tmp_path / "run"
    held, release, told = threading.Event(), threading.Event(), []

    def other_run():
        with run_lock(run_dir):
            held.set()
            release.wait(30)

    thread = threading.Thread(target=other_run)
    thread.start()
    assert held.wait(30)

    def waiting(message: str) -> None:
        told.append(message)
        release.set()  # the other run ends once this one waits

    with run_lock(run_dir, 30, waiting):
        pass
    thread.join(30)
    assert len(told) == 1 and "waiting up to 30 s" in told[0]
    with run_lock(run_dir), pytest.raises(AlreadyRunning, match=r"replication already running .* PID \d+\)$"):
        with run_lock(run_dir):  # the default: at once, no "waited"
            pass


def test_a_hand_run_sync_waits_with_a_deadline_too(master_node, tmp_path):
    lock = tmp_path / "root/run/wazo-ha/file-sync.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        result = wazo_ha("sync", "--wait", "0.3", config=master_node)
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 1
    assert "file sync already running" in result.stderr and "waiting up to 0.3 s for it to end" in result.stderr
    assert f"PID {holder.pid}; waited 0.3 s)" in result.stderr
