"""Settings of the edit steps: bad values named with the key and the value; the password file's rules."""

from __future__ import annotations

import pytest

from wazo_ha_core import replication_password
from wazo_ha_core.config import DISABLED, HASettings
from wazo_ha_core.errors import EditStepError, SettingsError
from wazo_ha_core.settings import Settings
from wazo_ha_core.slave_db import ReplicationPasswordStep


@pytest.mark.parametrize(
    ("tree", "key", "value"),
    [
        ({"schedules": {"kind": "anacron"}}, "schedules.kind", "anacron"),
        ({"schedules": {"slave_mode": "ping"}}, "schedules.slave_mode", "ping"),
        ({"schedules": {"master_interval": 7}}, "schedules.master_interval", "7"),
        ({"slave_db": {"role": "x; DROP ROLE postgres"}}, "slave_db.role", "DROP ROLE"),
        ({"slave_db": {"reload_command": "systemctl reload postgresql"}}, "slave_db.reload_command", "systemctl"),
    ],
)
def test_bad_values_are_named(tree, key, value):
    with pytest.raises(SettingsError) as caught:
        Settings.from_tree(tree)
    assert key in str(caught.value) and value in str(caught.value)


def test_password_generated_once_private_and_undone(tmp_path):
    settings = Settings.from_tree({"root": str(tmp_path)})
    path = settings.path("replication_password")
    step = ReplicationPasswordStep(settings)
    step.apply(DISABLED, HASettings("master", "10.0.0.2"))
    password = replication_password.read(path)
    assert len(password) >= 40 and oct(path.stat().st_mode & 0o777) == "0o600"
    ReplicationPasswordStep(settings).apply(HASettings("master", "10.0.0.2"), HASettings("master", "10.0.0.3"))
    assert replication_password.read(path) == password  # never regenerated
    step.undo(DISABLED, HASettings("master", "10.0.0.2"))
    assert not path.exists()


def test_world_readable_password_file_is_refused_without_quoting_it(tmp_path):
    path = tmp_path / "replication-password"
    path.write_text("s3cret-s3cret-s3cret\n")
    path.chmod(0o644)
    with pytest.raises(EditStepError, match="chmod 600") as caught:
        replication_password.read(path)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("bad", ["short", "has a space in it here", "non-ascii-é-é-é-é-é-é"])
def test_weak_or_odd_passwords_are_refused_without_quoting_them(bad):
    with pytest.raises(EditStepError) as caught:
        replication_password.check(bad)
    assert bad not in str(caught.value)
