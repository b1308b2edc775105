"""The slave's database opened to the master on a real cluster: scram-sha-256, never trust.

The "master" is 127.0.0.1 here: the steps are called directly with
``HASettings("slave", "127.0.0.1")``, bypassing the validation that refuses
loopback as ``remote_address`` (that validation has its own tests). A
connection from 127.0.0.1 to the cluster then comes from exactly the address
the rule names, which is what a master's connection does on a real slave.

The cluster's own ``pg_hba.conf`` is cut down to ``local all all trust``, so
the only way in over TCP is the block the step writes. The rig runs the
postmaster as a child of the test, so ``restart_command`` is a reload here
(a restart would put the server outside the rig); ``listen_addresses`` goes
to a file the test checks rather than to the cluster's configuration.
"""

from __future__ import annotations

import logging
import os
import sys

import psycopg2
import pytest

from tests.rig.waiting import wait_for
from wazo_ha_core import replication_password
from wazo_ha_core.config import DISABLED, HASettings
from wazo_ha_core.errors import EditStepError, SettingsError
from wazo_ha_core.settings import Settings
from wazo_ha_core.slave_db import BEGIN_MARK, END_MARK, ReplicationRoleStep, SlaveDBAccessStep, import_password

from .conftest import slave_db_settings

SLAVE = HASettings("slave", "127.0.0.1")
ROLE = "wazo_ha_replication"
ORIGINAL_HBA = "# the site's own rules\nlocal all all trust\n"


@pytest.fixture(scope="module")
def cluster(pg_cluster_factory):
    cluster = pg_cluster_factory(settings={"log_statement": "'all'"})
    (cluster.data / "pg_hba.conf").write_text(ORIGINAL_HBA)
    cluster.psql("postgres", "CREATE DATABASE asterisk; CREATE ROLE asterisk NOLOGIN;")
    reload(cluster)
    return cluster


def reload(cluster):
    cluster.psql("postgres", "SELECT pg_reload_conf();")


@pytest.fixture
def settings(cluster, tmp_path):
    return slave_db_settings(cluster, tmp_path)


@pytest.fixture
def password(settings):
    secret = replication_password.generate()
    replication_password.write(settings.path("replication_password"), secret)
    yield secret
    # Leave the cluster as the module found it for the next test.
    (settings.path("pg_hba")).write_text(ORIGINAL_HBA)
    os.chown(settings.path("pg_hba"), *_postgres_ids(settings))


def _postgres_ids(settings):
    stat = settings.path("pg_hba").parent.stat()
    return stat.st_uid, stat.st_gid


def connect(cluster, password=None, user=ROLE):
    kwargs = {"password": password} if password is not None else {}
    return psycopg2.connect(
        host="127.0.0.1", port=cluster.port, dbname="asterisk", user=user, connect_timeout=5, **kwargs
    )


def refused(cluster, password=None) -> str:
    with pytest.raises(psycopg2.OperationalError) as caught:
        connect(cluster, password).close()
    return str(caught.value)


def enable(settings):
    role, access = ReplicationRoleStep(settings), SlaveDBAccessStep(settings)
    role.apply(DISABLED, SLAVE)
    access.apply(DISABLED, SLAVE)
    return role, access


def test_master_gets_in_with_the_password_only(settings, cluster, password):
    hba = settings.path("pg_hba")
    stat_before = hba.stat()
    assert "no pg_hba.conf entry" in refused(cluster, password)
    enable(settings)
    # pg_ctl reload signals the postmaster and returns: wait until the new rules are in force.
    connection = wait_for(lambda: connect(cluster, password), 10, "connection with the password accepted")
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user, current_database()")
        assert cursor.fetchone() == (ROLE, "asterisk")
    connection.close()
    assert "no password supplied" in refused(cluster)
    assert "password authentication failed" in refused(cluster, password[::-1])
    content = hba.read_text()
    assert content.startswith(BEGIN_MARK) and content.endswith(ORIGINAL_HBA)
    assert "host    asterisk    wazo_ha_replication    127.0.0.1/32    scram-sha-256" in content
    assert "trust" not in content.replace(ORIGINAL_HBA, "")
    assert (hba.stat().st_uid, hba.stat().st_mode & 0o777) == (stat_before.st_uid, stat_before.st_mode & 0o777)
    assert settings.path("pg_listen_conf").read_text().endswith("listen_addresses = 'localhost,127.0.0.1'\n")
    # The server only ever saw a verifier: the plaintext is nowhere in its log (log_statement = all).
    assert "SCRAM-SHA-256$" in cluster.server_log() and password not in cluster.server_log()
    assert cluster.psql("postgres", f"SELECT rolsuper FROM pg_roles WHERE rolname = '{ROLE}'").strip() == "f"

    # Leaving slave: the block and the listen file go, the role can no longer log in.
    ReplicationRoleStep(settings).apply(SLAVE, DISABLED)
    SlaveDBAccessStep(settings).apply(SLAVE, DISABLED)
    assert hba.read_text() == ORIGINAL_HBA
    assert not settings.path("pg_listen_conf").exists()
    assert "no pg_hba.conf entry" in refused(cluster, password)
    assert (
        cluster.psql("postgres", f"SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = '{ROLE}'").strip() == "t"
    )
    cluster.psql("postgres", f"REVOKE SET ON PARAMETER session_replication_role FROM {ROLE}; DROP ROLE {ROLE};")


