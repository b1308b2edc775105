import pytest

from tests.rig.netns import prober_and_target


@pytest.fixture(scope="module")
def hosts():
    """(network, prober, target): the probe runs in ``prober``'s namespace and targets ``target``."""
    with prober_and_target() as hosts:
        yield hosts
