"""``wazo-ha doctor --as master|slave --peer`` on two fresh nodes, as network namespaces of the test subnet:
the slave's real sshd on port 22, the master's real PostgreSQL (Wazo's schema), a provd stand-in inside the
master's namespace (provd cannot run here; tests/rig/provd_standin.py follows its REST protocol), the real
icmp probe. Nothing is enabled: what only enabling can make pass is a WARN saying when to re-run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.rig.netns import TestNetwork
from tests.rig.provd_standin import ProvdStandIn
from wazo_ha_rig.sshd import Sshd

SUBNET = "10.203.9.0/29"
TOKEN = "preflight-provd-token"


@pytest.fixture(scope="module")
def master_db(pg_cluster, wazo_schema_files):
    pg_cluster.psql("postgres", "DROP DATABASE IF EXISTS preflight WITH (FORCE)")
    pg_cluster.create_database("preflight")
    for path in wazo_schema_files:
        pg_cluster.psql_file("preflight", path)
    return pg_cluster


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    with TestNetwork(SUBNET, "dp") as network:
        master, slave = network.add_host("master"), network.add_host("slave")
        sshd = Sshd.start(host=slave.address, netns=slave.netns, directory=tmp_path_factory.mktemp("pf") / "sshd")
        with master.entered():  # its socket lives in the master's namespace, where the doctor runs
            provd = ProvdStandIn(token=TOKEN)
        provd.start()
        try:
            yield master, slave, sshd, provd
        finally:
            provd.stop()
            sshd.stop()


def node_config(directory: Path, cluster, **extra) -> Path:
    root = directory / "root"
    tree = {
        "root": str(root),
        "config_db": {"url": f"postgresql://postgres@/preflight?host={cluster.socket_dir}&port={cluster.port}"},
        "schedules": {"command": str(Path(sys.executable).with_name("wazo-ha"))},
        "file_sync": {"directories": ["/etc/asterisk/extensions_extra.d"]},
        "plugins": {"health_probes": ["icmp"], "service_managers": []},
        **extra,
    }
    config = directory / "config.yml"
    config.write_text(json.dumps(tree))
    config.chmod(0o600)
    return config


def doctor(host, config: Path, role: str, peer: str) -> tuple[int, dict, str]:
    argv = [sys.executable, "-m", "wazo_ha_core.cli.main", "doctor", "--as", role, "--peer", peer, "--config"]
    result = host.run([*argv, str(config), "--json"], check=False, timeout=120)
    checks = {check["name"]: check for check in json.loads(result.stdout)["checks"]}
    return result.returncode, checks, result.stdout


def statuses(checks: dict) -> dict:
    return {name: check["status"] for name, check in checks.items()}


def test_master_preflight_on_a_fresh_pair_warns_only_about_what_enabling_brings(pair, master_db, tmp_path):
    master, slave, sshd, provd = pair
    token_file = tmp_path / "root/etc/wazo-ha/provd-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text(TOKEN)
    token_file.chmod(0o600)
    plugin_config = {
        "provd": {"url": provd.url, "token_file": "/etc/wazo-ha/provd-token"},
        "pg_dump": {"master_host": str(master_db.socket_dir), "master_port": master_db.port, "database": "preflight"},
        "rsync": {"authorized_keys_file": str(sshd.authorized_keys)},
    }
    config = node_config(tmp_path, master_db, plugin_config=plugin_config)
    code, checks, output = doctor(master, config, "master", slave.address)
    found = statuses(checks)
    assert code == 0, output  # no FAIL
    passed = [
        "plugins loaded",
        "configuration database",
        "schedules command",
        "trunk registration expiry",
        "disk space",
        "clock offset",
        "provd: provd reachable with its token",
        "rsync: slave sshd",
        "rsync: master → slave TCP 22",
    ]
    assert {name: found[name] for name in passed} == dict.fromkeys(passed, "PASS"), output
    assert "PostgreSQL 15" in checks["configuration database"]["detail"]
    assert "offers root: publickey, password" in checks["rsync: slave sshd"]["detail"]
    # Not yet possible before the slave is enabled and `sync init` ran: warnings that say when to re-run.
    not_yet = [
        "pg_dump: master → slave TCP 5432",
        "pg_dump: same Wazo version",
        "pg_dump: clock offset",
        "rsync: ssh key",
        "rsync: ssh key restricted",
    ]
    assert {name: found[name] for name in not_yet} == dict.fromkeys(not_yet, "WARN"), output
    assert "enable it, then run `wazo-ha doctor` here again" in checks["pg_dump: same Wazo version"]["fix"]
    assert "sync init" in checks["rsync: ssh key"]["fix"]
    assert "node_type=slave" not in output  # never the other role

    # The token provd refuses: a FAIL naming the file, exit 1.
    token_file.write_text("an-expired-token")
    code, checks, _ = doctor(master, config, "master", slave.address)
    provd_check = checks["provd: provd reachable with its token"]
    assert code == 1 and provd_check["status"] == "FAIL" and "HTTP 401" in provd_check["detail"]
    assert str(token_file) in provd_check["detail"] and "an-expired-token" not in json.dumps(checks)

    # The slave's sshd stopped: the ssh checks fail, the clock is still measured.
    sshd.kill()
    try:
        code, checks, _ = doctor(master, config, "master", slave.address)
    finally:
        sshd.run()
    assert (
        checks["rsync: slave sshd"]["status"] == "FAIL"
        and "run sshd on the slave" in checks["rsync: slave sshd"]["fix"]
    )
    assert checks["clock offset"]["status"] == "PASS"

    # No password login on the slave: the fix opens it for this master's address, as the slave sees it.
    original = sshd.config.read_text()
    sshd.config.write_text(original.replace("PasswordAuthentication yes", "PasswordAuthentication no"))
    sshd.kill()
    sshd.run()
    try:
        code, checks, _ = doctor(master, config, "master", slave.address)
    finally:
        sshd.config.write_text(original)
        sshd.kill()
        sshd.run()
    closed = checks["rsync: slave sshd"]
    assert code == 1 and closed["status"] == "FAIL" and "no password login" in closed["detail"]
    assert f"Match Address {master.address}'" in closed["fix"] and "PermitRootLogin yes" in closed["fix"]


def test_slave_preflight_reads_its_own_sshd_and_pings_the_master(pair, master_db, tmp_path):
    master, slave, sshd, _ = pair
    plugin_config = {
        "rsync": {
            "authorized_keys_file": str(sshd.authorized_keys),
            "sshd_test_command": ["/usr/sbin/sshd", "-T", "-f", str(sshd.config)],
        }
    }
    config = node_config(tmp_path, master_db, plugin_config=plugin_config)
    code, checks, output = doctor(slave, config, "slave", master.address)
    found = statuses(checks)
    for name in ("master answers icmp", "clock offset", "rsync: sshd lets the master in", "disk space"):
        assert found[name] == "PASS", (name, checks[name])
    assert "PermitRootLogin yes" in checks["rsync: sshd lets the master in"]["detail"]
    assert found["witnesses"] == "WARN"  # none configured: a cut-off slave would take over
    assert code == 0, output
    assert "node_type=master" not in output  # never the other role
