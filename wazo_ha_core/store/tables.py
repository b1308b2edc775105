"""The state store's tables, as SQLAlchemy Core ``Table`` objects on one ``MetaData``.

Core rather than the ORM: the store reads and writes three small tables with
plain statements, and ``sqlalchemy.orm`` would add its import to every command
that opens the store (the cron-run replication among them) for nothing.

Tables carry no schema name here: the store maps them into its own schema
(``store.schema``) on PostgreSQL through ``schema_translate_map``, and into
the default one on SQLite. The migrations in ``migrations/versions`` are the
source of truth for the database; these tables must match them (a test
checks it).
"""

from __future__ import annotations

from sqlalchemy import JSON, CheckConstraint, Column, DateTime, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

#: The current HA settings: at most one row, ``id = 1``.
ha_settings = Table(
    "ha_settings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("node_type", String(16), nullable=False),
    Column("remote_address", String(64), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    CheckConstraint("node_type IN ('disabled', 'master', 'slave')", name="ha_settings_node_type"),
    CheckConstraint("id = 1", name="ha_settings_single_row"),
)

#: The append-only journal (edits, replications, syncs, failovers...).
event = Table(
    "event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("message", Text, nullable=False),
    Column("figures", JSON, nullable=False),
    Index("event_kind", "kind"),
    Index("event_started_at", "started_at"),
)

#: A plugin's persistent key/value memory (e.g. provd's remembered backups).
plugin_state = Table(
    "plugin_state",
    metadata,
    Column("owner", String(128), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("value", JSON, nullable=True),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