def test_undo_restores_files_and_role_exactly(settings, cluster, password):
    hba = settings.path("pg_hba")
    before = (hba.read_bytes(), hba.stat().st_mode, hba.stat().st_uid, hba.stat().st_gid)
    role, access = enable(settings)
    access.undo(DISABLED, SLAVE)
    role.undo(DISABLED, SLAVE)
    assert (hba.read_bytes(), hba.stat().st_mode, hba.stat().st_uid, hba.stat().st_gid) == before
    assert not settings.path("pg_listen_conf").exists()
    assert cluster.psql("postgres", f"SELECT count(*) FROM pg_roles WHERE rolname = '{ROLE}'").strip() == "0"
    wait_for(lambda: "no pg_hba.conf entry" in refused(cluster, password), 10, "master refused after undo")


def test_repeated_apply_rewrites_nothing(settings, cluster, password):
    enable(settings)
    hba, listen = settings.path("pg_hba"), settings.path("pg_listen_conf")
    stamps = hba.stat().st_mtime_ns, listen.stat().st_mtime_ns
    verifier = cluster.psql("postgres", f"SELECT rolpassword FROM pg_authid WHERE rolname = '{ROLE}'")
    role, access = enable(settings)
    assert (hba.stat().st_mtime_ns, listen.stat().st_mtime_ns) == stamps
    assert cluster.psql("postgres", f"SELECT rolpassword FROM pg_authid WHERE rolname = '{ROLE}'") == verifier
    assert role.previous is None and access.snapshots  # nothing to undo in the role
    role.apply(SLAVE, DISABLED)
    SlaveDBAccessStep(settings).apply(SLAVE, DISABLED)
    cluster.psql("postgres", f"REVOKE SET ON PARAMETER session_replication_role FROM {ROLE}; DROP ROLE {ROLE};")


def test_failing_reload_puts_files_back(settings, cluster, password):
    tree = settings.tree | {
        "slave_db": settings.tree["slave_db"] | {"reload_command": ["false"], "restart_command": ["false"]}
    }
    broken = Settings.from_tree(tree)
    before = settings.path("pg_hba").read_bytes()
    with pytest.raises(EditStepError, match="restart_command: false exited with 1"):
        SlaveDBAccessStep(broken).apply(DISABLED, SLAVE)
    assert settings.path("pg_hba").read_bytes() == before
    assert not settings.path("pg_listen_conf").exists()


def test_missing_password_is_a_clear_error(settings, cluster):
    with pytest.raises(EditStepError, match="wazo-ha replication-password import"):
        ReplicationRoleStep(settings).apply(DISABLED, SLAVE)


def test_import_on_a_slave_changes_the_role_password(settings, cluster, password):
    enable(settings)
    new = replication_password.generate()
    assert import_password(settings, SLAVE, new) is True
    assert replication_password.read(settings.path("replication_password")) == new
    assert oct(settings.path("replication_password").stat().st_mode & 0o777) == "0o600"
    wait_for(lambda: connect(cluster, new), 10, "connection with the imported password").close()
    assert "password authentication failed" in refused(cluster, password)
    ReplicationRoleStep(settings).apply(SLAVE, DISABLED)
    SlaveDBAccessStep(settings).apply(SLAVE, DISABLED)
    cluster.psql("postgres", f"REVOKE SET ON PARAMETER session_replication_role FROM {ROLE}; DROP ROLE {ROLE};")


