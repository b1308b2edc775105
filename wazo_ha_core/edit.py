"""An HA settings edit as a transaction of steps, each able to undo itself.

Each :class:`EditStep` applies one side effect of an edit (the provisioner,
the compatibility files, the store...). :func:`run_steps` applies them in
order; when one raises, the steps already applied are undone in reverse and
:class:`~wazo_ha_core.errors.EditError` names the failing step.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Sequence

from .config import HASettings
from .errors import EditError
from .logs import REPORTED

log = logging.getLogger(__name__)


class EditStep(abc.ABC):
    """One side effect of going from settings ``before`` to ``after``."""

    #: Shown in errors and the journal.
    name: str = "step"

    @abc.abstractmethod
    def apply(self, before: HASettings, after: HASettings) -> None:
        """Do the change. May raise anything; the edit is then rolled back."""

    @abc.abstractmethod
    def undo(self, before: HASettings, after: HASettings) -> None:
        """Put back what :meth:`apply` changed. Called only after apply returned."""


def run_steps(steps: Sequence[EditStep], before: HASettings, after: HASettings) -> list[str]:
    """Apply every step or none; return the names of the steps applied."""
    done: list[EditStep] = []
    for step in steps:
        try:
            step.apply(before, after)
        except Exception as exc:
            log.error(
                "HA edit step %r failed: %s; undoing %d earlier step(s)", step.name, exc, len(done), extra=REPORTED
            )
            raise EditError(step.name, exc, _undo(done, before, after)) from exc
        done.append(step)
    return [step.name for step in done]


def _undo(done: list[EditStep], before: HASettings, after: HASettings) -> list[str]:
    failures = []
    for step in reversed(done):
        try:
            step.undo(before, after)
            log.info("HA edit step %r undone", step.name)
        except Exception:
            log.exception("undo of HA edit step %r failed", step.name)
            failures.append(step.name)
    return failures
