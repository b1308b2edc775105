"""Benchmark: how soon an edit (or a saved file) on the master is visible on the slave, and what following costs idle.

Whole processes as systemd runs them: ``wazo-ha follow --quiet`` on the
master, two real PostgreSQL clusters (Wazo's real schema, ``--users`` users,
``--excluded`` rows in the excluded tables) and a real sshd + rsync on
loopback for the files.

* **Baseline, measured in the same run**: today's schedule, a replication
  every minute from cron. An edit waits for the next minute (uniform over
  0-60 s) and then for the run; the run is measured here as whole
  ``wazo-ha replicate`` processes after a typical edit, so the baseline's
  p50/p95/max are 30/57/60 s plus the median run. Files likewise with
  ``wazo-ha sync``.
* **Database edits** at random moments (``--gap-min``…``--gap-max`` s
  apart), of four kinds in turn: a ``userfeatures`` edit; text with tabs,
  newlines, backslashes and non-ASCII; a user inserted with its line,
  extension and SIP endpoint (tables joined by foreign keys); a user
  deleted with its line and extension. Each is timed from its commit on
  the master to the first read of the slave that shows it (reads every
  10 ms).
* **Saved files** likewise: written to a temporary file and renamed over
  the target (an editor's save), timed until the slave's copy has the new
  content.
* **Idle cost**: after the edits, ``--idle`` seconds (default 600, the
  issue's 10 minutes) with nothing changing; CPU time (utime + stime from
  ``/proc/PID/stat``) of the follower process, of its PostgreSQL backend on
  the master, of the whole slave cluster and of the slave's sshd, as a
  percentage of one core; and how many runs reached the slave meanwhile.

``tox -e bench -- freshness`` runs it with the defaults; directly:
``python -m bench.freshness --idle 60 --edits 20`` for a quicker look.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC
from pathlib import Path

import psycopg2
import yaml

from bench.replication import load
from tests.plugins.pg_dump.conftest import OWNED_BY_ASTERISK, REPLICATION_PASSWORD, create_replication_role
from tests.rig import wazo_data
from tests.rig.plugin_loading import MemoryState
from tests.rig.postgres import PgCluster
from tests.rig.sshd import ROOT_PASSWORD, Sshd
from wazo_ha_core import HAEngine, HASettings, PluginContext, Settings, replication_password
from wazo_ha_plugins.rsync import RsyncBackend

ENTRY_POINT = "import sys; from wazo_ha_core.cli.main import main; sys.exit(main())"
SOURCE_TREE = Path(__file__).resolve().parents[1]
PEER = "127.0.0.1"
SYNCED = "/etc/asterisk/extensions_extra.d"
TARGET_P95, TARGET_MASTER_CPU, TARGET_SLAVE_CPU = 10.0, 2.0, 1.0
ODD = "tab\there\nnew line\\back\\\\slash 'quote' \"dq\" é ü 中文 🎉 "
CLK_TCK = os.sysconf("SC_CLK_TCK")


def wazo_ha(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-c", ENTRY_POINT, "--config", str(config), *args]


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))
    return total / CLK_TCK


def descendants(root: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
    found, frontier = [root], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def _epoch(moment) -> float:
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def postmaster_pid(cluster: PgCluster) -> int:
    return int((cluster.data / "postmaster.pid").read_text().split()[0])


def percentiles(values: list[float]) -> tuple[float, float, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95, ordered[-1]


class Site:
    """The two nodes: clusters, sshd, the master's sandbox and settings file."""

    def __init__(self, master: PgCluster, slave: PgCluster, sshd: Sshd, tmp: Path, options):
        self.master, self.slave, self.sshd, self.tmp = master, slave, sshd, tmp
        self.root, self.slave_root = tmp / "master", tmp / "slave"
        (self.root / SYNCED.lstrip("/")).mkdir(parents=True)
        self.slave_root.mkdir()
        password = self.root / "etc/wazo-ha/replication-password"
        password.parent.mkdir(parents=True)
        replication_password.write(password, REPLICATION_PASSWORD)
        tree = {
            "root": str(self.root),
            "paths": {"state_db": "/var/lib/wazo-ha/state.db", "run_dir": "/run/wazo-ha"},
            "timeouts": {"connect": 5},
            "plugins": {"replication": ["pg_dump"], "file_sync": ["rsync"]},
            "file_sync": {"directories": [SYNCED], "tenant_sounds_dir": None},
            "follow": {"poll_interval": options.poll, "min_interval": options.min_interval},
            "plugin_config": {
                "pg_dump": {
                    "master_host": str(master.socket_dir),
                    "master_port": master.port,
                    "slave_port": slave.port,
                },
                "rsync": {
                    "port": sshd.port,
                    "authorized_keys_file": str(sshd.authorized_keys),
                    "receiver_path": f"{tmp}/slave-bin/rsync-receiver",
                    "remote_root": str(self.slave_root),
                    "password_env": "WAZO_HA_BENCH_PASSWORD",
                },
            },
        }
        self.config = tmp / "config.yml"
        self.config.write_text(yaml.safe_dump(tree))
        os.environ["WAZO_HA_BENCH_PASSWORD"] = ROOT_PASSWORD
        settings = Settings.from_tree(tree)
        context = PluginContext(
            "rsync", "wazo_ha.file_sync", settings.plugin_config("rsync"), settings, MemoryState(), logging.getLogger()
        )
        plugin = RsyncBackend(context)
        plugin.pin_host_keys(PEER, sshd.host_key.with_suffix(".pub").read_text())
        plugin.init(PEER)
        engine = HAEngine(Settings.load(self.config))
        engine.store.upgrade()
        engine.store.write_ha_settings(HASettings("master", PEER))  # loopback: `config set` refuses it
        engine.store.close()

    def connect(self, cluster: PgCluster, database: str = "asterisk"):
        connection = psycopg2.connect(host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname=database)
        connection.autocommit = True
        return connection

    def slave_sessions(self) -> int:
        with self.connect(self.slave, "postgres") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = 'asterisk'")
            return int(cursor.fetchone()[0])

    def copies(self) -> list[tuple[float, float]]:
        """(start, end) as epoch seconds of every journaled replication that copied."""
        engine = HAEngine(Settings.load(self.config))
        try:
            events = engine.store.events(kind="replication", limit=100_000)
        finally:
            engine.store.close()
        return sorted((_epoch(event.started_at), _epoch(event.ended_at)) for event in events if event.outcome == "ok")

    def journal_count(self) -> int:
        engine = HAEngine(Settings.load(self.config))
        try:
            return len(engine.store.events(limit=100_000))
        finally:
            engine.store.close()


