"""Building a plugin the way the engine does: through stevedore, from settings."""

from __future__ import annotations

from typing import Any

from wazo_ha_core.extensions import PluginState
from wazo_ha_core.plugins import PluginLoader
from wazo_ha_core.settings import Settings


class MemoryState(PluginState):
    """Plugin state kept in a dict (the store's own tests cover the persistent one)."""

    def __init__(self):
        self.values: dict[str, Any] = {}

    def get(self, key, default=None):
        return self.values.get(key, default)

    def set(self, key, value):
        self.values[key] = value

    def delete(self, key):
        self.values.pop(key, None)


def load_plugin(group: str, name: str, config: dict | None = None, **settings_tree):
    """Load the installed plugin ``name`` of ``group`` with ``plugin_config.<name> = config``."""
    tree = {"plugins": {group: [name]}, "plugin_config": {name: config or {}}, **settings_tree}
    states: dict[str, MemoryState] = {}
    loader = PluginLoader(Settings.from_tree(tree), lambda owner: states.setdefault(owner, MemoryState()))
    return loader.load(group)[0]
