"""What the resources do, without HTTP: read, edit (one at a time) and report status.

The engine is built on first use, not at plugin load, so that a broken
``/etc/wazo-ha/config.yml`` gives every request the library's message (and is
retried on the next one) instead of a ``/ha`` that silently does not exist.

An edit runs in the request's own thread and holds the worker exactly as long
as the edit takes. A second edit while one runs is refused at once with
:class:`~wazo_ha_confd.answers.EditInProgress` (409) instead of piling workers
up behind a PostgreSQL restart, whether it comes through confd or from another
process (``wazo-ha config set`` holds the engine's edit lock too); reads are
never blocked by an edit.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from wazo_ha_core.engine import EditListener, HAEngine
from wazo_ha_core.errors import AlreadyRunning

from .answers import EditInProgress


class HAService:
    def __init__(self, engine_factory: Callable[[], HAEngine], on_edited: EditListener):
        self._engine_factory = engine_factory
        self._on_edited = on_edited
        self._engine: HAEngine | None = None
        self._engine_lock = threading.Lock()
        self._edit_lock = threading.Lock()

    def engine(self) -> HAEngine:
        with self._engine_lock:
            if self._engine is None:
                engine = self._engine_factory()
                engine.edit_listeners.append(self._on_edited)
                self._engine = engine
            return self._engine

    def get(self) -> dict[str, str]:
        """``{"node_type": …, "remote_address": …}`` as confd's ``GET /ha`` returns it."""
        return self.engine().get_ha()

    def edit(self, body: Any) -> None:
        """Validate and apply ``body``; raises EditInProgress, ValidationError or EditError."""
        engine = self.engine()
        if not self._edit_lock.acquire(blocking=False):
            raise EditInProgress()
        try:
            engine.update_ha(body)
        except AlreadyRunning:  # an edit from another process (the CLI) holds the node's edit lock
            raise EditInProgress() from None
        finally:
            self._edit_lock.release()

    def status(self) -> dict[str, Any]:
        """The same document as ``wazo-ha status --json``."""
        return self.engine().status()

    def close(self) -> None:
        with self._engine_lock:
            if self._engine is not None:
                self._engine.store.close()
                self._engine = None
