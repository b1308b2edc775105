"""pytest fixtures of the rig, registered for every test tree by ``tests/conftest.py``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from wazo_ha_rig.postgres import PgCluster
from wazo_ha_rig.sshd import Sshd

SHARED_FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures"


def _require_postgres() -> None:
    if os.geteuid() != 0:
        pytest.skip("the PostgreSQL rig runs clusters as the postgres user: run the tests as root")
    if not list(Path("/usr/lib/postgresql").glob("*/bin/initdb")) or shutil.which("psql") is None:
        pytest.fail("PostgreSQL server binaries missing: run ./run-tests, which installs them")


@pytest.fixture(scope="session")
def pg_cluster_factory():
    """Start clusters on demand: ``pg_cluster_factory(host=…, netns=…)``; all stopped at session end."""
    _require_postgres()
    clusters: list[PgCluster] = []

    def start(**kwargs) -> PgCluster:
        cluster = PgCluster.start(**kwargs)
        clusters.append(cluster)
        return cluster

    yield start
    for cluster in clusters:
        cluster.stop()


@pytest.fixture(scope="session")
def pg_cluster(pg_cluster_factory) -> PgCluster:
    """One shared cluster on loopback for the session."""
    return pg_cluster_factory()


@pytest.fixture(scope="session")
def wazo_schema_files() -> tuple[Path, Path]:
    """Wazo's real schema and default data (../shared/fixtures)."""
    schema = SHARED_FIXTURES / "asterisk-schema.sql"
    data = SHARED_FIXTURES / "asterisk-populate-data.sql"
    if not schema.exists():
        pytest.fail(f"Wazo schema fixture not found at {schema}")
    return schema, data


@pytest.fixture(scope="session")
def sshd_factory():
    """Start OpenSSH servers on demand: ``sshd_factory(host=…, netns=…)``; all stopped at session end."""
    if os.geteuid() != 0:
        pytest.skip("the sshd rig runs sshd as root: run the tests as root")
    servers: list[Sshd] = []

    def start(**kwargs) -> Sshd:
        server = Sshd.start(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
