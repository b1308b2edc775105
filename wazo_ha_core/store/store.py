"""Opening the store, migrating it, and reading/writing its three tables (SQLAlchemy Core, no ORM)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import SQLAlchemyError

from ..config import HASettings
from ..errors import StoreError, StoreNotMigrated
from ..extensions import PluginState
from ..journal import Event
from ..status_snapshot import SnapshotWriter
from .revision import HEAD_REVISION
from .tables import event as EVENT
from .tables import ha_settings as HA_SETTINGS
from .tables import plugin_state as PLUGIN_STATE

VERSION_TABLE = "wazo_ha_alembic_version"
MIGRATIONS = Path(__file__).parent / "migrations"

# alembic's version table, as alembic creates it: read with one SELECT, without alembic.
_VERSIONS = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32), nullable=False))


class Store:
    """One state store. ``url`` is an SQLAlchemy URL; ``schema`` is used on PostgreSQL only."""

    def __init__(self, url: str, schema: str = "wazo_ha", snapshot: SnapshotWriter | None = None):
        """``snapshot``: rewritten after every write (``wazo-ha status`` reads it without SQLAlchemy)."""
        self.url = make_url(url)
        self.snapshot = snapshot
        self._batching = self._batched_write = False
        if self.url.drivername == "postgresql":
            # SQLAlchemy 2.1 defaults to psycopg 3; Wazo nodes ship psycopg2.
            self.url = self.url.set(drivername="postgresql+psycopg2")
        self.is_sqlite = self.url.get_backend_name() == "sqlite"
        if not schema.isidentifier() or schema == "public":
            # It is interpolated into CREATE SCHEMA: accept plain identifiers only.
            raise StoreError(f"store schema must be a plain identifier other than 'public', got {schema!r}")
        self.schema = None if self.is_sqlite else schema
        if self.is_sqlite and self.url.database not in (None, "", ":memory:"):
            _prepare_sqlite_file(Path(self.url.database))
        connect_args = {"connect_timeout": 10} if self.url.get_backend_name() == "postgresql" else {}
        self.engine: Engine = create_engine(self.url, connect_args=connect_args).execution_options(
            schema_translate_map={None: self.schema}
        )

    @classmethod
    def from_settings(cls, settings) -> Store:
        if settings.get("store.url"):  # PostgreSQL (or another file): no connection-free staleness test
            return cls(settings.get("store.url"), settings.get("store.schema"))
        database = settings.path("state_db")
        snapshot = SnapshotWriter(database, int(settings.get("history.default_limit")))
        return cls(f"sqlite:///{database}", settings.get("store.schema"), snapshot)

    def describe(self) -> str:
        """The URL with any password hidden, for messages."""
        return self.url.render_as_string(hide_password=True)

    def close(self) -> None:
        self.engine.dispose()

    # --- migrations ----------------------------------------------------------

    def head_revision(self) -> str:
        return HEAD_REVISION

    def current_revision(self) -> str | None:
        """The revision the database is at; ``None`` when it was never migrated."""
        with self._connect() as connection:
            return self._revision(connection)

    def _revision(self, connection: Connection) -> str | None:
        try:
            # The translate map sends schema None to self.schema, as for every table of the store.
            versions = connection.scalars(select(_VERSIONS.c.version_num)).all()
        except SQLAlchemyError:
            # Every read and write runs this: one SELECT, and the catalogue only when it failed.
            connection.rollback()
            if inspect(connection).has_table(VERSION_TABLE, schema=self.schema):
                raise
            return None
        if len(versions) > 1:  # branched migrations: this library ships one line of them
            raise StoreError(f"state store {self.describe()} has several heads: {', '.join(sorted(versions))}")
        return versions[0] if versions else None

    def upgrade(self, revision: str = "head") -> None:
        from alembic import command  # alembic only to migrate: the other commands never load it

        self._run_alembic(command.upgrade, revision)
        self._wrote()

    def downgrade(self, revision: str) -> None:
        from alembic import command

        self._run_alembic(command.downgrade, revision)
        self._wrote()

    def require_migrated(self) -> None:
        with self._connect() as connection:
            self._require_migrated(connection)

    def _require_migrated(self, connection: Connection) -> None:
        current, head = self._revision(connection), self.head_revision()
        if current != head:
            state = "empty (never migrated)" if current is None else f"at revision {current}"
            raise StoreNotMigrated(
                f"state store {self.describe()} is {state}; this version needs {head}: run `wazo-ha db upgrade`"
            )

    def _run_alembic(self, action, revision: str) -> None:
        with self._connect() as connection:
            if self.schema:
                connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
                connection.commit()
            with connection.begin():
                action(self._alembic_config(connection), revision)

    def _alembic_config(self, connection):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes.update(connection=connection, schema=self.schema, version_table=VERSION_TABLE)
        return config

    # --- HA settings -------------------------------------------------------------

    def read_ha_settings(self) -> HASettings | None:
        query = select(HA_SETTINGS.c.node_type, HA_SETTINGS.c.remote_address).where(HA_SETTINGS.c.id == 1)
        with self._migrated() as connection:
            row = connection.execute(query).first()
        return None if row is None else HASettings(row.node_type, row.remote_address)

    def write_ha_settings(self, ha: HASettings, event: Event | None = None) -> None:
        """Replace the HA settings and append ``event``, in one transaction."""
        values = {"node_type": ha.node_type, "remote_address": ha.remote_address, "updated_at": _now()}
        with self._migrated() as connection:
            _upsert(connection, HA_SETTINGS, {"id": 1}, values)
            if event is not None:
                connection.execute(insert(EVENT).values(_event_values(event)))
        self._wrote()

    # --- journal -------------------------------------------------------------------

    def append_event(self, event: Event) -> None:
        with self._migrated() as connection:
            connection.execute(insert(EVENT).values(_event_values(event)))
        self._wrote()

    def events(self, kind: str | None = None, since: datetime | None = None, limit: int | None = 20) -> list[Event]:
        """Events newest first, optionally filtered by kind and start time."""
        query = select(EVENT).order_by(EVENT.c.started_at.desc(), EVENT.c.id.desc())
        if kind:
            query = query.where(EVENT.c.kind == kind)
        if since:
            query = query.where(EVENT.c.started_at >= since)
        if limit:
            query = query.limit(limit)
        with self._migrated() as connection:
            return [_event_from_row(row) for row in connection.execute(query)]

    def last_event(self, kinds: tuple[str, ...], outcomes: tuple[str, ...]) -> Event | None:
        """The newest event of one of ``kinds`` that ended with one of ``outcomes``."""
        query = (
            select(EVENT)
            .where(EVENT.c.kind.in_(kinds), EVENT.c.outcome.in_(outcomes))
            .order_by(EVENT.c.started_at.desc(), EVENT.c.id.desc())
            .limit(1)
        )
        with self._migrated() as connection:
            row = connection.execute(query).first()
        return None if row is None else _event_from_row(row)

    def count_events(self, kind: str, outcome: str) -> int:
        query = select(func.count()).select_from(EVENT).where(EVENT.c.kind == kind, EVENT.c.outcome == outcome)
        with self._migrated() as connection:
            return int(connection.scalar(query) or 0)

    # --- plugin state ------------------------------------------------------------------

    def plugin_state(self, owner: str) -> PluginState:
        return _StoredPluginState(self, owner)

    # --- plumbing -------------------------------------------------------------------------

    def _connect(self):
        try:
            return self.engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open state store {self.describe()}: {_first_line(exc)}") from None

    @contextlib.contextmanager
    def writes_batched(self):
        """Within it, the status snapshot is rewritten once, on exit, rather than after each write (a
        replication run writes its plugin's state several times, then its journal event: one rewrite, not
        six). Meanwhile the snapshot on disk is stale, its marker tells, and ``status`` reads the store."""
        if self._batching:  # nested: the outer one rewrites
            yield
            return
        self._batching, self._batched_write = True, False
        try:
            yield
        finally:
            self._batching = False
            if self._batched_write:
                self._wrote()

    def _wrote(self) -> None:
        if self._batching:
            self._batched_write = True
        elif self.snapshot is not None:
            self.snapshot.refresh(self)

    @contextlib.contextmanager
    def _migrated(self) -> Iterator[Connection]:
        """A connection to the store once its revision is checked, on that same connection (one checkout,
        one transaction on PostgreSQL). What the block wrote is committed when it ends without raising,
        rolled back otherwise. Rows are read into plain values before it ends: nothing stays bound to it."""
        with self._connect() as connection:
            self._require_migrated(connection)
            yield connection
            connection.commit()


class _StoredPluginState(PluginState):
    def __init__(self, store: Store, owner: str):
        self.store, self.owner = store, owner

    def _where(self, key: str):
        return PLUGIN_STATE.c.owner == self.owner, PLUGIN_STATE.c.key == key

    def get(self, key: str, default: Any = None) -> Any:
        with self.store._migrated() as connection:
            row = connection.execute(select(PLUGIN_STATE.c.value).where(*self._where(key))).first()
        return default if row is None else row.value

    def set(self, key: str, value: Any) -> None:
        with self.store._migrated() as connection:
            _upsert(connection, PLUGIN_STATE, {"owner": self.owner, "key": key}, {"value": value, "updated_at": _now()})
        self.store._wrote()

    def delete(self, key: str) -> None:
        with self.store._migrated() as connection:
            connection.execute(delete(PLUGIN_STATE).where(*self._where(key)))
        self.store._wrote()


def _upsert(connection: Connection, table: Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    """Update the row of primary key ``key`` with ``values``, or insert it when there is none."""
    where = [table.c[name] == value for name, value in key.items()]
    if not connection.execute(update(table).where(*where).values(values)).rowcount:
        connection.execute(insert(table).values({**key, **values}))


def _event_values(event: Event) -> dict[str, Any]:
    return {
        "kind": event.kind,
        "started_at": event.started_at,
        "ended_at": event.ended_at,
        "outcome": event.outcome,
        "message": event.message,
        "figures": event.figures,
    }


def _event_from_row(row: Row) -> Event:
    return Event(
        kind=row.kind,
        started_at=_aware(row.started_at),
        ended_at=_aware(row.ended_at),
        outcome=row.outcome,
        message=row.message,
        figures=row.figures or {},
        id=row.id,
    )


def _aware(moment: datetime | None) -> datetime | None:
    # SQLite hands timestamps back without their zone; we always store UTC.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def _now() -> datetime:
    return datetime.now(UTC)


def _first_line(exc: Exception) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__


def _prepare_sqlite_file(path: Path) -> None:
    # The store may hold plugin state an operator would not publish: keep it private.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
