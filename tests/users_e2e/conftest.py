import pytest

from tests.rig.fixtures import SHARED_FIXTURES
from tests.rig.users import UsersRig
from wazo_ha_rig import schema_fixture


@pytest.fixture(scope="module")
def rig():
    """Master, slave and phone in 10.203.25.0/24 (tag u), HA enabled, the slave's watch standing by, the master's
    follow mode and copy-back checks running."""
    with UsersRig(schema_fixture.find(SHARED_FIXTURES)) as rig:
        try:
            yield rig
        finally:
            rig.print_log_tails()
