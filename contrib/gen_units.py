"""Regenerate contrib/systemd/* and contrib/cron.d/* from wazo_ha_core/schedules.py (one source of truth).

    python contrib/gen_units.py          # rewrite the files
    python contrib/gen_units.py --check  # exit 1 if any is stale (a unit test does the same)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wazo_ha_core.schedules import shipped_files  # noqa: E402

CONTRIB = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    stale = []
    for relative, content in shipped_files().items():
        path = CONTRIB / relative
        if path.exists() and path.read_text() == content:
            continue
        stale.append(relative)
        if "--check" not in argv:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    if stale:
        print(("stale: " if "--check" in argv else "written: ") + ", ".join(stale))
    return 1 if stale and "--check" in argv else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
