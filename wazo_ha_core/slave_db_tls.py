"""``slave_db.require_tls``: the slave accepts the master's replication only over TLS.

With it, the slave's managed ``pg_hba.conf`` line is ``hostssl`` instead of
``host`` (still ``scram-sha-256``): PostgreSQL then refuses a clear-text
connection of the replication role. A ``hostssl`` line can never match while
the server has ``ssl = off``, so enabling refuses such a server instead of
locking the master out.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .config_db import config_db_engine, database_error
from .errors import EditStepError


def hba_connection_type(settings) -> str:
    """``hostssl`` when ``slave_db.require_tls``, else ``host``."""
    return "hostssl" if settings.get("slave_db.require_tls") else "host"


def check_server_tls(settings) -> None:
    """Refuse (:class:`EditStepError`) to require TLS of a PostgreSQL that has ``ssl = off``."""
    if not settings.get("slave_db.require_tls"):
        return
    engine = config_db_engine(settings)
    try:
        with engine.connect() as connection:
            ssl = connection.execute(text("SELECT current_setting('ssl')")).scalar()
    except SQLAlchemyError as exc:
        raise database_error(engine, "cannot tell whether PostgreSQL has TLS on (slave_db.require_tls)", exc) from None
    finally:
        engine.dispose()
    if ssl != "on":
        raise EditStepError(
            f"slave_db.require_tls is true but this node's PostgreSQL has ssl = {ssl}: the hostssl line could "
            "never match and the master would be locked out. Turn TLS on (ssl = on with a certificate, e.g. "
            "Debian's snakeoil one from ssl-cert; docs/plugins/pg_dump.rst, 'TLS') or set slave_db.require_tls: false"
        )
