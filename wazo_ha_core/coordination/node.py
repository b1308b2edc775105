"""One node in coordinated mode: the watch's verdicts and the leader lock, together (pure, no I/O, no clock).

:class:`CoordinatedNode` sits between :class:`~wazo_ha_core.watch.Watch` and
:class:`~.leader.LeaderGuard`. The watch still judges the probes (fall, rise,
witnesses, stability window, pause); the guard alone decides when telephony
may run. The driver (:mod:`wazo_ha_core.coordination.driver`) feeds each
watch decision to :meth:`CoordinatedNode.watched` and acts on
:meth:`CoordinatedNode.step`, exactly as :mod:`.leader` describes.

The rules added here:

* **The preferred node** (rank 0, today's master) asks for the lock whenever
  it does not hold it: the lock is the only truth it needs (a node that
  served before it stopped before its lease could expire).
* **A standby** (rank 1, 2, …) asks for the lock only while its watch says
  the active node is gone (the watch asked to take over: ``fall`` failed
  rounds, witnesses agreeing, not paused), and a standby of rank ``r`` only
  after that has lasted ``(r - 1) x standby_delay`` seconds *with the lock
  free* (:meth:`CoordinatedNode.held_elsewhere`), so that the first standby
  wins when it can and a lock released at failback goes to the preferred
  node. A good round, a paused watch or an unknown verdict withdraw the
  request.
* **Failback**: when the watch of a serving standby asks to give back (the
  preferred node's host answered ``rise`` rounds and ``stability`` seconds),
  the standby stops its telephony, then releases the lock; the preferred node
  acquires it at its next step and starts. While a standby serves, the watch
  judges the preferred node by its host probes only
  (:func:`failback_observations`): the preferred node cannot answer SIP
  without the lock, so waiting for its service would never end.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..watch import HOST, Observation, RoundVerdict
from ..watch import Action as WatchAction
from .leader import Action, Decision, LeaderGuard


class CoordinatedNode:
    """The guard plus the watch's wish. Not thread-safe: the driver serialises calls."""

    def __init__(self, guard: LeaderGuard, *, rank: int = 0, standby_delay: float = 0.0):
        if rank < 0 or standby_delay < 0:
            raise ValueError(f"rank and standby_delay must be >= 0, got {rank}, {standby_delay}")
        self.guard = guard
        self.rank = rank
        self.standby_delay = standby_delay
        self.down_since: float | None = None  # since when the watch says the active node is gone
        self.resigning = False  # giving the lock back to the preferred node (failback)
        self._first_step = True

    @property
    def preferred(self) -> bool:
        return self.rank == 0

    def watched(self, now: float, action: WatchAction, verdict: RoundVerdict | None) -> None:
        """What the watch decided this round (after the witnesses, if any)."""
        if action is WatchAction.TAKE_OVER:
            if self.down_since is None:
                self.down_since = now
        else:
            self.down_since = None
        if action is WatchAction.GIVE_BACK and not self.preferred:
            self.resigning = True

    def held_elsewhere(self, now: float) -> None:
        """The lock is held by another node at ``now`` (or the backend could not say): restart the rank delay.

        A standby of rank ``r`` thus takes a lock only after it has been free for
        ``(r - 1) x standby_delay`` seconds while its watch says the active node is
        gone, so the lock a standby gives back at failback goes to the preferred
        node, not to the next standby, whose watch still sees no master serving.
        """
        if self.down_since is not None:
            self.down_since = now

    def wants_holder(self) -> bool:
        """Whether the driver should read the lock's holder before this step (a standby waiting its delay)."""
        return not self.preferred and self.rank > 1 and self.down_since is not None and self.guard.token is None

    def others_serving(self, now: float) -> bool | None:
        """The guard's input: ``False`` lets it acquire; ``True``/``None`` never do."""
        if self.resigning:
            return True
        if self.preferred:
            return False
        if self.down_since is None:
            return None
        return now - self.down_since < (self.rank - 1) * self.standby_delay

    def step(self, now: float) -> Decision:
        """What to do at ``now``. Giving back comes first: stop, then release, then the guard's own rules."""
        guard = self.guard
        if self._first_step:
            self._first_step = False
            if self.preferred and guard.serving and guard.token is None:
                # Already serving when the watch starts (a master at boot): keep serving if the lock is free,
                # rather than stop first; if another node holds it, the guard's next step stops this one.
                return Decision(Action.ACQUIRE, "serving at start-up: keeps serving only with the lock")
        if self.resigning:
            if guard.serving:
                return Decision(Action.STOP, "failback: giving telephony back to the preferred node")
            if guard.token is not None:
                return Decision(Action.RELEASE, "failback: releasing the lock for the preferred node", guard.token)
            self.resigning = False
        return guard.step(now, self.others_serving(now))


def failback_observations(observations: Sequence[Observation]) -> list[Observation]:
    """While a standby serves: judge the preferred node by its host probes (all of them if there is none)."""
    hosts = [observation for observation in observations if observation.checks == HOST]
    return hosts or list(observations)
