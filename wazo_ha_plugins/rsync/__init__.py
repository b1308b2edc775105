"""The ``rsync`` file-sync plugin (namespace ``wazo_ha.file_sync``)."""

from .plugin import RsyncBackend

__all__ = ["RsyncBackend"]
