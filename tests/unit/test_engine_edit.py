"""update_ha / get_ha: validation first, a transaction of steps, compatibility files, journal."""

from __future__ import annotations

import json
import os

import pytest

from wazo_ha_core.config import HASettings
from wazo_ha_core.errors import AlreadyRunning, EditError, StoreNotMigrated, ValidationError

from .conftest import lock_held_by_another_process
from .sample_plugins import CALLS

PROVISIONER = {"plugins": {"device_provisioners": ["recording_provisioner"]}}


def tree_files(root):
    """Every file under root with its content (the state store excluded)."""
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and "wazo-ha" not in path.parts:
            found[str(path.relative_to(root))] = path.read_bytes()
    return found


def test_fresh_node_is_disabled(make_engine):
    engine = make_engine()
    assert engine.get_ha() == {"node_type": "disabled", "remote_address": ""}


def test_enable_master_writes_files_store_and_journal(make_engine, sandbox):
    engine = make_engine(**PROVISIONER)
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert engine.get_ha() == {"node_type": "master", "remote_address": "10.0.0.2"}
    ha_conf = sandbox / "etc/xivo/ha.conf"
    assert json.loads(ha_conf.read_text()) == {"node_type": "master", "remote_address": "10.0.0.2"}
    assert oct(ha_conf.stat().st_mode & 0o777) == "0o644"
    assert (sandbox / "var/lib/wazo/is-primary").exists()
    assert not (sandbox / "var/lib/wazo/is-secondary").exists()
    assert CALLS == [("recording_provisioner", "enable_backup", ("10.0.0.2",))]
    [event] = engine.store.events()
    assert (event.kind, event.outcome) == ("edit", "ok")
    assert event.figures["before"] == {"node_type": "disabled", "remote_address": ""}
    assert event.figures["after"] == {"node_type": "master", "remote_address": "10.0.0.2"}
    assert event.figures["steps"] == [
        "device provisioner recording_provisioner",
        "SIP registration expiry",
        "replication password",
        "replication role",
        "slave database access",
        "schedules",
        "compatibility files",
        "state store",
    ]


def test_role_changes_move_the_sentinels(make_engine, sandbox):
    engine = make_engine()
    primary, secondary = sandbox / "var/lib/wazo/is-primary", sandbox / "var/lib/wazo/is-secondary"
    engine.update_ha({"node_type": "slave", "remote_address": "10.0.0.2"})
    assert secondary.exists() and not primary.exists()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert primary.exists() and not secondary.exists()
    engine.update_ha({"node_type": "disabled"})
    assert not primary.exists() and not secondary.exists()
    assert json.loads((sandbox / "etc/xivo/ha.conf").read_text()) == {"node_type": "disabled", "remote_address": ""}


@pytest.mark.parametrize(
    "body",
    [
        {"node_type": "master", "remote_address": "10.0.0.2;reboot"},
        {"node_type": "master", "remote_address": "10.0.0.1"},
        {"node_type": "master"},
        {"node_type": "master", "remote_address": "10.0.0.2", "x": 1},
        ["master"],
    ],
)
def test_rejected_body_changes_nothing(make_engine, sandbox, body):
    engine = make_engine(**PROVISIONER)
    engine.update_ha({"node_type": "slave", "remote_address": "10.0.0.9"})
    CALLS.clear()
    files_before, events_before = tree_files(sandbox), engine.store.events()
    with pytest.raises(ValidationError):
        engine.update_ha(body)
    assert tree_files(sandbox) == files_before
    assert engine.store.events() == events_before
    assert engine.get_ha() == {"node_type": "slave", "remote_address": "10.0.0.9"}
    assert CALLS == []


def test_reapplying_the_same_settings_changes_nothing(make_engine, sandbox):
    engine = make_engine(**PROVISIONER)
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    ha_conf = sandbox / "etc/xivo/ha.conf"
    stamp = ha_conf.stat().st_mtime_ns
    os.utime(ha_conf, ns=(stamp - 10**9, stamp - 10**9))
    CALLS.clear()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert ha_conf.stat().st_mtime_ns == stamp - 10**9  # not rewritten
    assert CALLS == []
    assert engine.store.events()[0].outcome == "unchanged"


