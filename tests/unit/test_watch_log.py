"""A running ``wazo-ha watch`` in steady state writes nothing: the log tells state changes, not heartbeats.

A real ``wazo-ha watch --quiet`` process (as the shipped unit runs it) probes a
loopback TCP listener with the ``tcp`` probe. The listener counts the
connections, so the test knows how many rounds ran without sleeping: it waits
for the first rounds, counts the log lines, waits for many more rounds and
counts again.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from wazo_ha_core.config import HASettings
from wazo_ha_core.store import Store

ENTRY_POINT = "import sys; from wazo_ha_core.cli.main import main; sys.exit(main())"
SOURCE_TREE = Path(__file__).resolve().parents[2]
INTERVAL = 0.05
STEADY_ROUNDS = 40


class CountingListener:
    """Accepts TCP connections on loopback and counts them (one per watch round)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.count = 0
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            connection.close()
            with self.changed:
                self.count += 1
                self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        with self.changed:
            while self.count < count:
                left = deadline - time.monotonic()
                assert left > 0, f"only {self.count} watch rounds within {timeout} s, expected {count}"
                self.changed.wait(left)

    def close(self):
        self.sock.close()


@pytest.fixture
def listener():
    listener = CountingListener()
    yield listener
    listener.close()


def test_steady_watch_writes_no_line(tmp_path, listener):
    config = tmp_path / "config.yml"
    config.write_text(
        f"root: {tmp_path}/root\nlocal_addresses: [10.0.0.1]\n"
        "plugins: {health_probes: [tcp], service_managers: [], device_provisioners: [], file_sync: [], "
        "replication: []}\n"
        f"plugin_config: {{tcp: {{port: {listener.port}, checks: host, timeout: 2}}}}\n"
        f"watch: {{interval: {INTERVAL}}}\n"
    )
    # The command's entry point, from this source tree (``python -m`` would add a runpy warning on stderr).
    wazo_ha = [sys.executable, "-c", ENTRY_POINT, "--config", str(config)]
    subprocess.run([*wazo_ha, "db", "upgrade"], check=True, capture_output=True, timeout=60, cwd=SOURCE_TREE)
    # A slave of a master on loopback, which `config set` refuses: written to the store directly.
    store = Store(f"sqlite:///{tmp_path}/root/var/lib/wazo-ha/state.db")
    store.write_ha_settings(HASettings("slave", "127.0.0.1"))
    store.close()
    log_file = tmp_path / "root/var/log/wazo-ha.log"

    watch = subprocess.Popen(
        [*wazo_ha, "--quiet", "watch"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        cwd=SOURCE_TREE,
    )
    try:
        listener.wait_for(3)  # started, first round logged: the state is known
        lines_then = _lines(log_file)
        listener.wait_for(listener.count + STEADY_ROUNDS)
        steady = _lines(log_file)[len(lines_then) :]
    finally:
        watch.send_signal(signal.SIGTERM)
        out, err = watch.communicate(timeout=30)
    assert steady == [], f"{len(steady)} line(s) in {STEADY_ROUNDS} steady rounds:\n" + "\n".join(steady[:10])
    assert "watch started" in "\n".join(lines_then)
    assert "round good" in "\n".join(lines_then)
    assert out == b"" and err == b"", err.decode()  # --quiet: nothing but errors on the console
    assert watch.returncode == 0


def _lines(path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
