"""``wazo-ha demo`` end to end, as an operator runs it: the summary says what happened, and
nothing it created is left behind — after a full run, after Ctrl-C, after SIGTERM.

"Left behind" is checked against what the demo names in its output: its
workspace (every process it starts has it on its command line: PostgreSQL's
``-D``, monit's ``-c``, sipp's scenario, sshd's ``-f``, the watch's
``--config``), its namespaces (``<tag>-…``) and the unreachable route.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.rig.fixtures import SHARED_FIXTURES

WAZO_HA = str(Path(sys.executable).parent / "wazo-ha")
SUBNET = "10.203.7.0/24"
BOUND = 120.0  # the bound for the whole demo, seconds


def demo(*args: str) -> subprocess.Popen:
    # A session of its own, so a Ctrl-C can go to its whole process group as a terminal's would.
    return subprocess.Popen(
        [WAZO_HA, "demo", "--no-install", "--fixtures", str(SHARED_FIXTURES), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def read_until(process: subprocess.Popen, pattern: str, timeout: float = 90) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if re.search(pattern, line):
            return lines
        assert time.monotonic() < deadline, f"{pattern!r} not printed within {timeout} s"
    raise AssertionError(f"the demo ended before printing {pattern!r}:\n" + "\n".join(lines))


def assert_nothing_left(output: str) -> None:
    workspace = re.search(r"workspace (/\S+)", output).group(1)
    tag = re.search(r"switch namespace (\S+)-sw", output).group(1)
    assert not Path(workspace).exists(), f"workspace {workspace} left behind"
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    assert not [line for line in namespaces.splitlines() if line.startswith(f"{tag}-")], namespaces
    routes = subprocess.run(["ip", "route", "show", SUBNET], capture_output=True, text=True, check=True).stdout
    assert routes.strip() == "", f"route left behind: {routes}"
    leftovers = []
    for process in psutil.process_iter(["pid", "cmdline"]):
        if any(workspace in part for part in process.info["cmdline"] or []):
            leftovers.append(process.info)
    assert not leftovers, f"processes of the demo left running: {leftovers}"


def summary_row(output: str, step: str) -> str:
    row = next((line for line in output.splitlines() if line.startswith(step)), None)
    assert row is not None, f"no summary row {step!r} in:\n{output}"
    return row


def test_full_run_fails_over_and_back_and_leaves_nothing():
    began = time.monotonic()
    process = demo()
    output, _ = process.communicate(timeout=BOUND + 60)
    elapsed = time.monotonic() - began
    print(output)
    print(f"[demo] wall-clock duration {elapsed:.1f} s")
    assert process.returncode == 0, output
    for step in (
        "enable HA on the master",
        "enable HA on the slave",
        "sync init",
        "first replication",
        "config change on the master reaches the slave",
        "failover: master cut, phone answered by the slave",
        "failback after the 10 s stability window",
    ):
        assert re.search(r"\s ok\s", summary_row(output, step)), summary_row(output, step)
    assert re.search(r"extension 100\d\d: 0 row before, 1 after; demo-change.conf present: True", output)
    failover = float(re.search(r"first SIP answer from the slave after ([\d.]+) s", output).group(1))
    assert failover < 10, f"failover took {failover} s"
    failback = float(re.search(r"slave stood by again ([\d.]+) s", output).group(1))
    assert failback >= 10, f"failback after {failback} s: before the stability window"
    # secrets never printed
    assert "rig-sshd-root-password" not in output
    assert_nothing_left(output)
    assert elapsed < BOUND, f"the demo took {elapsed:.1f} s (bound {BOUND:g} s)"


@pytest.mark.parametrize(
    ("signum", "after"),
    [
        # Ctrl-C to the whole process group, once the slave's PostgreSQL was restarted by pg_ctl
        (signal.SIGINT, r"master: sync init"),
        # SIGTERM to the demo alone, in the middle of building the nodes
        (signal.SIGTERM, r"master 10\.203\.7\.1 \("),
    ],
    ids=["ctrl-c", "sigterm"],
)
def test_interrupted_run_cleans_up(signum, after):
    process = demo()
    lines = read_until(process, after)
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        process.send_signal(signum)
    rest, _ = process.communicate(timeout=60)
    output = "\n".join(lines) + "\n" + rest
    print(output)
    assert process.returncode == 130, output
    assert "interrupted: cleaning up" in output
    assert re.search(r"\s interrupted\s", output.split("removed:")[-1]), "no step marked interrupted in the summary"
    assert_nothing_left(output)


def test_missing_fixture_is_a_clear_error_and_creates_nothing(tmp_path):
    result = subprocess.run(
        [WAZO_HA, "demo", "--no-install", "--fixtures", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "WAZO_HA_FIXTURES": ""},
    )
    assert result.returncode == 2
    assert "asterisk-schema.sql" in result.stderr and "--fixtures DIR" in result.stderr
    assert "WAZO_HA_FIXTURES" in result.stderr
    assert "workspace" not in result.stdout
