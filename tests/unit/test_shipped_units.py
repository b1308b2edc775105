"""contrib/systemd and contrib/cron.d are what the edit step writes: regenerated, not hand-edited."""

from pathlib import Path

from wazo_ha_core.schedules import shipped_files

CONTRIB = Path(__file__).resolve().parents[2] / "contrib"


def test_shipped_units_are_current():
    shipped = shipped_files()
    assert {"systemd/wazo-ha-watch.service", "systemd/wazo-ha-replicate.timer", "cron.d/xivo-ha-slave"} <= set(shipped)
    for relative, content in shipped.items():
        path = CONTRIB / relative
        assert path.exists() and path.read_text() == content, f"{path} is stale: run python contrib/gen_units.py"


def test_shipped_units_run_the_installed_command():
    shipped = shipped_files()
    assert "ExecStart=/usr/bin/wazo-ha watch --quiet" in shipped["systemd/wazo-ha-watch.service"]
    assert "root /usr/bin/wazo-ha replicate --quiet" in shipped["cron.d/xivo-ha-master"]
    assert "OnCalendar=" in shipped["systemd/wazo-ha-sync.timer"]