def test_same_settings_with_damaged_files_rewrites_them(make_engine, sandbox):
    engine = make_engine()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    (sandbox / "var/lib/wazo/is-primary").unlink()
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert (sandbox / "var/lib/wazo/is-primary").exists()


def test_failing_provisioner_leaves_everything_as_before(make_engine, sandbox):
    engine = make_engine(plugins={"device_provisioners": ["recording_provisioner"]})
    engine.update_ha({"node_type": "slave", "remote_address": "10.0.0.9"})
    files_before = tree_files(sandbox)
    failing = make_engine(
        plugins={"device_provisioners": ["recording_provisioner"]},
        plugin_config={"recording_provisioner": {"fail_on": "enable_backup"}},
    )
    with pytest.raises(EditError) as caught:
        failing.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert caught.value.step == "device provisioner recording_provisioner"
    assert "provd refused" in str(caught.value)
    assert tree_files(sandbox) == files_before
    assert failing.get_ha() == {"node_type": "slave", "remote_address": "10.0.0.9"}
    event = failing.store.events()[0]
    assert (event.kind, event.outcome) == ("edit", "failed")
    assert "device provisioner" in event.message


def test_failing_store_commit_undoes_files_and_provisioner(make_engine, sandbox, monkeypatch):
    engine = make_engine(**PROVISIONER)
    engine.update_ha({"node_type": "disabled"})
    files_before = tree_files(sandbox)
    CALLS.clear()

    def broken_write(*args, **kwargs):
        raise OSError("disk full (test)")

    monkeypatch.setattr(engine.store, "write_ha_settings", broken_write)
    with pytest.raises(EditError) as caught:
        engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert caught.value.step == "state store"
    assert tree_files(sandbox) == files_before
    assert CALLS == [
        ("recording_provisioner", "enable_backup", ("10.0.0.2",)),
        ("recording_provisioner", "disable_backup", ()),
    ]
    state = engine.store.plugin_state("device_provisioners.recording_provisioner")
    assert state.get("backup") == ""


def test_undo_failure_is_reported(make_engine, monkeypatch):
    engine = make_engine(
        plugins={"device_provisioners": ["recording_provisioner"]},
        plugin_config={"recording_provisioner": {"fail_on": "disable_backup"}},
    )
    monkeypatch.setattr(engine.compat, "write", lambda ha: (_ for _ in ()).throw(PermissionError("read-only /etc")))
    with pytest.raises(EditError) as caught:
        engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    assert caught.value.step == "compatibility files"
    assert caught.value.undo_failures == ["device provisioner recording_provisioner"]
    assert "undo ALSO failed" in str(caught.value)


def test_provisioner_disabled_only_when_leaving_master(make_engine):
    engine = make_engine(**PROVISIONER)
    engine.update_ha({"node_type": "slave", "remote_address": "10.0.0.2"})
    engine.update_ha({"node_type": "disabled"})
    assert CALLS == []  # a slave never touched provd
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    engine.update_ha({"node_type": "disabled"})
    assert [call[1] for call in CALLS] == ["enable_backup", "disable_backup"]


def test_edit_listeners_are_called_and_may_fail(make_engine):
    engine = make_engine()
    seen = []
    engine.edit_listeners.append(lambda before, after: seen.append((before.node_type, after.node_type)))
    engine.edit_listeners.append(lambda before, after: 1 / 0)
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})  # unchanged: no notification
    assert seen == [("disabled", "master")]
    assert engine.get_ha()["node_type"] == "master"


def test_existing_ha_conf_is_imported_once(make_engine, sandbox):
    ha_conf = sandbox / "etc/xivo/ha.conf"
    ha_conf.parent.mkdir(parents=True)
    ha_conf.write_text('{"node_type": "slave", "remote_address": "10.0.0.7"}')
    engine = make_engine()
    assert engine.get_ha() == {"node_type": "slave", "remote_address": "10.0.0.7"}
    ha_conf.write_text('{"node_type": "master", "remote_address": "10.0.0.8"}')
    assert engine.get_ha() == {"node_type": "slave", "remote_address": "10.0.0.7"}  # the store now rules
    assert [event.kind for event in engine.store.events()] == ["import"]


