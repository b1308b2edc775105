"""Edit step: SIP registration expiry values while HA is enabled, and back.

Wazo's HA documentation promises minimum 180 s, default 240 s and maximum
300 s on both nodes (phones re-register often enough to find the slave), and
the previous values once HA is disabled. Since PJSIP they are options of the
``aor`` section of each tenant's global SIP template, key/value rows in the
configuration database::

    tenant.global_sip_template_uuid → endpoint_sip (template)
      → endpoint_sip_section (type 'aor') → endpoint_sip_section_option (key, value)

The rows as they were before HA (values, or their absence, the ``aor``
section itself when there was none) are remembered in the state store the
first time, and put back exactly on disable: values restored, rows and
sections we created deleted. All database changes of one call are one
transaction. Asterisk reads them when its PJSIP configuration is reloaded
(wazo-confd does that on ``ha_edited``; see docs/enabling.rst).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from .config import HASettings
from .config_db import config_db_engine, database_error
from .edit import EditStep

log = logging.getLogger(__name__)

KEYS = ("minimum_expiration", "default_expiration", "maximum_expiration")
STATE_KEY = "previous"

# A snapshot: template uuid → {"section": uuid | None, "created": bool,
#                              "options": {key: [[row uuid, value], ...]}}
Snapshot = dict[str, dict[str, Any]]


def wanted_values(settings) -> dict[str, str]:
    return {
        "minimum_expiration": str(int(settings.get("sip_expiry.minimum"))),
        "default_expiration": str(int(settings.get("sip_expiry.default"))),
        "maximum_expiration": str(int(settings.get("sip_expiry.maximum"))),
    }


class SipExpiryStep(EditStep):
    """Enabled (master or slave) → the HA values; disabled → the remembered values."""

    name = "SIP registration expiry"

    def __init__(self, settings, state):
        self.settings = settings
        self.state = state  # PluginState in the store: the values before HA
        self.undo_snapshot: Snapshot | None = None
        self.undo_state: Any = None

    def apply(self, before: HASettings, after: HASettings) -> None:
        if not self.settings.get("sip_expiry.enabled"):
            log.info("SIP registration expiry left alone (sip_expiry.enabled is false)")
            return
        if not after.enabled and not self.state.get(STATE_KEY):
            return  # nothing remembered: nothing to put back (and no database needed)
        engine = config_db_engine(self.settings)
        remembered = self.state.get(STATE_KEY) or None
        wrote_state = False
        try:
            with engine.begin() as connection:
                templates = _global_templates(connection)
                current = _snapshot(connection, sorted(set(templates) | set(remembered or {})))
                if after.enabled:
                    # First time only: a template already remembered keeps its pre-HA values.
                    new_state = {**{t: current[t] for t in templates}, **(remembered or {})} or None
                    changed = _set_values(connection, templates, wanted_values(self.settings))
                else:
                    new_state = None
                    changed = _restore(connection, remembered or {})
                if new_state != remembered:
                    # Durable before the commit: a crash after it still knows the old values.
                    self._remember(new_state)
                    wrote_state = True
        except SQLAlchemyError as exc:
            if wrote_state:
                self._remember(remembered)
            raise database_error(engine, "cannot set the SIP registration expiry", exc) from None
        finally:
            engine.dispose()
        self.undo_snapshot, self.undo_state = current, remembered
        if changed:
            what = "set to the HA values" if after.enabled else "put back to the values before HA"
            log.info("SIP registration expiry: %d row(s) of the configuration database %s", changed, what)

    def undo(self, before: HASettings, after: HASettings) -> None:
        if self.undo_snapshot is None:
            return
        engine = config_db_engine(self.settings)
        try:
            with engine.begin() as connection:
                _restore(connection, self.undo_snapshot)
            self._remember(self.undo_state)
        finally:
            engine.dispose()

    def _remember(self, value) -> None:
        if value:
            self.state.set(STATE_KEY, value)
        else:
            self.state.delete(STATE_KEY)


def _global_templates(connection) -> list[str]:
    rows = connection.execute(
        text(
            "SELECT DISTINCT CAST(t.global_sip_template_uuid AS text) FROM tenant t "
            "JOIN endpoint_sip e ON e.uuid = t.global_sip_template_uuid "
            "WHERE t.global_sip_template_uuid IS NOT NULL"
        )
    )
    return sorted(row[0] for row in rows)


def _aor_section(connection, template: str) -> str | None:
    return connection.execute(
        text(
            "SELECT CAST(uuid AS text) FROM endpoint_sip_section "
            "WHERE endpoint_sip_uuid = CAST(:template AS uuid) AND type = 'aor'"
        ),
        {"template": template},
    ).scalar()


def _snapshot(connection, templates: list[str]) -> Snapshot:
    snapshot: Snapshot = {}
    for template in templates:
        section = _aor_section(connection, template)
        options: dict[str, list[list[str]]] = {key: [] for key in KEYS}
        if section:
            rows = connection.execute(
                text(
                    "SELECT CAST(uuid AS text), key, value FROM endpoint_sip_section_option "
                    "WHERE endpoint_sip_section_uuid = CAST(:section AS uuid) AND key = ANY(:keys) ORDER BY uuid"
                ),
                {"section": section, "keys": list(KEYS)},
            )
            for row_uuid, key, value in rows:
                options[key].append([row_uuid, value])
        snapshot[template] = {"section": section, "options": options}
    return snapshot


def _set_values(connection, templates: list[str], values: dict[str, str]) -> int:
    changed = 0
    for template in templates:
        section = _aor_section(connection, template)
        if section is None:
            section = str(uuid.uuid4())
            connection.execute(
                text(
                    "INSERT INTO endpoint_sip_section (uuid, type, endpoint_sip_uuid) "
                    "VALUES (CAST(:uuid AS uuid), 'aor', CAST(:template AS uuid))"
                ),
                {"uuid": section, "template": template},
            )
            changed += 1
        for key, value in values.items():
            updated = connection.execute(
                text(
                    "UPDATE endpoint_sip_section_option SET value = :value "
                    "WHERE endpoint_sip_section_uuid = CAST(:section AS uuid) AND key = :key AND value <> :value"
                ),
                {"section": section, "key": key, "value": value},
            ).rowcount
            present = connection.execute(
                text(
                    "SELECT count(*) FROM endpoint_sip_section_option "
                    "WHERE endpoint_sip_section_uuid = CAST(:section AS uuid) AND key = :key"
                ),
                {"section": section, "key": key},
            ).scalar()
            if not present:
                _insert_option(connection, str(uuid.uuid4()), section, key, value)
                updated += 1
            changed += updated
    return changed


def _insert_option(connection, row_uuid: str, section: str, key: str, value: str) -> None:
    connection.execute(
        text(
            "INSERT INTO endpoint_sip_section_option (uuid, key, value, endpoint_sip_section_uuid) "
            "VALUES (CAST(:uuid AS uuid), :key, :value, CAST(:section AS uuid))"
        ),
        {"uuid": row_uuid, "key": key, "value": value, "section": section},
    )


def _restore(connection, snapshot: Snapshot) -> int:
    """Make the expiry rows of each template exactly as in ``snapshot``; return rows changed."""
    changed = 0
    for template, was in snapshot.items():
        exists = connection.execute(
            text("SELECT 1 FROM endpoint_sip WHERE uuid = CAST(:template AS uuid)"), {"template": template}
        ).scalar()
        if not exists:
            continue  # the template (and its sections) is gone: nothing to put back
        section = _aor_section(connection, template)
        if section is None:
            if was["section"] is None:
                continue
            connection.execute(
                text(
                    "INSERT INTO endpoint_sip_section (uuid, type, endpoint_sip_uuid) "
                    "VALUES (CAST(:uuid AS uuid), 'aor', CAST(:template AS uuid))"
                ),
                {"uuid": was["section"], "template": template},
            )
            section = was["section"]
            changed += 1
        for key in KEYS:
            rows = dict(was["options"].get(key, []))
            result = connection.execute(
                text(
                    "DELETE FROM endpoint_sip_section_option WHERE endpoint_sip_section_uuid = CAST(:section AS uuid) "
                    "AND key = :key AND NOT (CAST(uuid AS text) = ANY(CAST(:keep AS text[])))"
                ),
                {"section": section, "key": key, "keep": list(rows)},
            )
            changed += result.rowcount
            for row_uuid, value in rows.items():
                updated = connection.execute(
                    text(
                        "UPDATE endpoint_sip_section_option SET value = :value "
                        "WHERE uuid = CAST(:uuid AS uuid) AND value <> :value"
                    ),
                    {"uuid": row_uuid, "value": value},
                ).rowcount
                found = connection.execute(
                    text("SELECT 1 FROM endpoint_sip_section_option WHERE uuid = CAST(:uuid AS uuid)"),
                    {"uuid": row_uuid},
                ).scalar()
                if not found:
                    _insert_option(connection, row_uuid, section, key, value)
                    updated = 1
                changed += updated
        if was["section"] is None:
            # We created the section: remove it unless someone has put other options in it since.
            others = connection.execute(
                text(
                    "SELECT count(*) FROM endpoint_sip_section_option "
                    "WHERE endpoint_sip_section_uuid = CAST(:s AS uuid)"
                ),
                {"s": section},
            ).scalar()
            if not others:
                connection.execute(
                    text("DELETE FROM endpoint_sip_section WHERE uuid = CAST(:s AS uuid)"), {"s": section}
                )
                changed += 1
    return changed
