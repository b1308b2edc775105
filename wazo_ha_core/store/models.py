"""The state store's tables.

Tables carry no schema name here: the store maps them into its own schema
(``store.schema``) on PostgreSQL through ``schema_translate_map``, and into
the default one on SQLite. The migrations in ``migrations/versions`` are the
source of truth for the database; these models must match them (a test
checks it).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class HASettingsRow(Base):
    """The current HA settings: at most one row, ``id = 1``."""

    __tablename__ = "ha_settings"
    __table_args__ = (
        CheckConstraint("node_type IN ('disabled', 'master', 'slave')", name="ha_settings_node_type"),
        CheckConstraint("id = 1", name="ha_settings_single_row"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_type: Mapped[str] = mapped_column(String(16))
    remote_address: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventRow(Base):
    """One entry of the append-only journal (edits, replications, syncs, failovers...)."""

    __tablename__ = "event"
    __table_args__ = (Index("event_kind", "kind"), Index("event_started_at", "started_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16))
    message: Mapped[str] = mapped_column(Text)
    figures: Mapped[dict] = mapped_column(JSON)


class PluginStateRow(Base):
    """A plugin's persistent key/value memory (e.g. provd's remembered backups)."""

    __tablename__ = "plugin_state"

    owner: Mapped[str] = mapped_column(String(128), primary_key=True)
    key: Mapped[str] = mapped_column(String(256), primary_key=True)
    value: Mapped[object] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