@pytest.mark.parametrize(
    "content", ["not json", '{"node_type": "boss"}', '{"node_type": "master", "remote_address": "x"}', "[]"]
)
def test_unusable_ha_conf_is_ignored(make_engine, sandbox, content):
    ha_conf = sandbox / "etc/xivo/ha.conf"
    ha_conf.parent.mkdir(parents=True)
    ha_conf.write_text(content)
    assert make_engine().get_ha() == {"node_type": "disabled", "remote_address": ""}


def test_legacy_disabled_with_null_address_imports(make_engine, sandbox):
    ha_conf = sandbox / "etc/xivo/ha.conf"
    ha_conf.parent.mkdir(parents=True)
    ha_conf.write_text('{"node_type": "disabled", "remote_address": null}')
    assert make_engine().get_ha() == {"node_type": "disabled", "remote_address": ""}


def test_unmigrated_store_is_reported(make_engine):
    engine = make_engine(migrate=False)
    with pytest.raises(StoreNotMigrated, match="wazo-ha db upgrade"):
        engine.get_ha()


def test_status_has_settings_and_latest_events(make_engine):
    engine = make_engine()
    for address in ("10.0.0.2", "10.0.0.3", "10.0.0.4"):
        engine.update_ha({"node_type": "master", "remote_address": address})
    status = engine.status(limit=2)
    assert status["node_type"] == "master" and status["remote_address"] == "10.0.0.4"
    assert [e["figures"]["after"]["remote_address"] for e in status["events"]] == ["10.0.0.4", "10.0.0.3"]


def _deep(depth):
    value: list = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    "body",
    [
        {"node_type": 10**5000},
        {"node_type": "master", "remote_address": _deep(100_000)},
        {"node_type": "master", "remote_address": "10.0.0." + "2" * 10_000_000},
        {10**5000: "master"},
        _deep(100_000),
    ],
    ids=["huge int", "deep list", "10 MB address", "huge int key", "deep body"],
)
def test_odd_bodies_are_refused_briefly_and_change_nothing(make_engine, sandbox, body):
    engine = make_engine(**PROVISIONER)
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    files, events = tree_files(sandbox), len(engine.store.events())
    CALLS.clear()
    with pytest.raises(ValidationError) as caught:
        engine.update_ha(body)
    assert len(str(caught.value)) <= 400
    assert tree_files(sandbox) == files and len(engine.store.events()) == events and CALLS == []
    assert engine.get_ha() == {"node_type": "master", "remote_address": "10.0.0.2"}


# --- file sync trust: forgotten when the node leaves master or slave ------------------------

FILE_SYNC = {"plugins": {"file_sync": ["recording_file_sync"]}}


def test_the_file_sync_trust_step_comes_after_the_schedules_and_before_the_compatibility_files(make_engine):
    engine = make_engine(**FILE_SYNC)
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    [event] = engine.store.events()
    steps = event.figures["steps"]
    assert steps[steps.index("schedules") + 1 : steps.index("compatibility files")] == [
        "file sync trust recording_file_sync"
    ]


