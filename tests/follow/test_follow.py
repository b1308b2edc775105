"""``wazo-ha follow`` as a real process: edits and saved files on the slave within seconds, no cron involved.

Each test starts the follower against the real clusters (and, for files, the
real sshd + rsync), changes something on the master and waits, with a
deadline, for the slave to show it. No cron, timer or other run exists in
these tests: only the follower can have carried the change.
"""

from __future__ import annotations

import itertools
import os
import socket
import time
from datetime import timedelta

from tests.plugins.rsync.conftest import write
from tests.rig.waiting import wait_for

from .conftest import FRESHNESS, stop

NO_FILES = {"file_sync": []}
ODD_NAME = "Tab\there\nnew line \\ back-slash, é ü 中文 🎉"


def slave_firstname(nodes, user_id: int):
    rows = nodes.query(nodes.slave, f"SELECT firstname FROM userfeatures WHERE id = {user_id}")
    return rows[0][0] if rows else None


def replications(nodes, config):
    engine = nodes.engine(config)
    try:
        return engine.store.events(kind="replication", limit=1000)
    finally:
        engine.store.close()


def failed_runs(nodes, config):
    return [event for event in replications(nodes, config) if event.outcome == "failed"]


def follower_polls(nodes) -> set:
    """The start times of the follower's signal queries seen in pg_stat_activity (one per poll)."""
    rows = nodes.query(
        nodes.master, "SELECT query_start FROM pg_stat_activity WHERE application_name = 'wazo-ha follow'", "postgres"
    )
    return {row[0] for row in rows if row[0] is not None}


def wait_for_polls(nodes, count: int, timeout: float = 30.0) -> None:
    seen: set = set()

    def enough():
        seen.update(follower_polls(nodes))
        return len(seen) >= count

    wait_for(enough, timeout, f"{count} polls of the follower", interval=0.05)


def slave_sessions(nodes) -> int:
    """Sessions ever opened on the slave's database (each replication run opens one)."""
    query = "SELECT sessions FROM pg_stat_database WHERE datname = 'asterisk'"
    [(sessions,)] = nodes.query(nodes.slave, query, "postgres")  # not from asterisk: that would count itself
    return int(sessions)


def test_an_edit_on_the_master_is_on_the_slave_within_seconds(nodes):
    config = nodes.config(plugins={"file_sync": []})
    follower = nodes.follow(config)
    try:
        # The first run at start copies the whole configuration.
        wait_for(lambda: slave_firstname(nodes, 100001) == "Prénom 1", 60, "the first copy at start")
        for number, name in enumerate(["Alice", ODD_NAME, "Zoë"], start=1):
            edited = time.monotonic()
            nodes.master_sql(f"UPDATE userfeatures SET firstname = $x${name}$x$ WHERE id = 100002")
            wait_for(lambda name=name: slave_firstname(nodes, 100002) == name, FRESHNESS, f"edit {number} on the slave")
            assert time.monotonic() - edited < FRESHNESS
        # Rows across tables joined by foreign keys: a user removed with its line and extension.
        nodes.master_sql(
            "DELETE FROM user_line WHERE user_id = 100003; DELETE FROM line_extension WHERE line_id = 100003;"
            "DELETE FROM linefeatures WHERE id = 100003; DELETE FROM extensions WHERE id = 100003;"
            "DELETE FROM userfeatures WHERE id = 100003;"
        )
        wait_for(lambda: slave_firstname(nodes, 100003) is None, FRESHNESS, "the deleted user gone from the slave")
        assert nodes.query(nodes.slave, "SELECT count(*) FROM linefeatures WHERE id = 100003") == [(0,)]
    finally:
        out, err = stop(follower)
    assert follower.returncode == 0, err
    assert (out, err) == ("", "")  # --quiet: nothing but errors
    outcomes = [event.outcome for event in replications(nodes, config)]
    assert outcomes and set(outcomes) == {"ok"}  # copies journaled; the runs that found nothing were not


