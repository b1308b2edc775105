import pytest

from tests.rig.ha import HARig


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    """Master, slave and phone in 10.203.5.0/25, the slave's watch running (stability window 5 s)."""
    directory = tmp_path_factory.mktemp("ha-rig")
    with HARig(directory, stability=5.0) as rig:
        rig.start_watch()
        yield rig
        print("\n--- slave watch log (tail) ---\n" + "\n".join(rig.watch_log().splitlines()[-40:]))


@pytest.fixture
def ha(rig):
    rig.baseline()
    return rig
