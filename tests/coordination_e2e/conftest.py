import os
import shutil

import pytest

from tests.rig.coordinated import NODES, CoordinatedRig


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """Three etcd members and three Wazo nodes in 10.203.11.0/24; every watch running, the master serving."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces and etcd as the etcd user need root")
    if shutil.which("etcd") is None:
        pytest.fail("etcd missing: run ./run-tests, which installs etcd-server")
    directory = tmp_path_factory.mktemp("coordinated-rig")
    with CoordinatedRig(directory) as rig:
        rig.start_watch("master")
        rig.wait_serving({"master"}, 30, "the master serving under the lock")
        rig.start_watch("slave1")
        rig.start_watch("slave2")
        yield rig
        for name in NODES:
            print(f"\n--- {name} watch log (tail) ---\n" + "\n".join(rig.watch_log(name).splitlines()[-30:]))


@pytest.fixture
def coordinated(rig):
    """Every cut healed (Wazo nodes and etcd members), the master serving again (failback done)."""
    for name in [*NODES, "etcd1", "etcd2", "etcd3"]:
        rig.heal(name)
    rig.wait_serving({"master"}, 60, "the master serving (baseline)")
    return rig
