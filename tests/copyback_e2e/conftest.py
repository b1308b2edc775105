import pytest

from tests.rig.copyback import CopyBackRig
from tests.rig.fixtures import SHARED_FIXTURES
from wazo_ha_rig import schema_fixture


@pytest.fixture(scope="module")
def rig():
    """Master, slave and phone in 10.203.17.0/24 (tag b), HA enabled, the slave's watch standing by, the master's
    copy-back checks running."""
    with CopyBackRig(schema_fixture.find(SHARED_FIXTURES)) as rig:
        try:
            yield rig
        finally:
            rig.print_log_tails()
