"""Benchmark: whole-process start-up, against a bare interpreter of the same venv in the same run.

Each case is a command as cron, systemd or an operator runs it (the console
scripts of this venv), timed from outside from start to exit:

* ``wazo-ha --help``;
* ``wazo-ha status`` on a sandboxed node (SQLite store, migrated; no plugin
  enabled, so the figure is start-up plus reading the store's status snapshot,
  ``wazo_ha_core/status_snapshot.py``, without SQLAlchemy);
* an unchanged ``xivo-master-slave-db-replication`` (``skipped``: the first run after
  the copy by the fingerprints, the others by the markers of
  ``wazo_ha_plugins/pg_dump/since_verified.py``, without a scan) against today's
  method on the same clusters, set up as :mod:`bench.replication` does (Wazo's
  schema, 20,000 users, 2 M excluded rows). Needs root (the clusters run as
  ``postgres``); ``--no-replication`` leaves it out.

Rounds alternate the order of the commands; each ratio is the median over the
rounds of (case / the same round's yardstick), for wall and CPU time (user +
system of the child, which the other processes of a busy machine disturb less).

Run: ``tox -e bench -- startup`` (or ``python -m bench.startup [--no-replication]``).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROUNDS, REPLICATION_ROUNDS = 21, 7
TARGETS = {"--help": 5.0, "status": 10.0, "status (no snapshot)": 10.0, "unchanged legacy replication": 0.1}
#: The floor of the skipped run, as imports alone (timed in the replication rounds): what it imports now, and
#: what a path that read the store without SQLAlchemy would still import (settings, the plugin, libpq, sqlite3).
IMPORT_FLOORS = {
    "imports of the full path (store, engine) alone": (
        "wazo_ha_core.engine, wazo_ha_core.cli.main, wazo_ha_plugins.pg_dump.plugin"
    ),
    "imports of the skip cache's fast path alone": (
        "yaml, wazo_ha_core.cli.main, wazo_ha_core.settings, wazo_ha_core.skip_cache.fast_path,"
        " wazo_ha_plugins.pg_dump.plugin"
    ),
}
NO_PLUGINS = "{replication: [], file_sync: [], health_probes: [], device_provisioners: [], service_managers: []}"


def timed(argv: list[str], env: dict | None = None) -> tuple[float, float]:
    """Wall and CPU seconds of one run of ``argv``, which must exit 0."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {result.returncode}: {result.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def script(name: str) -> str:
    """A console script of this venv (what the package installs on a node)."""
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise SystemExit(f"bench: {path} not found: install the package in this venv (tox -e bench does)")
    return str(path)


def paired_rounds(commands: dict[str, list[str]], rounds: int, env: dict | None = None) -> dict[str, list[tuple]]:
    """Every command once per round, the order rotated each round; (wall, cpu) per round."""
    names = list(commands)
    runs: dict[str, list[tuple]] = {name: [] for name in names}
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            runs[name].append(timed(commands[name], env))
    return runs


def ratio(runs: list[tuple], base: list[tuple], field: int) -> float:
    return statistics.median(run[field] / ref[field] for run, ref in zip(runs, base, strict=True))


def sandbox_node(root: Path) -> Path:
    root.mkdir(parents=True)
    config = root / "config.yml"
    config.write_text(f"root: {root}\nlocal_addresses: [10.0.0.1]\nplugins: {NO_PLUGINS}\n")
    subprocess.run([script("wazo-ha"), "db", "upgrade", "--config", str(config)], check=True, capture_output=True)
    return config


def startup_rows(workdir: Path) -> list[tuple[str, float, float, float]]:
    config = sandbox_node(workdir / "node")
    # The same node without its status snapshot: status reads the store through SQLAlchemy (reading
    # writes no snapshot, so it stays that way); as a PostgreSQL store, or a snapshot just made stale.
    without = sandbox_node(workdir / "node-without-snapshot")
    (workdir / "node-without-snapshot/var/lib/wazo-ha/state.db.status.json").unlink()
    commands = {
        "bare": [sys.executable, "-c", "pass"],
        "--help": [script("wazo-ha"), "--help"],
        "status": [script("wazo-ha"), "status", "--config", str(config)],
        "status (no snapshot)": [script("wazo-ha"), "status", "--config", str(without)],
    }
    runs = paired_rounds(commands, ROUNDS)
    bare = runs.pop("bare")
    print(
        f"bare interpreter: {statistics.median(r[0] for r in bare) * 1000:.0f} ms wall, "
        f"{statistics.median(r[1] for r in bare) * 1000:.0f} ms CPU (median of {ROUNDS})"
    )
    rows = []
    for name, case in runs.items():
        wall = statistics.median(r[0] for r in case)
        print(f"wazo-ha {name}: {wall * 1000:.0f} ms wall, {statistics.median(r[1] for r in case) * 1000:.0f} ms CPU")
        rows.append((f"wazo-ha {name} / bare interpreter", ratio(case, bare, 0), ratio(case, bare, 1), TARGETS[name]))
    return rows