def test_ipv6_master_gets_a_128_rule(settings):
    block = SlaveDBAccessStep(settings).hba_block("2001:db8::2")
    assert "2001:db8::2/128    scram-sha-256" in block


def test_scram_verifier_is_what_postgresql_accepts():
    verifier = replication_password.scram_verifier("correct horse", salt=b"0123456789abcdef")
    assert verifier.startswith("SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$")
    assert replication_password.verifier_matches(verifier, "correct horse")
    assert not replication_password.verifier_matches(verifier, "correct horsE")
    assert not replication_password.verifier_matches("md5abc", "correct horse")


# --- pg_hba.conf as the site wrote it: markers, line endings, encoding, symlink, mode and owner -------------


@pytest.fixture
def site_hba(settings):
    """Lets a test give pg_hba.conf any shape; puts the module's plain file back afterwards."""
    hba = settings.path("pg_hba")
    owner = _postgres_ids(settings)

    def write(content: bytes, mode: int = 0o640) -> None:
        hba.write_bytes(content)
        os.chown(hba, *owner)
        hba.chmod(mode)

    yield write
    for extra in hba.parent.glob("pg_hba.site*"):
        extra.unlink()
    hba.unlink()
    hba.write_text(ORIGINAL_HBA)
    os.chown(hba, *owner)


def recording_reload(settings, tmp_path):
    """Settings whose reload/restart commands only leave a trace: did the step reload anything?"""
    trace = tmp_path / "reloaded"
    command = [sys.executable, "-c", "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()", str(trace)]
    return with_commands(settings, command), trace


def with_commands(settings, command):
    """``settings`` whose reload and restart commands are both ``command``."""
    slave_db = settings.tree["slave_db"] | {"reload_command": command, "restart_command": command}
    return Settings.from_tree(settings.tree | {"slave_db": slave_db})


def file_state(path):
    stat = path.stat()
    return path.read_bytes(), stat.st_mode, stat.st_uid, stat.st_gid


BLOCK_LINE = b"host    asterisk    wazo_ha_replication    127.0.0.1/32    scram-sha-256"
OPERATOR = b"local all postgres peer\n"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (BEGIN_MARK.encode() + b"\n" + BLOCK_LINE + b"\n" + OPERATOR, "without an end marker"),
        (BLOCK_LINE + b"\n" + END_MARK.encode() + b"\n" + OPERATOR, "without a begin marker"),
        (END_MARK.encode() + b"\n" + OPERATOR + BEGIN_MARK.encode() + b"\n", "before the begin marker"),
        ((BEGIN_MARK + "\n" + END_MARK + "\n").encode() * 2 + OPERATOR, "repeated"),
    ],
)
@pytest.mark.parametrize("transition", [(SLAVE, DISABLED), (DISABLED, SLAVE)], ids=["disable", "enable"])
def test_broken_markers_are_refused_and_nothing_changes(settings, site_hba, tmp_path, content, problem, transition):
    site_hba(content)
    hba = settings.path("pg_hba")
    before = file_state(hba)
    recording, trace = recording_reload(settings, tmp_path)
    with pytest.raises(EditStepError) as caught:
        SlaveDBAccessStep(recording).apply(*transition)
    assert str(hba) in str(caught.value) and problem in str(caught.value)
    assert file_state(hba) == before
    assert not trace.exists(), "PostgreSQL was reloaded"
    assert not settings.path("pg_listen_conf").exists()


@pytest.mark.parametrize(
    "original",
    [
        b"# the site's rules\r\nlocal all all trust\r\n",
        b"# r\xe9seau du site (Latin-1)\nlocal all all trust\n",
        b"# r\xe9seau du site (Latin-1)\r\nlocal all all trust",
    ],
    ids=["crlf", "latin-1", "crlf-latin-1-no-final-newline"],
)
def test_crlf_latin1_file_keeps_its_bytes_and_its_line_endings(settings, cluster, password, site_hba, original):
    site_hba(original)
    newline = b"\r\n" if b"\r\n" in original else b"\n"
    hba = settings.path("pg_hba")
    before = file_state(hba)
    enable(settings)
    content = hba.read_bytes()
    assert content == newline.join([BEGIN_MARK.encode(), BLOCK_LINE, END_MARK.encode(), original])
    assert file_state(hba)[1:] == before[1:]  # mode and owner
    # PostgreSQL reads the block in the file's own line endings: the master gets in.
    wait_for(lambda: connect(cluster, password), 10, "connection through the CRLF block").close()
    SlaveDBAccessStep(settings).apply(SLAVE, DISABLED)
    ReplicationRoleStep(settings).apply(SLAVE, DISABLED)
    assert file_state(hba) == before
    cluster.psql("postgres", f"REVOKE SET ON PARAMETER session_replication_role FROM {ROLE}; DROP ROLE {ROLE};")


