"""The package env: the .deb built once per session with ./build-deb, installed into chroot nodes.

Nodes are Debian 12 chroots (``wazo_ha_rig.chroot_node``: a debootstrap image cached under
/var/cache/wazo-ha-rig, one unpacked copy per node) in network namespaces of 10.203.13.0/24 (tag ``q``).
``WAZO_HA_DEB=/path/to/wazo-ha_X_amd64.deb`` reuses a package already built (quick loops only: the
package under test is then not the one of the sources).
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import pytest

from wazo_ha_rig.chroot_node import ChrootNode, ensure_image
from wazo_ha_rig.netns import TestNetwork

REPO = Path(__file__).resolve().parents[2]
SUBNET, TAG = "10.203.13.0/24", "q"


def pytest_collection_modifyitems(items):
    if os.geteuid() != 0:
        skip = pytest.mark.skip(reason="the package env needs root (build-deb, chroot, namespaces)")
        for item in items:
            item.add_marker(skip)


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


@pytest.fixture(scope="session", autouse=True)
def _sigterm_unwinds():
    """SIGTERM (a CI time limit) unwinds like Ctrl-C: node teardown still unmounts and removes everything."""
    previous = signal.signal(signal.SIGTERM, _interrupt)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture(scope="session")
def deb(tmp_path_factory) -> Path:
    if os.environ.get("WAZO_HA_DEB"):
        return Path(os.environ["WAZO_HA_DEB"])
    output = tmp_path_factory.mktemp("deb")
    subprocess.run([str(REPO / "build-deb"), "--output", str(output)], check=True, timeout=1800)
    (built,) = output.glob("wazo-ha_*.deb")
    return built


@pytest.fixture(scope="session")
def image() -> Path:
    return ensure_image()


@pytest.fixture(scope="session")
def network():
    with TestNetwork(SUBNET, TAG) as net:
        yield net


@pytest.fixture(scope="module")
def installed_node(deb, image, network, tmp_path_factory):
    """One node with the package installed (shared by the read-only checks of a module)."""
    host = network.add_host(f"i{len(network.hosts)}")
    with ChrootNode.unpacked(image, "installed", host=host) as node:
        node.install_deb(deb)
        yield node
