"""Reading rsync's output: a flood on stderr must not block the transfer."""

from __future__ import annotations

import sys
import threading

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