class Edits:
    """The four kinds of database change, each with the read that shows it on the slave."""

    def __init__(self, site: Site, users: int):
        self.master = site.connect(site.master)
        self.master.autocommit = False
        self.slave = site.connect(site.slave)
        self.users, self.next_user, self.deletable = users, users + 1000, list(range(users, users // 2, -1))

    def make(self, index: int):
        """Apply edit ``index`` on the master (committed); returns (kind, check) where check() reads the slave."""
        kind = ("userfeatures edit", "odd text", "FK-joined insert", "FK-joined delete")[index % 4]
        cursor = self.master.cursor()
        if kind == "userfeatures edit":
            user, value = 100000 + random.randint(1, self.users // 2), f"Edited {index}"
            cursor.execute("UPDATE userfeatures SET firstname = %s WHERE id = %s", (value, user))
            query, wanted = ("SELECT firstname FROM userfeatures WHERE id = %s", (user,)), value
        elif kind == "odd text":
            user, value = 100000 + random.randint(1, self.users // 2), f"{ODD}{index}"
            cursor.execute(
                "UPDATE userfeatures SET lastname = %s, description = %s WHERE id = %s", (value, value, user)
            )
            query, wanted = ("SELECT lastname FROM userfeatures WHERE id = %s", (user,)), value
        elif kind == "FK-joined insert":
            first, self.next_user = self.next_user, self.next_user + 1
            cursor.execute(wazo_data.users_sql(1, first=first))
            query, wanted = ("SELECT count(*) FROM line_extension WHERE line_id = %s", (100000 + first,)), 1
        else:
            user = 100000 + self.deletable.pop(0)
            cursor.execute(
                "DELETE FROM user_line WHERE user_id = %(id)s; DELETE FROM line_extension WHERE line_id = %(id)s;"
                "DELETE FROM linefeatures WHERE id = %(id)s; DELETE FROM extensions WHERE id = %(id)s;"
                "DELETE FROM userfeatures WHERE id = %(id)s;",
                {"id": user},
            )
            query, wanted = ("SELECT count(*) FROM userfeatures WHERE id = %s", (user,)), 0
        self.master.commit()

        def check() -> bool:
            with self.slave.cursor() as slave:
                slave.execute(*query)
                row = slave.fetchone()
                return row is not None and row[0] == wanted

        return kind, check


def visible_after(check, limit: float) -> float | None:
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        if check():
            return time.perf_counter() - started
        time.sleep(0.01)
    return None


def save(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def timed_runs(site: Site, edits: Edits, count: int) -> tuple[float, float]:
    """Median whole-process ``wazo-ha replicate`` after a typical edit, and ``wazo-ha sync`` after a saved file."""
    replicate, sync = [], []
    for index in range(count):
        edits.make(1000 + index * 4)  # a userfeatures edit
        started = time.perf_counter()
        subprocess.run(
            wazo_ha(site.config, "--quiet", "replicate"),
            check=True,
            cwd=SOURCE_TREE,
            timeout=600,
            stdout=subprocess.DEVNULL,
        )
        replicate.append(time.perf_counter() - started)
        save(site.root / SYNCED.lstrip("/") / "baseline.conf", f"; baseline {index}\n")
        started = time.perf_counter()
        subprocess.run(
            wazo_ha(site.config, "--quiet", "sync"), check=True, cwd=SOURCE_TREE, timeout=600, stdout=subprocess.DEVNULL
        )
        sync.append(time.perf_counter() - started)
    return statistics.median(replicate), statistics.median(sync)


def signal_costs(site: Site, readings: int = 200, skipped_runs: int = 5) -> None:
    """What each candidate signal costs per poll, to choose one: the follow signal and a skipped run."""
    engine = HAEngine(Settings.load(site.config))
    [backend] = engine.loader.load("replication")
    backend.change_signal()  # connect first
    with backend._signal.connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    cpu, server_cpu, wall = time.process_time(), cpu_seconds([pid]), time.perf_counter()
    for _ in range(readings):
        backend.change_signal()
    signal_wall = (time.perf_counter() - wall) / readings
    signal_cpu = (time.process_time() - cpu) / readings
    signal_server = (cpu_seconds([pid]) - server_cpu) / readings
    backend.close_change_signal()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(skipped_runs):
        [result] = engine.replicate(journal_skipped=False)
        assert result.outcome == "skipped", result.message
    skip_wall = (time.perf_counter() - wall) / skipped_runs
    skip_cpu = (time.process_time() - cpu) / skipped_runs
    engine.store.close()
    print("\nsignal costs per poll (wall; CPU of this process / of the master's backend)")
    print(
        f"  follow signal (LSN + table counters): {1000 * signal_wall:.2f} ms; "
        f"{1000 * signal_cpu:.2f} ms / {1000 * signal_server:.2f} ms"
    )
    print(
        f"  skipped replication (fingerprints of both servers): {1000 * skip_wall:.0f} ms; {1000 * skip_cpu:.0f} ms "
        f"here, plus both servers' scans; x{skip_wall / signal_wall:.0f} the signal's wall time",
        flush=True,
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--excluded", type=int, default=200_000, help="rows in the excluded tables")
    parser.add_argument("--edits", type=int, default=50, help="database edits (at least 50 for the issue)")
    parser.add_argument("--file-edits", type=int, default=50)
    parser.add_argument("--gap-min", type=float, default=1.0, help="least seconds between two edits")
    parser.add_argument("--gap-max", type=float, default=6.0, help="most seconds between two edits")
    parser.add_argument("--idle", type=float, default=600.0, help="seconds of the idle measurement (issue: 600)")
    parser.add_argument("--poll", type=float, default=1.0, help="follow.poll_interval")
    parser.add_argument("--min-interval", type=float, default=2.0, help="follow.min_interval")
    parser.add_argument("--seed", type=int, default=15)
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench: run as root (the clusters run as postgres, sshd as root)", file=sys.stderr)
        return 2
    random.seed(options.seed)
    logging.basicConfig(level=logging.ERROR)
    started = time.perf_counter()
    print(f"loading: {options.users} users + {options.excluded} excluded rows ...", flush=True)
    with (
        PgCluster.start() as master,
        PgCluster.start() as slave,
        tempfile.TemporaryDirectory(prefix="wazo-ha-bench-follow-") as tmp,
    ):
        sshd = Sshd.start()
        try:
            users = wazo_data.tenant_sql() + wazo_data.users_sql(options.users)
            load(master, "asterisk", users + wazo_data.excluded_rows_sql(options.excluded))
            slave.psql("postgres", "CREATE ROLE asterisk NOLOGIN")
            load(slave, "asterisk", OWNED_BY_ASTERISK)
            create_replication_role(slave, Path(tmp))
            site = Site(master, slave, sshd, Path(tmp), options)
            print(f"loaded in {time.perf_counter() - started:.0f} s", flush=True)
            return measure(site, options)
        finally:
            sshd.stop()


def measure(site: Site, options) -> int:
    edits = Edits(site, options.users)
    subprocess.run(
        wazo_ha(site.config, "--quiet", "replicate"),
        check=True,
        cwd=SOURCE_TREE,
        timeout=1800,
        stdout=subprocess.DEVNULL,
    )
    signal_costs(site)
    run_db, run_files = timed_runs(site, edits, 3)
    follower = subprocess.Popen(
        wazo_ha(site.config, "--quiet", "follow"), cwd=SOURCE_TREE, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        db_times: dict[str, list[float]] = {}
        commits: list[float] = []
        missed = 0
        for index in range(options.edits):
            time.sleep(random.uniform(options.gap_min, options.gap_max))  # a random moment: the workload, not a wait
            kind, check = edits.make(index)
            committed = time.time()
            seconds = visible_after(check, 120)
            if seconds is None:
                missed += 1
            else:
                db_times.setdefault(kind, []).append(seconds)
                commits.append(committed)
        file_times = []
        target = site.root / SYNCED.lstrip("/") / "followed.conf"
        mirror = site.slave_root / SYNCED.lstrip("/") / "followed.conf"
        for index in range(options.file_edits):
            time.sleep(random.uniform(options.gap_min, options.gap_max))
            text = f"; save {index}\nexten => {index},1,Answer()\n"
            save(target, text)
            seconds = visible_after(lambda text=text: mirror.exists() and mirror.read_text() == text, 120)
            if seconds is None:
                missed += 1
            else:
                file_times.append(seconds)

        # Idle: let the last run end and the change signal's lag pass, then measure.
        time.sleep(15)
        with site.connect(site.master, "postgres") as connection, connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'wazo-ha follow'")
            backends = [row[0] for row in cursor.fetchall()]
        slave_pids = descendants(postmaster_pid(site.slave)) + descendants(site.sshd.process.pid)
        groups = {"follower process": [follower.pid], "its master backend": backends, "slave (PostgreSQL + sshd)": []}
        sessions, journal = site.slave_sessions(), site.journal_count()
        before = {name: cpu_seconds(pids) for name, pids in groups.items()}
        before["slave (PostgreSQL + sshd)"] = cpu_seconds(slave_pids)
        wall = time.perf_counter()
        time.sleep(options.idle)  # the measured period itself
        wall = time.perf_counter() - wall
        after = {name: cpu_seconds(pids) for name, pids in groups.items()}
        after["slave (PostgreSQL + sshd)"] = cpu_seconds(
            descendants(postmaster_pid(site.slave)) + descendants(site.sshd.process.pid)
        )
        idle_runs, idle_events = site.slave_sessions() - sessions, site.journal_count() - journal
    finally:
        follower.terminate()
        _, err = follower.communicate(timeout=60)

    all_db = [seconds for times in db_times.values() for seconds in times]
    print(f"\nfreshness ({len(all_db)} database edits, {len(file_times)} saved files, {missed} never visible in 120 s)")
    print(f"  baseline (cron every minute): replicate run {run_db:.2f} s, sync run {run_files:.2f} s (medians, whole)")
    rows = [("database, all kinds", all_db, run_db)] + [(f"  {k}", v, run_db) for k, v in db_times.items()]
    rows.append(("saved files", file_times, run_files))
    print(f"  {'case':<28} {'n':>3} {'p50':>7} {'p95':>7} {'max':>7}   baseline p50/p95   ratio p50, p95")
    for name, times, run in rows:
        if not times:
            continue
        p50, p95, top = percentiles(times)
        base50, base95 = 30 + run, 57 + run
        print(
            f"  {name:<28} {len(times):>3} {p50:>6.2f}s {p95:>6.2f}s {top:>6.2f}s   {base50:>5.1f}s/{base95:>5.1f}s"
            f"   {p50 / base50:.3f}, {p95 / base95:.3f}"
        )
    # Where the time goes: from the commit to the start of the next copy (detection), and the copy itself.
    copies = [copy for copy in site.copies() if commits and copy[0] >= commits[0] - 1]
    detection, durations = [], []
    for committed in commits:
        later = [copy for copy in copies if copy[0] >= committed]
        if later:
            detection.append(later[0][0] - committed)
            durations.append(later[0][1] - later[0][0])
    if detection:
        d50, d95, dmax = percentiles(detection)
        r50, r95, rmax = percentiles(durations)
        print(
            f"  commit -> start of the next copy (the follower's part): p50 {d50:.2f}s p95 {d95:.2f}s max {dmax:.2f}s"
        )
        print(
            f"  that copy's duration (the replication's part):          p50 {r50:.2f}s p95 {r95:.2f}s max {rmax:.2f}s"
        )
    p95_db = percentiles(all_db)[1] if all_db else float("inf")
    p95_files = percentiles(file_times)[1] if file_times else float("inf")
    print(
        f"  target p95 <= {TARGET_P95:g} s: database {'met' if p95_db <= TARGET_P95 else 'MISSED'}, "
        f"files {'met' if p95_files <= TARGET_P95 else 'MISSED'}"
    )
    print(f"\nidle cost over {wall:.0f} s (--idle {options.idle:g}), % of one core; {len(slave_pids)} slave processes")
    for name in groups:
        print(
            f"  {name:<28} {100 * (after[name] - before[name]) / wall:6.3f} %  ({after[name] - before[name]:.2f} s CPU)"
        )
    master_cost = sum(after[name] - before[name] for name in ("follower process", "its master backend")) / wall * 100
    slave_cost = (after["slave (PostgreSQL + sshd)"] - before["slave (PostgreSQL + sshd)"]) / wall * 100
    print(
        f"  master (follower + backend)  {master_cost:6.3f} %  target <= {TARGET_MASTER_CPU:g} %: "
        f"{'met' if master_cost <= TARGET_MASTER_CPU else 'MISSED'}"
    )
    print(
        f"  slave (all of it, an upper bound) {slave_cost:6.3f} %  target <= {TARGET_SLAVE_CPU:g} %: "
        f"{'met' if slave_cost <= TARGET_SLAVE_CPU else 'MISSED'}"
    )
    print(f"  runs reaching the slave while idle: {idle_runs} sessions, {idle_events} journal events")
    if err.strip():
        print(f"\nfollower stderr:\n{err.decode()[-2000:]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
