"""Stands in for ``systemctl`` in an edit that must stay in progress until the test lets it go.

``gate.py DIR ARGS...``: the first call writes ``DIR/entered`` and blocks reading the FIFO
``DIR/release`` until the test opens it for writing and closes it; once ``DIR/released``
exists, calls return at once. Exit 0 (systemctl succeeded).
"""

import sys
from pathlib import Path

gate = Path(sys.argv[1])
if not (gate / "released").exists():
    (gate / "entered").write_text(" ".join(sys.argv[2:]))
    with open(gate / "release") as fifo:  # blocks until the test opens the other end
        fifo.read()
