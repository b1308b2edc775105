"""The initial store: HA settings, the event journal, plugin state.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ha_settings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("node_type", sa.String(16), nullable=False),
        sa.Column("remote_address", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("node_type IN ('disabled', 'master', 'slave')", name="ha_settings_node_type"),
        sa.CheckConstraint("id = 1", name="ha_settings_single_row"),
    )
    op.create_table(
        "event",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("figures", sa.JSON, nullable=False),
    )
    op.create_index("event_kind", "event", ["kind"])
    op.create_index("event_started_at", "event", ["started_at"])
    op.create_table(
        "plugin_state",
        sa.Column("owner", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("value", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("plugin_state")
    op.drop_index("event_started_at", table_name="event")
    op.drop_index("event_kind", table_name="event")
    op.drop_table("event")
    op.drop_table("ha_settings")
