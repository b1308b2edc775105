"""The ``none`` coordinator: no backend, two nodes as before (the default).

Every acquisition is granted and every renewal succeeds, so the leader-lock
rules never stop or start anything on their own: the watch alone decides, as
it did before coordinated mode existed. It gives no guarantee against two
active nodes (a witness only lowers that risk); see docs/coordination.rst.
"""

from __future__ import annotations

import itertools

from wazo_ha_core import Coordinator, Lease, LockHolder


class NoCoordinator(Coordinator):
    coordinated = False

    def __init__(self, context):
        super().__init__(context)
        self._tokens = itertools.count(1)
        self._held: Lease | None = None

    def acquire(self, node: str, ttl: float) -> Lease | None:
        self._held = Lease(node=node, token=next(self._tokens), ttl=ttl)
        return self._held

    def renew(self, lease: Lease) -> bool:
        return True

    def release(self, lease: Lease) -> None:
        if self._held == lease:
            self._held = None

    def holder(self) -> LockHolder | None:
        return None if self._held is None else LockHolder(self._held.node, self._held.token, None)
