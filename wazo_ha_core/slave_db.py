"""Edit steps: the slave's configuration database opened to the master, and closed again.

Three steps, in this order (each undoes itself exactly):

* :class:`ReplicationPasswordStep` — on the master, the replication password
  file is generated (0600) when missing. It is kept on disable, so a node that
  is re-enabled keeps the password its peer knows.
* :class:`ReplicationRoleStep` — on the slave, the dedicated role (default
  ``wazo_ha_replication``) exists and can log in with that password; the
  server only ever sees a SCRAM-SHA-256 verifier. Leaving slave: its password
  is removed (the role cannot log in any more).
* :class:`SlaveDBAccessStep` — on the slave, a marked block in ``pg_hba.conf``
  lets the master's address (``/32`` or ``/128``) reach the configuration
  database as that role with ``scram-sha-256`` (never ``trust``) — over TLS
  only (``hostssl``) with ``slave_db.require_tls`` —, and an
  include file sets ``listen_addresses``; PostgreSQL is reloaded (``pg_hba``)
  or restarted (``listen_addresses``) with the commands from settings.
  Leaving slave: both removed, PostgreSQL reloaded/restarted.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from . import replication_password, setting_checks
from .config import HASettings
from .config_db import config_db_engine, database_error
from .edit import EditStep
from .errors import EditStepError
from .managed_files import ExactSnapshot, edit_marked_block, remove_file, replace_file
from .slave_db_tls import check_server_tls, hba_connection_type
from .step_commands import run_step_command

log = logging.getLogger(__name__)

BEGIN_MARK = "# BEGIN wazo-ha: managed by wazo-ha while this node is an HA slave; do not edit"
END_MARK = "# END wazo-ha"
HOW_TO_COPY = (
    "no replication password at {path}: on the master run `wazo-ha replication-password show`, "
    "and here `wazo-ha replication-password import` (it reads the password from stdin), then retry"
)


def _becomes_slave(before: HASettings, after: HASettings) -> bool:
    return after.node_type == "slave"


def _leaves_slave(before: HASettings, after: HASettings) -> bool:
    return before.node_type == "slave" and after.node_type != "slave"


class ReplicationPasswordStep(EditStep):
    """Master: make sure the replication password exists (generated once)."""

    name = "replication password"

    def __init__(self, settings):
        self.path = settings.path("replication_password")
        self.created = False

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.created = False
        if after.node_type == "master" and replication_password.read(self.path) is None:
            replication_password.write(self.path, replication_password.generate())
            self.created = True
            log.info("generated the replication password in %s (copy it to the slave)", self.path)

    def undo(self, before: HASettings, after: HASettings) -> None:
        if self.created:
            remove_file(self.path)


class ReplicationRoleStep(EditStep):
    """Slave: the replication role logs in with the shared password. Leaving slave: no password."""

    name = "replication role"

    def __init__(self, settings):
        self.settings = settings
        self.role = settings.get("slave_db.role")
        self.password_path = settings.path("replication_password")
        self.previous: tuple[bool, str | None] | None = None  # (existed, verifier) before apply

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.previous = None
        if not self.settings.get("slave_db.enabled"):
            log.info("replication role left alone (slave_db.enabled is false)")
            return
        if _becomes_slave(before, after):
            password = replication_password.read(self.password_path)
            if password is None:
                raise EditStepError(HOW_TO_COPY.format(path=self.password_path))
            self._set_password(password)
            if self.previous is not None:
                how = "created" if not self.previous[0] else "given the replication password"
                log.info("replication role %r %s (PostgreSQL role)", self.role, how)
        elif _leaves_slave(before, after):
            self._set_password(None)
            if self.previous is not None:
                log.info("replication role %r: password removed (it can no longer log in)", self.role)

    def undo(self, before: HASettings, after: HASettings) -> None:
        if self.previous is None:
            return
        existed, verifier = self.previous
        engine = config_db_engine(self.settings)
        try:
            with engine.begin() as connection:
                if not existed:
                    _drop_role(connection, self.role)
                else:
                    connection.execute(text(f'ALTER ROLE "{self.role}" PASSWORD :verifier'), {"verifier": verifier})
        finally:
            engine.dispose()

    def set_password(self, password: str) -> None:
        """Put a newly imported password on the role (``replication-password import`` on a slave)."""
        self._set_password(password)

    def _set_password(self, password: str | None) -> None:
        engine = config_db_engine(self.settings)
        try:
            with engine.begin() as connection:
                row = connection.execute(
                    text("SELECT rolpassword FROM pg_authid WHERE rolname = :role"), {"role": self.role}
                ).first()
                existed, current = (row is not None), (row[0] if row else None)
                if password is None:
                    if existed and current is not None:
                        connection.execute(text(f'ALTER ROLE "{self.role}" PASSWORD NULL'))
                        self.previous = (existed, current)
                    return
                if existed and replication_password.verifier_matches(current, password):
                    return  # already right: change nothing
                verifier = replication_password.scram_verifier(password)
                if not existed:
                    _create_role(connection, self.role, verifier, self.settings.get("slave_db.grant_roles"))
                else:
                    connection.execute(text(f'ALTER ROLE "{self.role}" PASSWORD :verifier'), {"verifier": verifier})
                self.previous = (existed, current)
        except SQLAlchemyError as exc:
            self.previous = None
            raise database_error(engine, f"cannot set up the replication role {self.role!r}", exc) from None
        finally:
            engine.dispose()


def _create_role(connection, role: str, verifier: str, grant_roles: list[str]) -> None:
    connection.execute(text(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER PASSWORD :verifier'), {"verifier": verifier})
    for granted in grant_roles:
        problem = setting_checks.sql_name_problem(granted)  # checked at load time too
        if problem:
            raise EditStepError(f"slave_db.grant_roles: {problem}")
        connection.execute(text(f'GRANT "{granted}" TO "{role}"'))
    # A data-only copy loads tables of a foreign-key cycle with triggers off:
    # PostgreSQL 15 lets a non-superuser do that once granted this parameter.
    if connection.dialect.server_version_info >= (15,):
        connection.execute(text(f'GRANT SET ON PARAMETER session_replication_role TO "{role}"'))


def _drop_role(connection, role: str) -> None:
    if connection.dialect.server_version_info >= (15,):
        connection.execute(text(f'REVOKE SET ON PARAMETER session_replication_role FROM "{role}"'))
    connection.execute(text(f'DROP ROLE IF EXISTS "{role}"'))


class SlaveDBAccessStep(EditStep):
    """Slave: ``pg_hba.conf`` block + ``listen_addresses``; PostgreSQL reloaded/restarted."""

    name = "slave database access"

    def __init__(self, settings):
        self.settings = settings
        self.hba = settings.path("pg_hba")
        self.listen = settings.path("pg_listen_conf")
        self.snapshots: list[ExactSnapshot] = []
        self.reloaded, self.restarted = False, False

    def apply(self, before: HASettings, after: HASettings) -> None:
        self.snapshots, self.reloaded, self.restarted = [], False, False
        if not self.settings.get("slave_db.enabled"):
            log.info("slave database access left alone (slave_db.enabled is false)")
            return
        if not (_becomes_slave(before, after) or _leaves_slave(before, after)):
            return
        if not self.hba.exists():
            raise EditStepError(f"PostgreSQL's pg_hba.conf not found at {self.hba}: set paths.pg_hba")
        if after.node_type == "slave":
            check_server_tls(self.settings)  # slave_db.require_tls on a server without TLS: refused
        snapshots = [ExactSnapshot.take(self.hba), ExactSnapshot.take(self.listen)]
        try:
            if after.node_type == "slave":
                hba_changed = self._write_hba(self.hba_lines(after.remote_address))
                listen_changed = self._write_listen(self.listen_addresses(after.remote_address))
            else:
                hba_changed = self._write_hba(None)
                listen_changed = remove_file(self.listen)
            self.snapshots = snapshots
            self.reloaded, self.restarted = hba_changed and not listen_changed, listen_changed
            self._run_postgresql_command(self.reloaded, self.restarted)
            self._log_changes(after, hba_changed, listen_changed)
        except Exception:
            for snapshot in snapshots:
                snapshot.restore()
            if self.snapshots:
                self._quietly_apply_old_files()
            self.snapshots = []
            raise

    def undo(self, before: HASettings, after: HASettings) -> None:
        for snapshot in self.snapshots:
            snapshot.restore()
        self._run_postgresql_command(self.reloaded, self.restarted)

    def _log_changes(self, after: HASettings, hba_changed: bool, listen_changed: bool) -> None:
        if not (hba_changed or listen_changed):
            return
        if after.node_type == "slave":
            files = f"{self.hba} lets {after.remote_address} replicate, {self.listen} sets listen_addresses"
        else:
            files = f"{self.hba} block and {self.listen} removed"
        action = "restarted" if self.restarted else "reloaded" if self.reloaded else "left running"
        log.info("slave database access: %s; PostgreSQL %s", files, action)

    def _quietly_apply_old_files(self) -> None:
        try:
            self._run_postgresql_command(self.reloaded, self.restarted)
        except Exception as exc:  # the original error matters more
            log.error("could not make PostgreSQL re-read its restored configuration: %s", exc)

    # --- content -------------------------------------------------------------------

    def hba_block(self, master: str) -> str:
        return "".join(line + "\n" for line in (BEGIN_MARK, *self.hba_lines(master), END_MARK))

    def hba_lines(self, master: str) -> list[str]:
        """The block's rule lines (without markers or line endings)."""
        address = ipaddress.ip_address(master.split("%", 1)[0])  # pg_hba takes no IPv6 zone
        prefix = 32 if address.version == 4 else 128
        database, role = self.settings.get("slave_db.database"), self.settings.get("slave_db.role")
        # Checked when the settings were loaded; checked again here, where the names reach pg_hba.conf.
        for key, value in (("slave_db.database", database), ("slave_db.role", role)):
            problem = setting_checks.sql_name_problem(value)
            if problem:
                raise EditStepError(f"{key}: {problem}")
        kind = hba_connection_type(self.settings)  # hostssl with slave_db.require_tls
        line = f"{kind}    {_hba_word(database)}    {role}    {address}/{prefix}    scram-sha-256"
        return [line]

    def listen_addresses(self, master: str) -> list[str]:
        configured = self.settings.get("slave_db.listen_addresses")
        if configured:
            return list(configured)
        return ["localhost", address_towards(master)]

    def _write_hba(self, lines: list[str] | None) -> bool:
        """Put our block first (``lines``) or take it out (``None``); the rest of the file stays byte for byte.

        A symlinked ``pg_hba.conf`` stays a link: the file it points to is rewritten.
        """
        stat = self.hba.stat()
        current = self.hba.read_bytes()
        # First match wins in pg_hba.conf: the block goes first so no earlier line shadows it.
        content = edit_marked_block(self.hba, current, BEGIN_MARK, END_MARK, lines)
        return replace_file(self.hba, content, stat.st_mode & 0o7777, follow_symlink=True)

    def _write_listen(self, addresses: list[str]) -> bool:
        for address in addresses:
            if not address or any(c in address for c in "',\\\n"):
                raise EditStepError(f"slave_db.listen_addresses: not an address: {address!r}")
        body = (
            "# Written by wazo-ha while this node is an HA slave: the master replicates into this server.\n"
            f"listen_addresses = '{','.join(addresses)}'\n"
        )
        return replace_file(self.listen, body.encode(), 0o644)

    def _run_postgresql_command(self, reload: bool, restart: bool) -> None:
        if restart:
            run_command(self.settings, "slave_db.restart_command")
        elif reload:
            run_command(self.settings, "slave_db.reload_command")


def _hba_word(word: str) -> str:
    return word if word.replace("_", "").isalnum() else '"' + word.replace('"', "") + '"'


def address_towards(peer: str) -> str:
    """This node's source address on the route to ``peer`` (a UDP connect sends no packet)."""
    family = socket.AF_INET6 if ":" in peer else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((peer, 5432))
            return probe.getsockname()[0].split("%", 1)[0]
    except OSError as exc:
        raise EditStepError(
            f"cannot tell this node's address towards the master {peer} ({exc.strerror}): set slave_db.listen_addresses"
        ) from None


def run_command(settings, key: str) -> None:
    run_step_command(list(settings.get(key)), key, float(settings.get("timeouts.command")))


def import_password(settings, ha: HASettings, password: str) -> bool:
    """Store the password copied from the master; on a slave, put it on the role at once.

    Returns whether the role was updated. The file is written only once the
    role accepted the password, so a failure leaves both as they were.
    """
    replication_password.check(password)
    path = settings.path("replication_password")
    role_updated = False
    if ha.node_type == "slave" and settings.get("slave_db.enabled"):
        ReplicationRoleStep(settings).set_password(password)
        role_updated = True
    replication_password.write(path, password)
    return role_updated
