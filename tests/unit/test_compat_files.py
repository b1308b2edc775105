"""ha.conf and the sentinels: atomic replacement, snapshots for undo."""

from __future__ import annotations

import json
import os
import threading

from wazo_ha_core.compat import CompatFiles, FileSnapshot, write_atomically
from wazo_ha_core.config import HASettings


def files(tmp_path) -> CompatFiles:
    return CompatFiles(tmp_path / "etc/xivo/ha.conf", tmp_path / "wazo/is-primary", tmp_path / "wazo/is-secondary")


def test_readers_never_see_a_partial_ha_conf(tmp_path):
    compat = files(tmp_path)
    compat.write(HASettings("master", "10.0.0.2"))
    stop = threading.Event()
    seen = []

    def reader():
        while not stop.is_set():
            seen.append(json.loads(compat.ha_conf.read_text()))

    thread = threading.Thread(target=reader)
    thread.start()
    for i in range(300):
        compat.write(HASettings("slave", f"2001:db8::{i + 2:x}"))
    stop.set()
    thread.join()
    assert seen and all(set(body) == {"node_type", "remote_address"} for body in seen)


def test_no_temporary_file_left_behind_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "ha.conf"
    target.write_text("old")

    def failing_replace(src, dst):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", failing_replace)
    try:
        write_atomically(target, b"new", 0o644)
    except OSError:
        pass
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["ha.conf"]


def test_snapshot_restores_content_mode_and_absence(tmp_path):
    present = tmp_path / "present"
    present.write_text("before")
    present.chmod(0o600)
    absent = tmp_path / "absent"
    snapshots = [FileSnapshot.take(present), FileSnapshot.take(absent)]
    present.write_text("after")
    present.chmod(0o644)
    absent.write_text("created")
    for snapshot in snapshots:
        snapshot.restore()
    assert present.read_text() == "before" and oct(present.stat().st_mode & 0o777) == "0o600"
    assert not absent.exists()


def test_is_current(tmp_path):
    compat = files(tmp_path)
    ha = HASettings("slave", "10.0.0.2")
    assert not compat.is_current(ha)
    compat.write(ha)
    assert compat.is_current(ha)
    assert not compat.is_current(HASettings("master", "10.0.0.2"))
    compat.primary_sentinel.write_text("")
    assert not compat.is_current(ha)
