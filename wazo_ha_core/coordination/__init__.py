"""Coordinated mode (``docs/coordination.rst``): one etcd lock decides which node serves.

* :mod:`.leader` — the lock rules (pure): acquire, renew, self-fence, tokens;
* :mod:`.node` — a node's rules (pure): preferred node, standby ranks, failback;
* :mod:`.driver` — the lease keeper thread beside ``wazo-ha watch`` (I/O);
* :mod:`.config`, :mod:`.status`, :mod:`.doctor` — settings, ``status``, ``doctor``.
"""

from .leader import Action, Decision, Grant, GuardConfig, LeaderGuard

__all__ = ["Action", "Decision", "Grant", "GuardConfig", "LeaderGuard"]
