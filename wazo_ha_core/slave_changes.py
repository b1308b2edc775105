"""``wazo-ha slave-changes``: the slave's configuration edits that a replication would overwrite.

The replication backend finds them (``ReplicationBackend.slave_changes``;
``pg_dump``: :mod:`wazo_ha_plugins.pg_dump.slave_changes`); this module picks
the peer, formats them for a terminal and writes the export.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import PluginError, PreflightError

if TYPE_CHECKING:
    from .engine import HAEngine

#: Characters of a value shown before it is cut (the export is never cut).
SHOWN_VALUE = 60


def list_slave_changes(engine: HAEngine) -> list[dict[str, Any]]:
    """Per enabled replication backend: ``{"plugin", "method", "tables", "sql"}``. Master only; reads only."""
    ha = engine.current_settings()
    if ha.node_type != "master":
        raise PreflightError(f"slave-changes runs on the master only; this node's node_type is {ha.node_type!r}")
    backends = engine.loader.load("replication")
    if not backends:
        raise PluginError("no replication backend enabled: set plugins.replication (e.g. [pg_dump])")
    return [{"plugin": backend.name, **backend.slave_changes(ha.remote_address)} for backend in backends]


def _value(value: str | None) -> str:
    if value is None:
        return "NULL"
    shown = repr(value[:SHOWN_VALUE])
    return shown + ("…" if len(value) > SHOWN_VALUE else "")


def _key(key: dict[str, Any]) -> str:
    return ", ".join(f"{column}={_value(value)}" for column, value in key.items())


def format_changes(listing: list[dict[str, Any]]) -> str:
    """The listing as lines for a terminal: per table, counts then each row."""
    lines = []
    for backend in listing:
        lines.append(f"{backend['plugin']}: {backend['method']}")
        if not backend["tables"]:
            lines.append("  no slave-side change: the next replication overwrites nothing edited on the slave")
        for table in backend["tables"]:
            added, changed, removed = table["added"], table["changed"], table["removed"]
            lines.append(
                f"  {table['table']}: {len(added)} added, {len(changed)} changed, {len(removed)} removed on the slave"
            )
            for row in added:
                lines.append(f"    added    {_key(row)}")
            for change in changed:
                diffs = "; ".join(
                    f"{column} {_value(master)} -> {_value(slave)}"
                    for column, (master, slave) in change["columns"].items()
                )
                lines.append(f"    changed  {_key(change['key'])}: {diffs} (master -> slave)")
            for key in removed:
                lines.append(f"    removed  {_key(key)}")
    return "\n".join(lines)


def write_export(listing: list[dict[str, Any]], path: Path) -> int:
    """Write every backend's SQL to ``path`` (mode 0600: rows may hold SIP secrets), atomically; the table count.

    Raises :class:`PreflightError` naming the file when it cannot be written (nothing written then).
    """
    text = "".join(backend["sql"] for backend in listing)
    path = Path(path)
    if path.is_dir():
        raise PreflightError(f"slave-changes export FILE: {str(path)[:200]!r} is a directory")
    try:
        descriptor, temporary = tempfile.mkstemp(prefix=".wazo-ha-export-", dir=path.parent or ".")
    except OSError as exc:
        raise PreflightError(f"slave-changes export FILE: cannot write {str(path)[:200]!r}: {exc.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return sum(len(backend["tables"]) for backend in listing)
