"""wazo-ha doctor, the pg_dump plugin's checks against two real clusters: TCP 5432 (the rig's port),
TLS of the link (see test_tls.py), same Wazo version, slave UTF-8, clock offset."""

from __future__ import annotations

from wazo_ha_core.doctor import FAIL, PASS, WARN, run_checks
from wazo_ha_plugins.pg_dump.doctor import _clock_offset

from .conftest import Pair, write_password_file


def reports(pair: Pair, **overrides) -> dict:
    checks = pair.plugin(**overrides).doctor_checks("master", pair.peer)
    return {report.name: report for report in run_checks(checks, default_timeout=20)}


def test_two_equal_nodes_pass_every_check(pair):
    found = reports(pair)
    assert set(found) == {
        f"master → slave TCP {pair.slave.port}",
        "master → slave TLS",
        "same Wazo version",
        "slave database UTF-8",
        "clock offset",
    }
    # The rig's slave has TLS off: the link is clear, which the doctor warns about (test_tls.py).
    assert found.pop("master → slave TLS").status == WARN
    assert all(r.status == PASS for r in found.values()), found
    assert "schema 1e0ff683a94e" in found["same Wazo version"].detail
    # One machine, one clock: the measured offset is within its own uncertainty.
    detail = found["clock offset"].detail
    assert "the slave's clock +0.0" in detail or "the slave's clock -0.0" in detail


def test_a_different_schema_version_fails_and_a_different_infos_version_warns(pair):
    pair.slave_sql("UPDATE infos SET wazo_version = '25.01'")
    version = reports(pair)["same Wazo version"]
    assert version.status == WARN and "slave 25.01" in version.detail
    pair.slave_sql("UPDATE alembic_version SET version_num = 'aaaaaaaaaaaa'")
    version = reports(pair)["same Wazo version"]
    assert version.status == FAIL and "aaaaaaaaaaaa" in version.detail and "Upgrading both nodes" in version.fix


def test_a_slave_database_not_in_utf8_fails(pair):
    pair.slave.psql("postgres", "DROP DATABASE IF EXISTS latin WITH (FORCE)")
    pair.slave.create_database("latin", encoding="SQL_ASCII")  # what a cluster made under LANG=C gets
    found = reports(pair, database="latin")
    assert found["slave database UTF-8"].status == FAIL and "SQL_ASCII" in found["slave database UTF-8"].detail


def test_an_unreachable_slave_fails_every_remote_check(pair):
    found = reports(pair, slave_port=1)
    assert all(r.status == FAIL for r in found.values()), found
    assert "cannot connect" in found["same Wazo version"].detail


def test_a_wrong_password_fails_with_the_settings_to_fix(pair):
    write_password_file(pair.root, "wrong-password-of-some-length")
    version = reports(pair)["same Wazo version"]
    assert version.status == FAIL and "slave_password_file" in version.fix


class ShiftedClock:
    """Stands in for the slave's cursor: the real server cannot be given another clock here, so this one
    answers ``clock_timestamp()`` 5 s ahead (the judgement is what is tested)."""

    def __init__(self, shift: float):
        self.shift = shift

    def execute(self, query):
        import time

        self.value = time.time() + self.shift

    def fetchone(self):
        return (self.value,)


def test_a_clock_ahead_beyond_the_threshold_warns_and_beyond_the_stability_window_fails():
    assert _clock_offset(ShiftedClock(5.0), warn_above=2.0, fail_above=30.0).status == WARN
    assert _clock_offset(ShiftedClock(1.0), warn_above=2.0, fail_above=30.0).status == PASS
    behind = _clock_offset(ShiftedClock(-45.0), warn_above=1.0, fail_above=30.0)
    assert (
        behind.status == FAIL
        and "the slave's clock -45.0" in behind.detail
        and "doctor.clock_offset_fail" in behind.detail
    )
    assert "NTP" in behind.fix
