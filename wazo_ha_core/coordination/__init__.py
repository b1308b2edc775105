"""Coordinated mode: the leader-lock rules (a pure state machine, :mod:`.leader`).

Not wired into the watch or the services yet; see ``docs/coordination.rst``.
"""

from .leader import Action, Decision, Grant, GuardConfig, LeaderGuard

__all__ = ["Action", "Decision", "Grant", "GuardConfig", "LeaderGuard"]