@pytest.mark.parametrize(
    ("before", "after", "forgotten"),
    [
        (("disabled", ""), ("master", "10.0.0.2"), None),
        (("disabled", ""), ("slave", "10.0.0.2"), None),
        (("master", "10.0.0.2"), ("disabled", ""), ("master", "10.0.0.2")),
        (("slave", "10.0.0.3"), ("disabled", ""), ("slave", "10.0.0.3")),
        (("master", "10.0.0.2"), ("slave", "10.0.0.2"), ("master", "10.0.0.2")),
        (("slave", "10.0.0.2"), ("master", "10.0.0.2"), ("slave", "10.0.0.2")),
        (("master", "10.0.0.2"), ("master", "10.0.0.4"), None),
        (("slave", "10.0.0.2"), ("slave", "10.0.0.4"), None),
    ],
    ids=lambda value: "-".join(value) if isinstance(value, tuple) else str(value),
)
def test_the_trust_is_forgotten_exactly_when_the_node_leaves_a_role(make_engine, sandbox, before, after, forgotten):
    engine = make_engine(**FILE_SYNC)
    engine.store.write_ha_settings(HASettings(*before))
    for role in ("master", "slave"):
        write_private(sandbox / f"trust/{role}.key", f"{role} secret\n")

    engine.update_ha({"node_type": after[0], "remote_address": after[1]})

    calls = [call[2] for call in CALLS if call[1] == "forget_trust"]
    assert calls == ([forgotten] if forgotten else [])
    for role in ("master", "slave"):
        assert (sandbox / f"trust/{role}.key").exists() == (forgotten is None or forgotten[0] != role)


def test_a_failing_later_step_puts_the_forgotten_trust_back_exactly(make_engine, sandbox, monkeypatch):
    engine = make_engine(**FILE_SYNC)
    engine.store.write_ha_settings(HASettings("slave", "10.0.0.2"))
    key = write_private(sandbox / "trust/slave.key", "slave secret\r\nsecond line")
    os.chown(key, 1, 2)
    monkeypatch.setattr(engine.compat, "write", lambda ha: (_ for _ in ()).throw(PermissionError("read-only /etc")))

    with pytest.raises(EditError) as caught:
        engine.update_ha({"node_type": "disabled"})

    assert caught.value.step == "compatibility files" and caught.value.undo_failures == []
    assert ("recording_file_sync", "forget_trust", ("slave", "10.0.0.2")) in CALLS
    info = key.stat()
    assert key.read_bytes() == b"slave secret\r\nsecond line"
    assert (info.st_mode & 0o7777, info.st_uid, info.st_gid) == (0o600, 1, 2)
    assert engine.get_ha() == {"node_type": "slave", "remote_address": "10.0.0.2"}


def test_left_role():
    from wazo_ha_core.edit_steps import left_role

    def ha(node_type, address="10.0.0.2"):
        return HASettings(node_type, address if node_type != "disabled" else "")

    assert left_role(ha("slave"), ha("disabled")) == "slave"
    assert left_role(ha("master"), ha("slave")) == "master"
    assert left_role(ha("disabled"), ha("master")) is None
    assert left_role(ha("master"), ha("master", "10.0.0.9")) is None


def write_private(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode())
    os.chmod(path, 0o600)
    return path


def test_an_edit_while_another_process_edits_is_refused_and_changes_nothing(make_engine, sandbox):
    engine = make_engine(**PROVISIONER)
    engine.update_ha({"node_type": "master", "remote_address": "10.0.0.2"})
    lock = engine.settings.path("run_dir") / "edit.lock"
    files, events = tree_files(sandbox), len(engine.store.events())
    CALLS.clear()
    # Another process (the CLI, or confd) in the middle of an edit holds the node's edit lock.
    with lock_held_by_another_process(lock):
        with pytest.raises(AlreadyRunning, match="an HA settings edit already running"):
            engine.update_ha({"node_type": "disabled"})
        assert tree_files(sandbox) == files and len(engine.store.events()) == events and CALLS == []
    engine.update_ha({"node_type": "disabled"})  # released with the process
    assert engine.get_ha() == {"node_type": "disabled", "remote_address": ""}


def test_a_sync_while_another_process_syncs_is_refused_and_calls_no_plugin(make_engine):
    engine = make_engine(plugins={"file_sync": ["recording_file_sync"]})
    engine.store.write_ha_settings(HASettings("master", "10.0.0.2"))
    with lock_held_by_another_process(engine.settings.path("run_dir") / "file-sync.lock"):
        with pytest.raises(AlreadyRunning, match="file sync already running"):
            engine.sync_files()
    assert [call for call in CALLS if call[1] == "sync"] == []
    engine.sync_files()  # released with the process
    assert [call[1] for call in CALLS] == ["sync"]