def replication_rows(workdir: Path) -> list[tuple[str, float, float, float]]:
    # The data and today's method are bench/replication.py's, imported rather than copied.
    from bench.replication import EXCLUDED_ROWS, USERS, CliNode, baseline, load
    from tests.plugins.pg_dump.conftest import OWNED_BY_ASTERISK, create_replication_role
    from tests.rig import wazo_data
    from tests.rig.postgres import PgCluster

    print(f"\nloading: {USERS} users + {EXCLUDED_ROWS} excluded rows...", flush=True)
    # Today's method loads into a cluster of its own: a write to any database of the slave's cluster
    # (as its loads would be) moves the markers ours skips by, which no other writer does on a real slave.
    with PgCluster.start() as master, PgCluster.start() as slave, PgCluster.start() as today_slave:
        data = wazo_data.tenant_sql() + wazo_data.users_sql(USERS) + wazo_data.excluded_rows_sql(EXCLUDED_ROWS)
        load(master, "asterisk", data)
        for cluster, database in ((slave, "asterisk"), (today_slave, "today")):
            cluster.psql("postgres", "CREATE ROLE asterisk NOLOGIN")
            load(cluster, database, "UPDATE infos SET uuid = md5('slave');" + OWNED_BY_ASTERISK)
        create_replication_role(slave, workdir)

        node = CliNode(workdir / "master-node", master, slave)  # bench/replication.py's sandboxed node
        legacy, config = node.argv, node.config
        timed(legacy)  # the first copy; from now on the slave holds the master's data
        baseline(master, today_slave, "asterisk", workdir, target="today")

        ours, today = [], []
        floors: dict[str, list[tuple]] = {name: [] for name in IMPORT_FLOORS}
        for index in range(REPLICATION_ROUNDS):
            for which in ("ours", "today") if index % 2 == 0 else ("today", "ours"):
                if which == "ours":
                    ours.append(timed(legacy))
                else:  # its dump and its load, as bench/replication.py times them
                    today.append(baseline(master, today_slave, "asterisk", workdir, target="today")["seconds"])
            for name, modules in IMPORT_FLOORS.items():  # what the skipped run imports, and a lighter path would
                floors[name].append(timed([sys.executable, "-c", f"import {modules}"]))
        history = subprocess.run(
            [script("wazo-ha"), "history", "--kind", "replication", "--json", "--config", str(config)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        assert history.count('"skipped"') >= REPLICATION_ROUNDS, "the unchanged runs must all be skipped"
        # The first unchanged run scans (fingerprints) and records the markers; the next ones skip by them.
        markers = history.count('"unchanged_by": "markers"')
        by_cache = history.count('"skip_cache": true')  # the fast path (wazo_ha_core/skip_cache)
    print(
        f"today's method (pg_dump to a file + psql -f with TRUNCATE): {statistics.median(today):.2f} s; "
        f"unchanged xivo-master-slave-db-replication: {statistics.median(o[0] for o in ours):.3f} s wall, "
        f"{statistics.median(o[1] for o in ours):.3f} s CPU (median of {REPLICATION_ROUNDS}; "
        f"{markers} skipped by markers, {by_cache} of them by the skip cache without the store, the others by "
        "fingerprints)"
    )
    wall = statistics.median(run[0] / ref for run, ref in zip(ours, today, strict=True))
    label = "unchanged xivo-master-slave-db-replication / today's method"
    rows = [(label, wall, None, TARGETS["unchanged legacy replication"])]
    for name, runs in floors.items():
        print(
            f"  python -c 'import {IMPORT_FLOORS[name]}': {statistics.median(r[0] for r in runs):.3f} s wall, "
            f"{statistics.median(r[1] for r in runs):.3f} s CPU"
        )
        floor = statistics.median(run[0] / ref for run, ref in zip(runs, today, strict=True))
        rows.append((f"  {name} / today's method", floor, None, TARGETS["unchanged legacy replication"]))
    cpu = statistics.median(run[1] / ref for run, ref in zip(ours, today, strict=True))
    rows.append(("  the same, our CPU / today's wall", cpu, None, TARGETS["unchanged legacy replication"]))
    return rows


def main(argv: list[str]) -> int:
    with_replication = "--no-replication" not in argv
    if with_replication and os.geteuid() != 0:
        print("bench: the replication case needs root (clusters run as postgres); --no-replication skips it")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        rows = startup_rows(Path(tmp))
        if with_replication:
            rows += replication_rows(Path(tmp))
    print()
    width = max(len(label) for label, *_ in rows)
    print(f"{'':<{width}}   wall    CPU")
    for label, wall, cpu, target in rows:
        verdict = ("ok" if wall <= target else "MISSED") + f" (target <= {target})"
        shown_cpu = f"{cpu:6.2f}" if cpu is not None else "     -"
        print(f"{label:<{width}} {wall:6.2f} {shown_cpu}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
