"""The context-manager shape shared by the rigs: ``with Rig(...) as rig`` starts it and always cleans up."""

from __future__ import annotations

from typing import Self


class StartStop:
    """``__enter__`` runs :meth:`start` and, if it fails half-way, :meth:`close` before re-raising (a rig
    started in part still holds namespaces, routes or processes); ``__exit__`` runs :meth:`close`."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()
