"""The core around replication without a database: the local lock and terminal progress."""

from __future__ import annotations

import io
import os

import pytest

from wazo_ha_core import AlreadyRunning
from wazo_ha_core.cli.replication import TerminalProgress
from wazo_ha_core.replication import run_lock


def test_run_lock_is_exclusive_and_released(tmp_path):
    run_dir = tmp_path / "run" / "wazo-ha"
    with run_lock(run_dir):
        assert (run_dir / "replication.lock").read_text() == f"{os.getpid()}\n"
        assert (run_dir / "replication.lock").stat().st_mode & 0o777 == 0o600
        with pytest.raises(AlreadyRunning, match="replication already running"), run_lock(run_dir):
            pass
    with run_lock(run_dir):  # released on exit
        pass


def test_progress_is_shown_on_a_terminal_only():
    quiet = io.StringIO()
    TerminalProgress(quiet)("copying", {"table": "userfeatures", "table_index": 3, "tables": 9, "bytes": 2048})
    assert quiet.getvalue() == ""

    leader, follower = os.openpty()
    with open(follower, "w") as terminal:
        progress = TerminalProgress(terminal)
        progress("copying", {"table": "userfeatures", "table_index": 3, "tables": 9, "bytes": 2048})
        progress.done()
    shown = os.read(leader, 4096).decode()
    os.close(leader)
    assert "replication: copying table 3/9 userfeatures 2.0 KiB" in shown
