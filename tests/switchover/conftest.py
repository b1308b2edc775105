import pytest

from tests.rig.switchover import SwitchoverRig


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """A wazo-ha master and slave and a phone in 10.203.15.0/24 (tag s), the slave's watch running."""
    directory = tmp_path_factory.mktemp("switchover-rig")
    with SwitchoverRig(directory, stability=3.0) as rig:
        rig.start_watch()
        yield rig
        print("\n--- slave watch log (tail) ---\n" + "\n".join(rig.watch_log().splitlines()[-40:]))


@pytest.fixture
def ha(rig):
    rig.baseline()
    return rig