def test_nothing_changes_nothing_runs_and_nothing_is_logged(nodes):
    config = nodes.config(plugins={"file_sync": []})
    follower = nodes.follow(config)
    try:
        wait_for(lambda: slave_firstname(nodes, 100001) == "Prénom 1", 60, "the first copy at start")
        wait_for_polls(nodes, 3)  # the first copy is over: the follower polls again
        sessions, events, lines = slave_sessions(nodes), len(replications(nodes, config)), nodes.log_lines()
        # Fewer polls than the change signal's lag (11 s at 0.2 s a poll): the cluster's own background
        # writes (checkpoints, autovacuum) may move the WAL position, and would earn a (skipped) run after it.
        wait_for_polls(nodes, 25)
        assert slave_sessions(nodes) == sessions, "a run connected to the slave while nothing changed"
        assert len(replications(nodes, config)) == events
        assert nodes.log_lines() == lines
    finally:
        _, err = stop(follower)
    assert follower.returncode == 0, err
    assert "follow started" in "\n".join(nodes.log_lines())


def test_a_change_the_table_counters_miss_is_replicated_after_their_lag(nodes):
    """TRUNCATE counts in no n_tup_* counter: only the WAL position moves, and that is enough."""
    config = nodes.config(plugins={"file_sync": []})
    follower = nodes.follow(config)
    try:
        wait_for(lambda: nodes.query(nodes.slave, "SELECT count(*) FROM external_app") == [(2,)], 60, "first copy")
        nodes.master_sql("TRUNCATE external_app")
        wait_for(
            lambda: nodes.query(nodes.slave, "SELECT count(*) FROM external_app") == [(0,)],
            11 + FRESHNESS,
            "the truncated table empty on the slave",
        )
    finally:
        stop(follower)


def test_a_saved_file_is_on_the_slave_within_seconds(nodes):
    master, slave = nodes.master_root, nodes.slave_root
    write(master / "etc/asterisk/extensions_extra.d/old.conf", "[old]\n")
    (master / "var/lib/wazo/sounds/tenants").mkdir(parents=True)  # as on any Wazo node
    nodes.init_file_sync()
    config = nodes.config(plugins={"replication": []})
    follower = nodes.follow(config)
    try:
        wait_for(lambda: (slave / "etc/asterisk/extensions_extra.d/old.conf").exists(), 30, "the first sync at start")
        # An editor's save: a temporary file renamed over the old one.
        saved = time.monotonic()
        write(master / "etc/asterisk/extensions_extra.d/.old.conf.swp", "[old]\nexten => 1,1,Answer()\n")
        os.replace(
            master / "etc/asterisk/extensions_extra.d/.old.conf.swp",
            master / "etc/asterisk/extensions_extra.d/old.conf",
        )
        wait_for(
            lambda: (slave / "etc/asterisk/extensions_extra.d/old.conf").read_text().endswith("Answer()\n"),
            FRESHNESS,
            "the saved file on the slave",
        )
        assert time.monotonic() - saved < FRESHNESS
        # A directory created after the follower started (a new tenant's sounds) is watched too.
        write(master / "var/lib/wazo/sounds/tenants/t9/acme/hello.wav", b"RIFF\0\0")
        wait_for(
            lambda: (slave / "var/lib/wazo/sounds/tenants/t9/acme/hello.wav").exists(),
            FRESHNESS,
            "a file of a new tenant directory on the slave",
        )
        (master / "etc/asterisk/extensions_extra.d/old.conf").unlink()
        wait_for(
            lambda: not (slave / "etc/asterisk/extensions_extra.d/old.conf").exists(), FRESHNESS, "deletion mirrored"
        )
    finally:
        out, err = stop(follower)
    assert follower.returncode == 0, err
    assert (out, err) == ("", "")


def test_a_failing_run_backs_off(nodes):
    # A slave port nothing listens on: every run fails at once (connection refused).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    pg_dump = {**nodes.tree["plugin_config"]["pg_dump"], "slave_port": closed_port}
    config = nodes.config(
        plugins={"file_sync": []},
        plugin_config={**nodes.tree["plugin_config"], "pg_dump": pg_dump},
        follow={"poll_interval": 0.1, "min_interval": 0.5, "max_backoff": 4},
    )
    follower = nodes.follow(config)
    try:
        failed = wait_for(
            lambda: failed_runs(nodes, config)[:5] if len(failed_runs(nodes, config)) >= 5 else None,
            60,
            "five failed runs",
        )
    finally:
        stop(follower)
    starts = sorted(event.started_at for event in failed)
    gaps = [(later - earlier) / timedelta(seconds=1) for earlier, later in itertools.pairwise(starts)]
    # min_interval * 2^failures: 1, 2, 4, then max_backoff 4 (plus at most a poll and the run itself).
    for gap, expected in zip(gaps, [1, 2, 4, 4], strict=True):
        assert expected * 0.9 <= gap <= expected + 1.5, gaps