def test_symlinked_pg_hba_stays_a_link_through_enable_disable_and_rollback(settings, cluster, password, site_hba):
    hba = settings.path("pg_hba")
    site_hba(ORIGINAL_HBA.encode(), mode=0o600)
    target = hba.with_name("pg_hba.site.conf")
    hba.rename(target)
    hba.symlink_to(target.name)  # a relative link, as an operator would make it
    before = file_state(target)

    def still_linked():
        assert hba.is_symlink() and os.readlink(hba) == target.name
        assert file_state(target)[1:] == before[1:]  # mode and owner of the real file

    _role, access = enable(settings)
    still_linked()
    assert target.read_bytes().startswith(BEGIN_MARK.encode())
    wait_for(lambda: connect(cluster, password), 10, "connection through the symlinked pg_hba.conf").close()
    access.undo(DISABLED, SLAVE)  # rollback of the enable
    still_linked()
    assert file_state(target) == before
    enable(settings)
    SlaveDBAccessStep(settings).apply(SLAVE, DISABLED)
    still_linked()
    assert file_state(target) == before
    # A reload that fails: the step puts the file back itself, the link stays a link.
    broken = with_commands(settings, ["false"])
    with pytest.raises(EditStepError, match="exited with 1"):
        SlaveDBAccessStep(broken).apply(DISABLED, SLAVE)
    still_linked()
    assert file_state(target) == before
    ReplicationRoleStep(settings).apply(SLAVE, DISABLED)
    cluster.psql("postgres", f"REVOKE SET ON PARAMETER session_replication_role FROM {ROLE}; DROP ROLE {ROLE};")


def test_a_database_name_with_a_newline_never_reaches_pg_hba(settings, site_hba):
    hostile = "asterisk\nhost all all 0.0.0.0/0 trust\n#"
    site_hba(ORIGINAL_HBA.encode())
    before = file_state(settings.path("pg_hba"))
    with pytest.raises(SettingsError) as caught:
        Settings.from_tree(settings.tree | {"slave_db": settings.tree["slave_db"] | {"database": hostile}})
    assert caught.value.key == "slave_db.database" and repr(hostile)[:40] in str(caught.value)
    # The step checks again (settings built without the loader's checks, as a plugin could).
    unchecked = Settings(settings.tree | {"slave_db": settings.tree["slave_db"] | {"database": hostile}})
    with pytest.raises(EditStepError, match=r"slave_db\.database"):
        SlaveDBAccessStep(unchecked).apply(DISABLED, SLAVE)
    assert file_state(settings.path("pg_hba")) == before


def test_each_change_is_logged_in_one_line_and_nothing_when_nothing_changes(settings, cluster, password, caplog):
    caplog.set_level(logging.INFO, logger="wazo_ha_core")
    hba, listen = settings.path("pg_hba"), settings.path("pg_listen_conf")
    enable(settings)
    lines = [record.getMessage() for record in caplog.records]
    assert f"replication role '{ROLE}' created (PostgreSQL role)" in lines, lines
    assert (
        f"slave database access: {hba} lets 127.0.0.1 replicate, {listen} sets listen_addresses; PostgreSQL restarted"
        in lines
    ), lines
    caplog.clear()
    enable(settings)
    assert [record.getMessage() for record in caplog.records] == []  # already in force: nothing changed
    ReplicationRoleStep(settings).apply(SLAVE, DISABLED)
    SlaveDBAccessStep(settings).apply(SLAVE, DISABLED)
    lines = [record.getMessage() for record in caplog.records]
    assert f"replication role '{ROLE}': password removed (it can no longer log in)" in lines, lines
    assert f"slave database access: {hba} block and {listen} removed; PostgreSQL restarted" in lines, lines
    cluster.psql("postgres", f"REVOKE SET ON PARAMETER session_replication_role FROM {ROLE}; DROP ROLE {ROLE};")
