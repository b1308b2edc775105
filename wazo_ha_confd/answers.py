"""confd's error format: a JSON list of strings with the status code.

wazo-confd answers every error as a list of messages, e.g. ``400
["Input Error - node_type: ['Missing data for required field.']"]`` or ``500
["Unexpected error: ..."]``; API clients (wazo-ui) show those strings. The
library's own messages are kept word for word, only put in that shape.
"""

from __future__ import annotations

import logging

from wazo_ha_core.errors import EditError, ServingTelephony, ValidationError, WazoHAError

log = logging.getLogger(__name__)

#: Longest message returned; the library already truncates values, this bounds everything else.
MAX_MESSAGE = 1000


class ErrorAnswer(Exception):
    """An answer in confd's error format: ``status`` with the list ``messages``."""

    def __init__(self, status: int, messages: list[str]):
        super().__init__(status, messages)
        self.status = status
        self.messages = [_bounded(message) for message in messages]


class EditInProgress(ErrorAnswer):
    """A second edit while one runs: refused at once rather than queued behind it."""

    def __init__(self):
        super().__init__(
            409, ["Conflict: an HA settings edit is already in progress on this node; retry when it has finished"]
        )


def input_errors(exc: ValidationError) -> list[str]:
    """One ``Input Error - <field>: ['<message>']`` per bad field, as confd renders marshmallow's errors."""
    return [_bounded(f"Input Error - {field}: {[message]}") for field, message in exc.errors.items()]


def error_answer(exc: Exception) -> tuple[list[str], int]:
    """The (body, status) confd would send for ``exc``; logs what the operator needs."""
    if isinstance(exc, ErrorAnswer):
        return exc.messages, exc.status
    if isinstance(exc, ValidationError):
        return input_errors(exc), 400
    if isinstance(exc, ServingTelephony):
        # The node's state refuses the edit, not the body: give telephony back first (the CLI's --force).
        return [_bounded(f"Conflict: {exc}")], 409
    if isinstance(exc, EditError):
        # Already logged by the engine with the step's detail; the message says what was undone.
        return [_bounded(str(exc))], 500
    if isinstance(exc, WazoHAError):
        log.error("wazo-ha: %s", exc)
        return [_bounded(str(exc))], 500
    log.exception("unexpected error while serving /ha")
    return [_bounded(f"Unexpected error: {exc}")], 500


def _bounded(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."
