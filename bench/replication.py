"""Benchmark: ``pg_dump`` replication against today's method, measured in the same run.

Baseline (today's ``xivo-master-slave-db-replication``): a data-only
``pg_dump`` of schema ``public`` minus the excluded tables to a file, then on
the slave ``psql -f`` of ``BEGIN; SET session_replication_role = replica;
TRUNCATE …; <data>; COMMIT``.

Data: Wazo's real schema, 20,000 users each with a line, an extension and a
SIP endpoint (18 rows per user), plus 2,000,000 rows in the excluded ``cel``
and ``queue_log``.

**Typical change, as a scheduled run meets it**: the master's database is
recreated holding the previous state (the slave's too), one run of ours
copies it (untimed: it records the last good copy, as every run does), then
the master is edited (1 % of the users, 200, their name and SIP password;
in three other tables joined by foreign keys rows inserted — 20
``user_line`` rows, 20 SIP options —, deleted — 20 ``extensions`` — and
edited to text with tabs, newlines, backslashes and non-ASCII — 20 SIP
options), and the next run of ours (not forced, as cron and ``wazo-ha
follow`` start it) is timed: in-process (a harness around the plugin), and
as the whole ``xivo-master-slave-db-replication`` process on a sandboxed
node (start-up, the skip cache's attempt, the engine, the journal; the
previous copy and a skipped run made by the same command). The same
scenario is also timed with the differing keys found by hashing every row
(the since-copy record dropped), with buckets, and with every differing
table sent whole (the method before issue 15). The first copy is also timed
through the command, on a fresh node.

The other cases leave the master as it is; before every timed run (ours and
the baseline's) the slave's database is recreated from a template holding
one starting state (outside the timing), and our runs are forced, with no
record of a previous copy:

* ``previous copy``: the slave already equals the master (what today's
  hourly job finds most of the time); the baseline's runs start here;
* ``typical change``: the slave holds the previous state of the change
  above (the master's edits, made in reverse on the slave); with no record
  of the copy that left it there, every table is compared;
* ``first copy``: the slave's replicated tables hold only Wazo's initial data;
* ``every row differs``: the slave holds another 20,000 users (worst case).

Printed: each replication / baseline, unchanged run / baseline, how long a
reader of the slave's tables is blocked / baseline's, and peak memory of the
replicating process(es) at two database sizes.

Run as root (the clusters run as ``postgres``): ``tox -e bench``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg2

from tests.plugins.pg_dump.conftest import OWNED_BY_ASTERISK, REPLICATION_PASSWORD, create_replication_role
from tests.rig import wazo_data
from tests.rig.fixtures import SHARED_FIXTURES
from tests.rig.postgres import SUPERUSER_PASSWORD, PgCluster
from wazo_ha_plugins.pg_dump.catalog import DEFAULT_EXCLUDED_TABLES

USERS, SMALL_USERS, EXCLUDED_ROWS = 20_000, 2_000, 2_000_000
REPEAT = int(os.environ.get("WAZO_HA_BENCH_ROUNDS", "5"))  # rounds; fewer on a machine too busy for five
# Issue 15: a typical change at most 0.35 of today's method, a first copy no slower than it.
TARGETS = {"typical change": 0.35, "first copy": 1.0, "unchanged": 0.05, "lock": 0.5}


def load(cluster: PgCluster, database: str, extra: str) -> None:
    cluster.create_database(database)
    cluster.psql_file(database, SHARED_FIXTURES / "asterisk-schema.sql")
    cluster.psql_file(database, SHARED_FIXTURES / "asterisk-populate-data.sql")
    cluster.psql(database, extra)
    cluster.psql(database, "VACUUM ANALYZE")


class BlockedReader:
    """Reads the slave's ``userfeatures`` every few milliseconds; the longest single read is how long it was blocked.

    Paced like a service polling its configuration, not a busy loop: a busy
    loop would take one of the two cores from a run that does not block it
    (ours) and none from one that does (the baseline, whose reader waits).
    """

    PAUSE = 0.005

    def __init__(self, cluster: PgCluster, database: str):
        self.connection = psycopg2.connect(
            host=str(cluster.socket_dir), port=cluster.port, user="postgres", dbname=database
        )
        self.connection.autocommit = True
        self.longest = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        with self.connection.cursor() as cursor:
            while not self.stop.is_set():
                started = time.perf_counter()
                cursor.execute("SELECT firstname FROM userfeatures WHERE id = 100001")
                cursor.fetchall()
                self.longest = max(self.longest, time.perf_counter() - started)
                self.stop.wait(self.PAUSE)

    def __enter__(self) -> BlockedReader:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self.connection.close()


def _peak_rss_kib(pid: int) -> int:
    """VmHWM of a running process: the peak of its own image (ru_maxrss would count the forked parent's pages)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def run_measured(argv: list[str], env: dict | None = None) -> tuple[float, int, str]:
    """Run a command; wall time, peak RSS (KiB, sampled every 5 ms until it exits), output."""
    started = time.perf_counter()
    peak = 0
    with tempfile.TemporaryFile() as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
        while process.poll() is None:
            peak = max(peak, _peak_rss_kib(process.pid))
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        out.seek(0)
        text = out.read().decode(errors="replace")
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {text[-2000:]}")
    if "VmHWM" in text:  # our own runner reports its exact peak
        peak = max(peak, int(text.split("VmHWM")[1].split()[0]))
    return elapsed, peak, text


def baseline(master: PgCluster, slave: PgCluster, database: str, workdir: Path, target: str | None = None) -> dict:
    """Today's method: pg_dump to a file, then psql -f in one transaction with TRUNCATE (into ``target``)."""
    dump = workdir / "dump.sql"
    excluded = [
        arg for name in DEFAULT_EXCLUDED_TABLES for arg in ("-T", f"public.{name}", "-T", f"public.{name}_id_seq")
    ]
    dump_argv = [
        "pg_dump",
        "-h",
        str(master.socket_dir),
        "-p",
        str(master.port),
        "-U",
        "postgres",
        "--data-only",
        "--schema=public",
        *excluded,
        "-f",
        str(dump),
        database,
    ]
    dump_time, dump_rss, _ = run_measured(dump_argv)
    tables = [line.split()[1] for line in dump.read_text().splitlines() if line.startswith("COPY ")]
    script = workdir / "load.sql"
    script.write_text(
        f"BEGIN;\nSET LOCAL session_replication_role = replica;\nTRUNCATE {', '.join(tables)};\n\\i {dump}\nCOMMIT;\n"
    )
    pgpass = workdir / "pgpass"
    pgpass.write_text(f"127.0.0.1:{slave.port}:*:postgres:{SUPERUSER_PASSWORD}\n")
    pgpass.chmod(0o600)
    env = {**os.environ, "PGPASSFILE": str(pgpass)}
    load_argv = [
        "psql",
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        "127.0.0.1",
        "-p",
        str(slave.port),
        "-U",
        "postgres",
        "-d",
        target or database,
        "-f",
        str(script),
    ]
    with BlockedReader(slave, target or database) as reader:
        load_time, load_rss, _ = run_measured(load_argv, env)
    dump.unlink()
    return {"seconds": dump_time + load_time, "blocked": reader.longest, "rss_kib": max(dump_rss, load_rss)}


OURS = textwrap.dedent(
    """
    import json, logging, sys, time
    from pathlib import Path
    from wazo_ha_core import Settings
    from wazo_ha_core.extensions import PluginContext
    from wazo_ha_core.store import Store
    from wazo_ha_plugins.pg_dump import PgDumpReplication

    root, config, force = Path(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3] == "force"
    from wazo_ha_plugins.pg_dump import keyed
    if sys.argv[4] == "whole":  # the method before rows were compared by key: every differing table whole
        keyed.WHOLE_FRACTION = -1
    if sys.argv[4] == "buckets":  # by key, per bucket of keys first (off by default: measured slower)
        keyed.MIN_BUCKETED_ROWS = 4096
    store = Store(f"sqlite:///{root}/state.db")  # migrated before the timing, as on a node
    if sys.argv[4] in ("hash keys", "buckets"):  # compared by hashing every row: the last copy's record dropped
        from wazo_ha_plugins.pg_dump import since_copy
        store.plugin_state("replication.pg_dump").delete(since_copy.state_key("127.0.0.1"))
    settings = Settings.from_tree({"root": str(root)})
    context = PluginContext("pg_dump", "wazo_ha.replication", config, settings,
                            store.plugin_state("replication.pg_dump"), logging.getLogger("bench"))
    started = time.perf_counter()
    result = PgDumpReplication(context).replicate("127.0.0.1", force=force)
    seconds = time.perf_counter() - started
    hwm = [line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM:")][0]
    print("VmHWM", hwm)
    print(json.dumps({"seconds": seconds, "outcome": result.outcome, **result.figures}))
    """
)


def ours(
    master: PgCluster,
    slave: PgCluster,
    database: str,
    workdir: Path,
    force: bool,
    write_mode="changed_rows",
    by_key: bool = True,
    statuses: dict | None = None,
    variant: str | None = None,
) -> dict:
    # As in production: the slave's NOSUPERUSER replication role, its password at paths.replication_password.
    password = workdir / "etc/wazo-ha/replication-password"
    password.parent.mkdir(parents=True, exist_ok=True)
    password.write_text(REPLICATION_PASSWORD)
    password.chmod(0o600)
    config = {
        "database": database,
        "master_host": str(master.socket_dir),
        "master_port": master.port,
        "slave_port": slave.port,
        "write_mode": write_mode,
    }
    # The store is migrated once when a node is set up, not by every run: outside the timing.
    from wazo_ha_core.store import Store

    store = Store(f"sqlite:///{workdir}/state.db")
    store.upgrade()
    if statuses is not None:  # the users' statuses the previous copy left, as every run after a first copy has
        store.plugin_state("replication.pg_dump").set("user_statuses", statuses)
    store.close()
    argv = [
        sys.executable,
        "-c",
        OURS,
        str(workdir),
        json.dumps(config),
        "force" if force else "auto",
        variant or ("by key" if by_key else "whole"),
    ]
    with BlockedReader(slave, database) as reader:
        wall, rss, out = run_measured(argv)
    result = json.loads(out.strip().splitlines()[-1])
    return {**result, "wall": wall, "blocked": reader.longest, "rss_kib": rss}


class CliNode:
    """A master node as cron runs it: ``xivo-master-slave-db-replication <slave>`` (the venv's console script,
    the whole process: start-up, the skip cache's attempt, the engine, the journal) on a sandboxed root
    (SQLite store migrated when the node was set up, outside the timing)."""

    def __init__(self, root: Path, master: PgCluster, slave: PgCluster):
        password = root / "etc/wazo-ha/replication-password"
        password.parent.mkdir(parents=True)
        password.write_text(REPLICATION_PASSWORD)
        password.chmod(0o600)
        self.config = config = root / "config.yml"
        config.write_text(
            f"root: {root}\nlocal_addresses: [127.0.0.1]\n"
            "plugins: {replication: [pg_dump], file_sync: [], health_probes: [], device_provisioners: [],"
            " service_managers: []}\n"
            f"plugin_config: {{pg_dump: {{database: asterisk, master_host: '{master.socket_dir}',"
            f" master_port: {master.port}, slave_port: {slave.port}}}}}\n"
        )
        bin_dir = Path(sys.executable).parent
        subprocess.run([bin_dir / "wazo-ha", "db", "upgrade", "--config", config], check=True, capture_output=True)
        self.argv = [str(bin_dir / "xivo-master-slave-db-replication"), "127.0.0.1", "--config", str(config)]
        self.history = [str(bin_dir / "wazo-ha"), "history", "--kind", "replication", "--json", "--config", str(config)]

    def run(self) -> dict:
        """One run, timed from outside; its journal event's figures (the newest)."""
        wall, rss, _ = run_measured(self.argv)
        newest = json.loads(subprocess.run(self.history, check=True, capture_output=True, text=True).stdout)[0]
        return {**newest["figures"], "outcome": newest["outcome"], "wall": wall, "rss_kib": rss}


def typical_change_by_cron(
    master: PgCluster, slave: PgCluster, masters: MasterStates, states: SlaveStates, root: Path
) -> dict:
    """:func:`typical_change` with the real command: a copy, a skipped run (it leaves the skip cache, as
    the runs between two changes do), the master edited, then the timed run."""
    masters.previous()
    states.reset("typical change")
    node = CliNode(root, master, slave)
    assert node.run()["outcome"] == "ok"
    assert node.run()["outcome"] == "skipped"
    masters.edit()
    run = node.run()
    assert run["outcome"] == "ok" and run["keys"] > 0, run
    return run


def first_copy_by_cron(master: PgCluster, slave: PgCluster, states: SlaveStates, root: Path) -> dict:
    states.reset("first copy")
    run = CliNode(root, master, slave).run()
    assert run["outcome"] == "ok" and run["rows"] > 0, run
    return run


def master_statuses(master: PgCluster) -> dict:
    """The users' statuses as the pg_dump plugin keeps them after a copy (its baseline), read on the master."""
    from wazo_ha_plugins.pg_dump.user_statuses import read_baseline

    connection = psycopg2.connect(host=str(master.socket_dir), port=master.port, user="postgres", dbname="asterisk")
    try:
        return read_baseline(connection.cursor())
    finally:
        connection.close()


def median(runs: list[dict], key: str) -> float:
    return statistics.median(run[key] for run in runs)


@dataclass(frozen=True)
class SlaveState:
    """One starting state of the slave: Wazo's schema and initial data, then optionally the master's
    data (copied by today's method, not generated again: some columns default to random UUIDs and
    now()), then ``sql``."""

    copy_master: bool
    sql: str = ""


def previous_state_sql() -> str:
    """From the master's data, the state it had at the previous copy: the issue's typical change, undone."""
    edited = (
        "UPDATE userfeatures SET firstname = firstname || ' (old)' WHERE id % 100 = 0;"
        "UPDATE endpoint_sip_section_option SET value = value || '-old' WHERE key = 'password' "
        "AND endpoint_sip_section_uuid IN (SELECT md5('sectionauth' || (id - 100000))::uuid "
        "FROM userfeatures WHERE id % 100 = 0);"
    )
    # The load: besides the edits, rows inserted and deleted on the master since the last copy in
    # three other tables joined by foreign keys, text with tabs, newlines, backslashes and non-ASCII. Made
    # on the slave in reverse: a row the master inserted is one the slave lacks, and the other way round.
    nasty = wazo_data.literal(wazo_data.NASTY)
    short_nasty = wazo_data.literal("é\t\\N\n日")  # extensions.exten is varchar(40)
    inserted_and_deleted = (
        # 20 users' user_line rows (→ userfeatures, linefeatures) and their SIP "set_var" options inserted
        "DELETE FROM user_line WHERE user_id % 1000 = 7;"
        "DELETE FROM endpoint_sip_section_option WHERE key = 'set_var' AND endpoint_sip_section_uuid IN "
        "(SELECT md5('sectionendpoint' || (id - 100000))::uuid FROM userfeatures WHERE id % 1000 = 7);"
        # 20 extensions deleted on the master (the slave still has them), 20 options' text edited
        "INSERT INTO extensions (id, context, exten, type, typeval) SELECT 900000 + i, 'acme-internal', "
        f"{short_nasty} || i, 'user', '0' FROM generate_series(1, 20) AS i;"
        f"UPDATE endpoint_sip_section_option SET value = {nasty} WHERE key = 'callerid' "
        "AND endpoint_sip_section_uuid IN (SELECT md5('sectionendpoint' || (id - 100000))::uuid "
        "FROM userfeatures WHERE id % 1000 = 3);"
    )
    return edited + inserted_and_deleted


def slave_states(users: int) -> dict[str, SlaveState]:
    return {
        "previous copy": SlaveState(copy_master=True),
        "typical change": SlaveState(copy_master=True, sql=previous_state_sql()),
        "first copy": SlaveState(copy_master=False),
        "every row differs": SlaveState(
            copy_master=False, sql=wazo_data.tenant_sql() + wazo_data.users_sql(users, first=users + 1)
        ),
    }


def typical_change_sql(master: PgCluster) -> str:
    """The master's edits since the previous copy, as SQL taking :func:`previous_state_sql`'s state back to the
    master's data (read from it: the rows the previous state lacks, the values it changed)."""
    connection = psycopg2.connect(host=str(master.socket_dir), port=master.port, user="postgres", dbname="asterisk")
    statements = [
        "UPDATE userfeatures SET firstname = left(firstname, -6) WHERE id % 100 = 0;",  # ' (old)'
        "UPDATE endpoint_sip_section_option SET value = left(value, -4) WHERE key = 'password' "  # '-old'
        "AND endpoint_sip_section_uuid IN (SELECT md5('sectionauth' || (id - 100000))::uuid "
        "FROM userfeatures WHERE id % 100 = 0);",
        "DELETE FROM extensions WHERE id BETWEEN 900001 AND 900020;",
    ]
    users_7 = "(SELECT md5('sectionendpoint' || (id - 100000))::uuid FROM userfeatures WHERE id % 1000 = {})"
    inserted = {
        "user_line": "SELECT * FROM user_line WHERE user_id % 1000 = 7",
        "endpoint_sip_section_option": "SELECT * FROM endpoint_sip_section_option WHERE key = 'set_var' "
        f"AND endpoint_sip_section_uuid IN {users_7.format(7)}",
    }
    try:
        with connection.cursor() as cursor:
            for table, query in inserted.items():
                cursor.execute(query)
                columns = ", ".join(f'"{column.name}"' for column in cursor.description)
                for row in cursor.fetchall():
                    values = ", ".join(["%s"] * len(row))
                    statements.append(
                        cursor.mogrify(f"INSERT INTO {table} ({columns}) VALUES ({values});", row).decode()
                    )
            cursor.execute(
                "SELECT uuid, value FROM endpoint_sip_section_option WHERE key = 'callerid' "
                f"AND endpoint_sip_section_uuid IN {users_7.format(3)}"
            )
            for uuid, value in cursor.fetchall():
                statements.append(
                    cursor.mogrify(
                        "UPDATE endpoint_sip_section_option SET value = %s WHERE uuid = %s;", (value, uuid)
                    ).decode()
                )
    finally:
        connection.close()
    return "\n".join(statements)


class MasterStates:
    """The master's ``asterisk`` back to the previous copy's state (:meth:`previous`), then edited (:meth:`edit`)."""

    TEMPLATE = "master_previous"

    def __init__(self, master: PgCluster):
        self.master = master
        self.edits = typical_change_sql(master)
        master.psql("postgres", f"CREATE DATABASE {self.TEMPLATE} TEMPLATE asterisk")
        master.psql(self.TEMPLATE, previous_state_sql() + "VACUUM ANALYZE")

    def previous(self) -> None:
        self.master.psql("postgres", "DROP DATABASE IF EXISTS asterisk WITH (FORCE)")
        self.master.psql("postgres", f"CREATE DATABASE asterisk TEMPLATE {self.TEMPLATE}")
        self.master.psql("asterisk", "CHECKPOINT")

    def edit(self) -> None:
        self.master.psql("asterisk", "BEGIN;" + self.edits + "COMMIT;")


def typical_change(
    master: PgCluster,
    slave: PgCluster,
    masters: MasterStates,
    states: SlaveStates,
    where: Path,
    statuses: dict,
    variant: str = "by key",
) -> dict:
    """Issue 15's typical change as a scheduled run meets it: the previous copy made by ours (untimed), the
    master edited, then one run of ours, not forced (timed)."""
    masters.previous()
    states.reset("typical change")  # the same rows as the master's previous state
    previous = ours(master, slave, "asterisk", where, force=False, statuses=statuses, variant=variant)
    assert previous["outcome"] == "copied" and previous["rows"] == 0, previous  # equal: nothing written
    masters.edit()
    run = ours(master, slave, "asterisk", where, force=False, variant=variant)
    assert run["outcome"] == "copied" and run["keys"] + run["rows"] > 0, run
    return run


class SlaveStates:
    """Template databases on the slave, one per starting state; :meth:`reset` recreates ``asterisk`` from one."""

    def __init__(self, master: PgCluster, slave: PgCluster, users: int, workdir: Path):
        self.slave = slave
        self.templates = {}
        for index, (name, state) in enumerate(slave_states(users).items()):
            template = f"state_{index}"
            load(slave, template, "UPDATE infos SET uuid = md5('slave');" + OWNED_BY_ASTERISK)
            if state.copy_master:
                baseline(master, slave, "asterisk", workdir, target=template)
            slave.psql(template, state.sql + "VACUUM ANALYZE")
            self.templates[name] = template

    def reset(self, state: str, database: str = "asterisk") -> None:
        self.slave.psql("postgres", f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        self.slave.psql("postgres", f"CREATE DATABASE {database} TEMPLATE {self.templates[state]}")
        self.slave.psql(database, "CHECKPOINT")


def main() -> int:
    if os.geteuid() != 0:
        print("bench: run as root (the clusters run as the postgres user)", file=sys.stderr)
        return 2
    print(f"loading: {USERS} users + {EXCLUDED_ROWS} excluded rows (and a {SMALL_USERS}-user copy)...", flush=True)
    started = time.perf_counter()
    with PgCluster.start() as master, PgCluster.start() as slave, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        big = wazo_data.tenant_sql() + wazo_data.users_sql(USERS) + wazo_data.excluded_rows_sql(EXCLUDED_ROWS)
        small = wazo_data.tenant_sql() + wazo_data.users_sql(SMALL_USERS)
        slave.psql("postgres", "CREATE ROLE asterisk NOLOGIN")
        load(master, "asterisk", big)
        load(master, "asterisk_small", small)
        load(slave, "asterisk_small", OWNED_BY_ASTERISK)
        states = SlaveStates(master, slave, USERS, workdir)
        masters = MasterStates(master)
        create_replication_role(slave, workdir)
        print(f"loaded in {time.perf_counter() - started:.0f} s\n", flush=True)

        # Interleaved: each round measures the baseline and every case of ours, so that a
        # machine getting slower or faster during the bench weighs on both alike.
        base, typical, truncating, whole_tables, with_buckets, by_hash = [], [], [], [], [], []
        typical_cron, first_cron = [], []
        ours_by_state: dict[str, list[dict]] = {state: [] for state in slave_states(USERS)}
        # A slave that holds a previous copy also holds its users' statuses: a node's state keeps them as the
        # baseline the next run compares with (wazo_ha_plugins/pg_dump/user_statuses.py), so these runs get it.
        statuses = master_statuses(master)
        after_copy = {state: statuses if setup.copy_master else None for state, setup in slave_states(USERS).items()}
        for index in range(REPEAT):
            states.reset("previous copy")
            base.append(baseline(master, slave, "asterisk", workdir))
            for state, state_runs in ours_by_state.items():
                states.reset(state)
                where = workdir / f"{state}{index}"
                state_runs.append(ours(master, slave, "asterisk", where, force=True, statuses=after_copy[state]))
            typical.append(typical_change(master, slave, masters, states, workdir / f"typical{index}", statuses))
            typical_cron.append(typical_change_by_cron(master, slave, masters, states, workdir / f"cron{index}"))
            first_cron.append(first_copy_by_cron(master, slave, states, workdir / f"cron-first{index}"))
            whole_tables.append(
                typical_change(master, slave, masters, states, workdir / f"whole{index}", statuses, "whole")
            )
            with_buckets.append(
                typical_change(master, slave, masters, states, workdir / f"buckets{index}", statuses, "buckets")
            )
            by_hash.append(
                typical_change(master, slave, masters, states, workdir / f"hash{index}", statuses, "hash keys")
            )
            states.reset("every row differs")
            truncating.append(
                ours(master, slave, "asterisk", workdir / f"trunc{index}", force=True, write_mode="truncate")
            )
        states.reset("typical change")
        skip_dir = workdir / "skip"
        ours(master, slave, "asterisk", skip_dir, force=True)
        # The first unchanged run scans (fingerprints) and records the markers; the next ones skip by them.
        by_fingerprints = ours(master, slave, "asterisk", skip_dir, force=False)
        unchanged = [ours(master, slave, "asterisk", skip_dir, force=False) for _ in range(REPEAT)]
        assert all(run["outcome"] == "skipped" for run in [by_fingerprints, *unchanged])
        assert by_fingerprints["unchanged_by"] == "fingerprints"
        markers = sum(run["unchanged_by"] == "markers" for run in unchanged)
        small_base = baseline(master, slave, "asterisk_small", workdir)
        small_ours = ours(master, slave, "asterisk_small", workdir / "small", force=True)

    full = ours_by_state["first copy"]
    b_time, b_block = median(base, "seconds"), median(base, "blocked")

    def paired(runs: list[dict], key: str = "seconds", base_key: str = "seconds") -> float:
        """Median over the rounds of ours / the same round's baseline."""
        return statistics.median(run[key] / round_base[base_key] for run, round_base in zip(runs, base, strict=True))

    every_run = [run for state_runs in ours_by_state.values() for run in state_runs]

    def written(runs: list[dict]) -> str:
        return f"{median(runs, 'rows'):.0f} rows written, {median(runs, 'deleted'):.0f} deleted"

    report = [(f"typical change / baseline  ({written(typical)})", paired(typical), TARGETS["typical change"])]
    report.append(
        (
            "  typical change, whole xivo-master-slave-db-replication process",
            paired(typical_cron, "wall"),
            TARGETS["typical change"],
        )
    )
    report.append(("  typical change, in-process harness with Python start-up", paired(typical, "wall"), None))
    report.append(
        (
            "  start-up and harness alone (wall - in-process, typical change) / baseline",
            paired([{"x": run["wall"] - run["seconds"]} for run in typical], "x"),
            None,
        )
    )
    for state, state_runs in ours_by_state.items():
        label = "typical change, forced, no record of the last copy" if state == "typical change" else state
        report.append((f"{label} / baseline  ({written(state_runs)})", paired(state_runs), TARGETS.get(state)))
    report += [
        (
            "  first copy, whole xivo-master-slave-db-replication process",
            paired(first_cron, "wall"),
            TARGETS["first copy"],
        ),
        ("  first copy, in-process harness with Python start-up", paired(full, "wall"), None),
        ("typical change, every differing table whole (before issue 15) / baseline", paired(whole_tables), None),
        (
            "  by key / every differing table whole, same round",
            statistics.median(
                run["seconds"] / other["seconds"] for run, other in zip(typical, whole_tables, strict=True)
            ),
            None,
        ),
        ("typical change, keys by hashing every row (no since-copy record) / baseline", paired(by_hash), None),
        (
            "  since copy (the default) / keys by hash, same round",
            statistics.median(run["seconds"] / other["seconds"] for run, other in zip(typical, by_hash, strict=True)),
            None,
        ),
        ("typical change, keys by hash with buckets from 4,096 rows / baseline", paired(with_buckets), None),
        (
            "  with buckets / keys by hash without, same round",
            statistics.median(
                other["seconds"] / run["seconds"] for run, other in zip(by_hash, with_buckets, strict=True)
            ),
            None,
        ),
        (
            f"unchanged run / baseline ({markers} of {REPEAT} by markers)",
            median(unchanged, "seconds") / b_time,
            TARGETS["unchanged"],
        ),
        ("  (whole process, with Python start-up)", median(unchanged, "wall") / b_time, None),
        ("  unchanged, by fingerprints (first after a copy) / baseline", by_fingerprints["seconds"] / b_time, None),
        (
            "reader blocked on the slave, longest of all runs / baseline",
            max(r["blocked"] for r in every_run) / b_block,
            TARGETS["lock"],
        ),
        ("write_mode truncate, every row differs / baseline", paired(truncating), None),
        ("write_mode truncate, reader blocked / baseline", paired(truncating, "blocked", "blocked"), TARGETS["lock"]),
        ("peak memory / baseline's", median(full, "rss_kib") / median(base, "rss_kib"), None),
        (f"peak memory {USERS} users / {SMALL_USERS} users", median(full, "rss_kib") / small_ours["rss_kib"], None),
        (f"  baseline: {USERS} users / {SMALL_USERS} users", median(base, "rss_kib") / small_base["rss_kib"], None),
    ]
    print(
        f"replicated: {full[0]['tables']} tables, {full[0]['rows']} rows, {full[0]['bytes'] / 2**20:.1f} MiB "
        f"(first copy); median of {REPEAT} runs"
    )
    print(
        f"baseline: {b_time:.2f} s, reader blocked up to {b_block:.2f} s, "
        f"peak RSS {median(base, 'rss_kib') / 1024:.0f} MiB"
    )
    for state, state_runs in [("typical change, scheduled", typical), *ours_by_state.items()]:
        methods: dict[str, int] = {}
        for method in state_runs[0]["methods"].values():
            methods[method] = methods.get(method, 0) + 1
        print(
            f"pg_dump, {state}: {median(state_runs, 'seconds'):.2f} s, reader blocked up to "
            f"{max(r['blocked'] for r in state_runs):.3f} s; tables by method {methods}, "
            f"{median(state_runs, 'keys'):.0f} differing keys, buckets {state_runs[0].get('buckets', {})}, "
            f"{median(state_runs, 'unchanged_tables'):.0f} tables unchanged since the last copy"
        )
        phases = {
            name: statistics.median(run["phase_seconds"].get(name, 0) for run in state_runs)
            for name in state_runs[0]["phase_seconds"]
        }
        print(
            f"  in-process {median(state_runs, 'seconds'):.2f} s of {median(state_runs, 'wall'):.2f} s wall; phases: "
            + ", ".join(f"{name} {seconds:.2f}" for name, seconds in phases.items())
        )
    print(
        f"pg_dump, unchanged: {median(unchanged, 'seconds'):.3f} s (process {median(unchanged, 'wall'):.2f} s); "
        f"peak RSS {median(full, 'rss_kib') / 1024:.0f} MiB ({small_ours['rss_kib'] / 1024:.0f} MiB at "
        f"{SMALL_USERS} users)\n"
    )
    width = max(len(label) for label, _, _ in report)
    for label, ratio, target in report:
        verdict = "" if target is None else ("  ok" if ratio <= target else "  MISSED") + f" (target <= {target})"
        print(f"{label:<{width}} {ratio:6.3f}{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
