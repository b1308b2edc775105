"""``python -m bench [NAME...]``: run the benchmarks (``tox -e bench``), all of them by default.

Each prints ratios against a baseline measured in the same run. They are
never part of the test run.
"""

import subprocess
import sys

BENCHMARKS = {
    "replication": "bench.replication",
    "rsync": "bench.rsync_bench",
    "failover": "bench.failover",
    "switchover": "bench.switchover",
    "startup": "bench.startup",
    "coordinated_failover": "bench.coordinated_failover",
    "freshness": "bench.freshness",
    "copy_back_follow": "bench.copy_back_follow",
}


def main() -> int:
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"bench: unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        print(f"=== benchmark {name}", flush=True)
        status |= subprocess.call([sys.executable, "-m", BENCHMARKS[name]])
    return status


sys.exit(main())
