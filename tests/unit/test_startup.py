"""Start-up: each command imports only what it uses (docs/architecture.rst, "Start-up").

Every check runs a fresh interpreter, as cron, systemd or an operator would, and
reads which modules it ended up with. The heavy ones were chosen from
``python -X importtime``: each costs a multiple of a bare interpreter's start.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

from wazo_ha_core.settings import Settings
from wazo_ha_core.status_snapshot import snapshot_path
from wazo_ha_core.store.store import HEAD_REVISION, Store

#: Third-party packages too costly to load where they are not used (top-level names).
HEAVY = {"sqlalchemy", "alembic", "mako", "paramiko", "cryptography", "psycopg2", "yaml", "stevedore", "icmplib"}
#: Our own modules that drag the heavy ones in.
HEAVY_OURS = {"wazo_ha_core.engine", "wazo_ha_core.store.store", "wazo_ha_core.plugins"}


def modules_after(code: str, *args: str) -> set[str]:
    """The modules a fresh interpreter holds after running ``code`` (which may exit)."""
    script = textwrap.dedent(
        """
        import atexit, json, sys
        atexit.register(lambda: sys.__stderr__.write("MODULES" + json.dumps(sorted(sys.modules)) + "\\n"))
        """
    ) + textwrap.dedent(code)
    result = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
    )
    line = [line for line in result.stderr.splitlines() if line.startswith("MODULES")]
    assert line, result.stderr
    return set(json.loads(line[-1].removeprefix("MODULES")))


def heavy_in(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] in HEAVY or name in HEAVY_OURS}


def test_import_wazo_ha_core_is_light():
    assert heavy_in(modules_after("import wazo_ha_core")) == set()


def test_what_plugins_import_is_light():
    code = """
    from wazo_ha_core import (CheckResult, FunctionCheck, HealthProbe, PluginError, PreflightError, ProbeAnswer,
                              ServiceManager, ServiceState, TcpCheck)
    """
    assert heavy_in(modules_after(code)) == set()


@pytest.mark.parametrize("argv", [["--help"], ["status", "--help"], ["replicate", "--help"], ["sync", "--help"]])
def test_help_is_light(argv):
    code = """
    import sys
    from wazo_ha_core.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
    modules = modules_after(code, *argv)
    assert "wazo_ha_core.cli.ha_settings" in modules  # the parser was really built
    assert heavy_in(modules) == set()


def test_legacy_replication_help_is_light():
    code = """
    import sys
    from wazo_ha_core.cli.replication import legacy_db_replication
    sys.exit(legacy_db_replication(["--help"]))
    """
    assert heavy_in(modules_after(code)) == set()


def status_node(tmp_path, snapshot: bool):
    config = tmp_path / "config.yml"
    config.write_text(
        f"root: {tmp_path}/root\nlocal_addresses: [10.0.0.1]\n"
        "plugins: {replication: [], file_sync: [], health_probes: [], device_provisioners: [], service_managers: []}\n"
    )
    Store.from_settings(Settings.load(config)).upgrade()  # writes the status snapshot
    if not snapshot:
        snapshot_path(tmp_path / "root/var/lib/wazo-ha/state.db").unlink()
    code = """
    import sys
    from wazo_ha_core.cli.main import main
    sys.exit(main(sys.argv[1:]))
    """
    return modules_after(code, "status", "--config", str(config))


def test_status_from_its_snapshot_loads_nothing_heavy_but_the_settings_parser(tmp_path):
    modules = status_node(tmp_path, snapshot=True)
    assert "wazo_ha_core.status" in modules  # the status was really built
    assert heavy_in(modules) == {"yaml"} | {name for name in modules if name.startswith("yaml.")}
    # nor the watch loop (threads, a pool, the plugins' extension points): status reads, it does not watch
    assert {"wazo_ha_core.watcher", "wazo_ha_core.extensions", "concurrent.futures"}.isdisjoint(modules)


def test_status_without_snapshot_opens_the_store_without_alembic_nor_plugins(tmp_path):
    modules = status_node(tmp_path, snapshot=False)
    assert "sqlalchemy" in modules  # the store was opened: it is behind SQLAlchemy
    assert {name.split(".")[0] for name in heavy_in(modules)} - {"sqlalchemy", "yaml", "wazo_ha_core"} == set()


def test_the_store_and_the_engine_are_sqlalchemy_core_without_the_orm(tmp_path):
    """Every command that opens the store (cron's replication every minute) pays for what it imports."""
    Store(f"sqlite:///{tmp_path}/state.db").upgrade()
    code = """
    import sys
    import wazo_ha_core.store.store
    import wazo_ha_core.engine
    from wazo_ha_core.store import Store

    store = Store(f"sqlite:///{sys.argv[1]}/state.db")
    store.plugin_state("test").set("key", {"a": 1})
    assert store.plugin_state("test").get("key") == {"a": 1} and store.events() == []
    """
    modules = modules_after(code, str(tmp_path))
    assert "wazo_ha_core.store.store" in modules and "wazo_ha_core.engine" in modules
    assert {name for name in modules if name.startswith(("sqlalchemy.orm", "sqlalchemy.ext"))} == set()
    assert {name for name in modules if name.split(".")[0] in {"alembic", "mako"}} == set()


def test_rsync_plugin_imports_paramiko_only_to_speak_ssh():
    assert "paramiko" not in modules_after("import wazo_ha_plugins.rsync")


def test_public_api_resolves_every_name():
    import wazo_ha_core

    for name in wazo_ha_core.__all__:
        assert getattr(wazo_ha_core, name) is not None, name
    assert set(wazo_ha_core.__all__) <= set(dir(wazo_ha_core))
    with pytest.raises(AttributeError, match="no_such_name"):
        wazo_ha_core.no_such_name  # noqa: B018
    from wazo_ha_core import HAEngine
    from wazo_ha_core.engine import HAEngine as defined

    assert HAEngine is defined


def test_head_revision_constant_is_alembics_head(tmp_path):
    """The store checks the schema without alembic: its constant must follow the shipped migrations."""
    from alembic.script import ScriptDirectory

    store = Store(f"sqlite:///{tmp_path}/state.db")
    assert ScriptDirectory.from_config(store._alembic_config(None)).get_current_head() == HEAD_REVISION
    store.upgrade()
    assert store.current_revision() == HEAD_REVISION
