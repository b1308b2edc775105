"""Alembic environment: always run by :mod:`wazo_ha_core.store.migrate` on a live connection.

The connection arrives in ``config.attributes["connection"]`` with the
schema translate map already set, so the migration scripts name no schema.
"""

from alembic import context

from wazo_ha_core.store.tables import metadata

config = context.config
connection = config.attributes["connection"]
schema = config.attributes.get("schema")

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=config.attributes["version_table"],
    version_table_schema=schema,
    transaction_per_migration=False,
)
with context.begin_transaction():
    context.run_migrations()
