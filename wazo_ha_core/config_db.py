"""Connections to this node's configuration database (Wazo's ``asterisk``), from ``config_db.url``."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from .errors import EditStepError


def config_db_engine(settings, url: str | None = None) -> Engine:
    """An engine on ``config_db.url`` (psycopg2, connect timeout from ``timeouts.connect``)."""
    parsed = make_url(url or settings.get("config_db.url"))
    if parsed.drivername == "postgresql":
        # SQLAlchemy 2.1 defaults to psycopg 3; Wazo nodes ship psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg2")
    timeout = max(1, int(settings.get("timeouts.connect")))
    return create_engine(parsed, connect_args={"connect_timeout": timeout})


def describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def database_error(engine: Engine, what: str, exc: SQLAlchemyError) -> EditStepError:
    """A one-line error naming the database (password hidden) and PostgreSQL's reason."""
    original = getattr(exc, "orig", None) or exc
    reason = str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__
    return EditStepError(f"{what} on {describe(engine)}: {reason}")
