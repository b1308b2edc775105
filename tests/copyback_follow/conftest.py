import pytest

from tests.rig.copyback_follow import FollowCopyBackRig
from tests.rig.fixtures import SHARED_FIXTURES
from wazo_ha_rig import schema_fixture


@pytest.fixture(scope="package")
def rig():
    """Master, slave and phone in 10.203.27.0/24 (tag f), HA enabled, the slave's watch standing by; no schedule
    on the master (each test starts or stops the master's `wazo-ha follow`)."""
    with FollowCopyBackRig(schema_fixture.find(SHARED_FIXTURES)) as rig:
        try:
            yield rig
        finally:
            rig.print_log_tails()
