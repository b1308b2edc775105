"""Preflight and credentials: each refusal is a clear message, and the slave is left as it was."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from tests.rig.postgres import as_postgres
from wazo_ha_core import PeerUnreachable, PluginError, PreflightError

from .conftest import REPLICATION_PASSWORD, REPLICATION_ROLE, content, write_password_file


def refused(pair, error, match, **config):
    before = content(pair.slave)
    with pytest.raises(error, match=match) as failure:
        pair.plugin(**config).replicate(pair.peer)
    assert content(pair.slave) == before
    return str(failure.value)


def test_schema_version_differs(pair):
    pair.slave_sql("UPDATE alembic_version SET version_num = 'aaaaaaaaaaaa'")
    message = refused(pair, PreflightError, "configuration schema versions differ")
    assert "master 1e0ff683a94e, slave aaaaaaaaaaaa" in message


def test_table_missing_on_the_slave(pair):
    pair.slave_sql("DROP TABLE paginguser; DROP TABLE useriax CASCADE")
    message = refused(pair, PreflightError, "missing on the slave")
    assert message.startswith("table(s) present on the master are missing on the slave: paginguser, useriax;")


def test_slave_database_not_utf8(pair):
    for cluster, encoding in ((pair.master, "UTF8"), (pair.slave, "SQL_ASCII")):
        cluster.psql("postgres", "DROP DATABASE IF EXISTS asterisk_enc")
        cluster.create_database("asterisk_enc", encoding=encoding)
        cluster.psql(
            "asterisk_enc",
            "CREATE TABLE alembic_version (version_num varchar(32)); "
            "INSERT INTO alembic_version VALUES ('1e0ff683a94e')",
        )
    with pytest.raises(PreflightError, match="encoded SQL_ASCII, not UTF8"):
        pair.plugin(database="asterisk_enc").replicate(pair.peer)
    assert pair.slave.psql("asterisk_enc", "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "1\n"


def test_unreachable_slave_gives_up_within_the_connect_timeout(pair):
    # A peer that accepts TCP but never answers: only the connect timeout ends the wait.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        started = time.monotonic()
        message = refused(pair, PeerUnreachable, "cannot connect to the slave", slave_port=silent.getsockname()[1])
        elapsed = time.monotonic() - started
    print(f"unanswered connection abandoned after {elapsed:.2f} s (timeouts.connect = 2 s)")
    assert elapsed < 6
    assert "timeout" in message


def test_password_file_readable_by_others_is_refused(pair):
    write_password_file(pair.root, mode=0o644)
    message = refused(pair, PreflightError, "mode 0644")
    assert REPLICATION_PASSWORD not in message


def test_wrong_password_never_shows_the_password(pair, caplog):
    write_password_file(pair.root, password="not-the-password")
    caplog.set_level(logging.DEBUG)
    message = refused(pair, PeerUnreachable, "password authentication failed")
    assert "not-the-password" not in message + caplog.text


def test_libpq_passfile_is_used_and_nothing_secret_is_logged(pair, caplog):
    passfile = pair.root / "etc/wazo-ha/pgpass"
    passfile.write_text(f"127.0.0.1:{pair.slave.port}:asterisk:{REPLICATION_ROLE}:{REPLICATION_PASSWORD}\n")
    passfile.chmod(0o600)
    caplog.set_level(logging.DEBUG)
    result = pair.plugin(slave_password_file=None, passfile="/etc/wazo-ha/pgpass").replicate(pair.peer)
    assert result.outcome == "copied"
    assert REPLICATION_PASSWORD not in caplog.text + result.message + repr(result.figures)


def test_a_slave_that_trusts_us_is_refused(pair):
    hba = pair.slave.data / "pg_hba.conf"
    original = hba.read_text()
    try:
        as_postgres(["sh", "-c", f"cat > {hba}"], input=f"host all all 127.0.0.1/32 trust\n{original}")
        pair.slave.psql("postgres", "SELECT pg_reload_conf()")
        refused(pair, PreflightError, "without a password \\(trust authentication\\)")
    finally:
        as_postgres(["sh", "-c", f"cat > {hba}"], input=original)
        pair.slave.psql("postgres", "SELECT pg_reload_conf()")


@pytest.mark.parametrize(
    "config, field",
    [
        ({"slave_port": "5432"}, "slave_port"),
        ({"exclude_tables_add": "cel"}, "exclude_tables_add"),
        ({"passfile": "relative/path"}, "passfile"),
        ({"timeout": 0}, "timeout"),
        ({"no_such_key": 1}, "no_such_key"),
    ],
)
def test_bad_settings_name_the_field_and_the_value(pair, config, field):
    with pytest.raises(PluginError, match=field) as failure:
        pair.plugin(**config)
    assert repr(next(iter(config.values()))) in str(failure.value) or field == "no_such_key"


def test_exclusions_can_be_added_and_removed_and_unknown_names_are_tolerated(pair):
    slave_voicemail = pair.slave_sql("SELECT count(*) FROM voicemail")
    result = pair.plugin(exclude_tables_add=["voicemail", "no_such_table"], exclude_tables_remove=["infos"]).replicate(
        pair.peer
    )
    assert result.outcome == "copied"
    assert pair.slave_sql("SELECT count(*) FROM voicemail") == slave_voicemail  # kept the slave's rows
    assert pair.slave_sql("SELECT uuid FROM infos") == pair.master_sql("SELECT uuid FROM infos")  # now copied
    assert "voicemail" in result.figures["excluded"] and "infos" not in result.figures["excluded"]


def test_defaults_log_in_as_the_non_superuser_replication_role(pair):
    assert pair.slave.psql("postgres", f"SELECT rolsuper FROM pg_roles WHERE rolname = '{REPLICATION_ROLE}'") == "f\n"
    plugin = pair.plugin()
    assert plugin.slave_endpoint(pair.peer).user == REPLICATION_ROLE
    assert plugin.slave_endpoint(pair.peer).password_file == pair.root / "etc/wazo-ha/replication-password"
    assert plugin.replicate(pair.peer).outcome == "copied"
    # The role reset the sequences (ALTER SEQUENCE needs the owner's rights) and loaded every table.
    query = "SELECT last_value FROM userfeatures_id_seq"
    assert pair.slave_sql(query) == pair.master_sql(query)


@pytest.mark.parametrize(
    "revoke, grant, match",
    [
        (
            f"REVOKE asterisk FROM {REPLICATION_ROLE}",
            f"GRANT asterisk TO {REPLICATION_ROLE}",
            "may not read public.alembic_version; .*GRANT asterisk TO",
        ),
        (
            f"REVOKE asterisk FROM {REPLICATION_ROLE}; GRANT SELECT ON alembic_version TO {REPLICATION_ROLE}",
            f"GRANT asterisk TO {REPLICATION_ROLE}",
            "may not replace the data of accessfeatures, .* and [0-9]+ more: .*GRANT asterisk TO",
        ),
        (
            f"REVOKE SET ON PARAMETER session_replication_role FROM {REPLICATION_ROLE}",
            f"GRANT SET ON PARAMETER session_replication_role TO {REPLICATION_ROLE}",
            "may not set session_replication_role",
        ),
    ],
    ids=["cannot-read-version", "no-owner-membership", "no-set-parameter"],
)
def test_a_role_without_the_grants_is_refused_before_any_change(pair, revoke, grant, match):
    pair.slave_sql(revoke)
    try:
        message = refused(pair, PreflightError, match)
    finally:
        pair.slave_sql(grant)
    assert REPLICATION_ROLE in message
