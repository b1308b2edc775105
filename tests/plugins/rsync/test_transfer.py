"""Reading rsync's output: a flood on stderr must not block the transfer."""

from __future__ import annotations

import sys
import threading

from wazo_ha_core import PeerUnreachable
from wazo_ha_plugins.rsync import transfer

# What rsync does when thousands of files vanish during a transfer: one stderr line each, then its
# statistics on stdout, then exit 24. 300 KB is several times a pipe's buffer.
FLOOD = """
import sys
for index in range(5000):
    sys.stderr.write(f"file has vanished: \\"/var/lib/asterisk/moh/d{index:04d}/f.wav\\" (in moh)\\n")
sys.stderr.flush()
print("Number of regular files transferred: 7")
print("Total transferred file size: 1,234 bytes")
sys.exit(24)
"""


def test_a_flood_of_warnings_on_stderr_does_not_block_the_run():
    outcome: list = []
    runner = threading.Thread(
        target=lambda: outcome.append(transfer.run_rsync([sys.executable, "-c", FLOOD], lambda *_: None, {})),
        daemon=True,
    )
    runner.start()
    runner.join(timeout=30)

    assert not runner.is_alive(), "run_rsync blocked: stderr must be drained while stdout is read"
    [result] = outcome
    assert result.exit_code == 24 and len(result.errors) == 5000
    assert result.figures["files_transferred"] == 7


def test_ssh_that_cannot_connect_is_unreachable_whichever_exit_code_rsync_reports():
    """rsync reports a refused ssh connection as exit 12 or 255, depending on which end it notices first
    (the real run in test_sync.py gets either): both are "cannot reach", never "lost during the transfer"."""
    errors = [
        "ssh: connect to host 10.0.0.2 port 22: Connection refused",
        "rsync: connection unexpectedly closed (0 bytes received so far) [sender]",
        "rsync error: error in rsync protocol data stream (code 12) at io.c(232) [sender=3.2.7]",
    ]
    for code in (12, 255):
        error = transfer.explain_failure(code, errors, "10.0.0.2", "/var/lib/wazo-ha/ssh/known_hosts")
        assert isinstance(error, PeerUnreachable), (code, error)
        assert str(error) == (
            "cannot reach the slave 10.0.0.2 over ssh: ssh: connect to host 10.0.0.2 port 22: Connection refused"
        )
