"""Print one closing line for the whole suite from every tox env's JUnit report.

The last line is ``wazo-ha tests: N passed, N failed, N skipped``; envs that
ran no test are listed above it. Exit 1 if any test failed, or if test envs ran
and not one test passed. A run of envs that are not test envs (``lint``,
``docs``) leaves no report and exits 0.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPORTS = Path(__file__).resolve().parent.parent / ".test-reports"


def main() -> int:
    passed = failed = skipped = 0
    for report in sorted(REPORTS.glob("*.xml")):
        root = ET.parse(report).getroot()  # noqa: S314
        for suite in root.iter("testsuite"):
            tests, skips = int(suite.get("tests", 0)), int(suite.get("skipped", 0))
            failures = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            print(
                f"  {suite.get('name', report.stem):<12} {tests - skips - failures:>5} passed  "
                f"{failures:>3} failed  {skips:>3} skipped"
            )
            passed += tests - skips - failures
            failed += failures
            skipped += skips
    markers = sorted(REPORTS.glob("*.no-tests"))
    for marker in markers:
        print(f"  {marker.stem:<12} NO TESTS RAN ({marker.read_text().strip()})")
    print(f"wazo-ha tests: {passed} passed, {failed} failed, {skipped} skipped")
    test_envs_ran = any(REPORTS.glob("*.xml")) or bool(markers)
    return 1 if failed or (test_envs_ran and passed == 0) else 0


if __name__ == "__main__":
    sys.exit(main())
