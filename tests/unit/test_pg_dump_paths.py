"""pg_dump's settings: which are node paths resolved under ``root`` and which go to libpq as written, as documented."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from tests.rig.plugin_loading import MemoryState
from wazo_ha_core import PluginContext, Settings
from wazo_ha_plugins.pg_dump import PgDumpReplication

DOC = Path(__file__).resolve().parents[2] / "docs/plugins/pg_dump.rst"
FILE_KEYS = ("master_password_file", "slave_password_file", "passfile")


def test_file_paths_resolve_under_root_and_master_host_goes_to_libpq_as_written(tmp_path):
    config = {key: f"/etc/wazo-ha/{key}" for key in FILE_KEYS}
    config["master_host"] = "/var/run/postgresql"
    settings = Settings.from_tree({"root": str(tmp_path)})
    context = PluginContext("pg_dump", "wazo_ha.replication", config, settings, MemoryState(), logging.getLogger("t"))
    plugin = PgDumpReplication(context)
    master = plugin.master_endpoint()
    assert master.host == "/var/run/postgresql"  # a socket directory of this node's PostgreSQL, not under root
    assert master.password_file == tmp_path / "etc/wazo-ha/master_password_file"
    assert master.passfile == tmp_path / "etc/wazo-ha/passfile"
    assert plugin.slave_password_path() == tmp_path / "etc/wazo-ha/slave_password_file"

    text = " ".join(DOC.read_text().split())
    [paragraph] = re.findall(r"The file paths \(.*?\) are node paths, resolved under ``root``\. [^.]*\.", text)
    assert all(f"``{key}``" in paragraph for key in (*FILE_KEYS, "sslrootcert", "sslcrl")), paragraph
    assert "``master_host`` is not a file: it goes to libpq as written" in paragraph
