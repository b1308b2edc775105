"""Run pytest for one tox environment and keep its result for the closing summary.

pytest's exit 5 ("no tests collected") is neither hidden nor fatal here: it is
reported in capitals and recorded, and ``tests/summarize.py`` prints it again
at the end of the run. Every other exit code is passed through.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPORTS = Path(__file__).resolve().parent.parent / ".test-reports"


def main() -> int:
    env, paths = sys.argv[1], sys.argv[2:]
    REPORTS.mkdir(exist_ok=True)
    report = REPORTS / f"{env}.xml"
    report.unlink(missing_ok=True)
    code = pytest.main([f"--junitxml={report}", "-o", f"junit_suite_name={env}", *paths])
    if code == pytest.ExitCode.NO_TESTS_COLLECTED:
        (REPORTS / f"{env}.no-tests").write_text(" ".join(paths) + "\n")
        print(f"\n*** tox env {env}: NO TESTS RAN in {' '.join(paths)} — reported, not counted as a pass ***\n")
        return 0
    (REPORTS / f"{env}.no-tests").unlink(missing_ok=True)
    return int(code)


if __name__ == "__main__":
    sys.exit(main())
