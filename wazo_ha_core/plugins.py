"""Finding and building plugins with stevedore.

One :class:`PluginLoader` serves the six extension points. For each group it
loads exactly the plugins named in ``plugins.<group>``, in that order, checks
that each is a concrete subclass of the group's abstract class and builds it
with its :class:`~wazo_ha_core.extensions.PluginContext`. Anything wrong — a
name that is not installed, an import that fails, a class that breaks the
contract, a constructor that raises — becomes one
:class:`~wazo_ha_core.errors.PluginLoadError` naming the namespace, the plugin
and the cause.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import PluginLoadError
from .extensions import EXTENSION_POINTS, Plugin, PluginContext, PluginState
from .settings import PLUGIN_NAMESPACES, Settings

if TYPE_CHECKING:
    from stevedore import NamedExtensionManager

log = logging.getLogger(__name__)

#: Builds the stevedore manager for (namespace, names, on_load_failure,
#: on_missing); tests pass one made with ``NamedExtensionManager.make_test_instance``.
ManagerFactory = Callable[..., "NamedExtensionManager"]
StateFactory = Callable[[str], PluginState]


@dataclass
class PluginReport:
    """One line of ``wazo-ha plugins``: a plugin, whether it is enabled, and whether it loads."""

    group: str
    namespace: str
    name: str
    enabled: bool
    installed: bool
    error: str | None

    @property
    def ok(self) -> bool:
        return self.installed and self.error is None


class PluginLoader:
    def __init__(
        self,
        settings: Settings,
        state_factory: StateFactory,
        manager_factory: ManagerFactory | None = None,
        installed_names: Callable[[str], list[str]] | None = None,
    ):
        self.settings = settings
        self.state_factory = state_factory
        self.manager_factory = manager_factory or _stevedore_manager
        self.installed_names = installed_names or _installed_names

    def load(self, group: str) -> list[Plugin]:
        """Build every enabled plugin of ``group``, in configured order. Raises PluginLoadError."""
        names = self.settings.enabled_plugins(group)
        if not names:
            return []
        classes = self._classes(group, names)
        return [self._build(group, name, classes[name]) for name in names]

    def inventory(self) -> list[PluginReport]:
        """Every enabled or installed plugin of every group, with the reason any fails to load."""
        reports = []
        for group, namespace in PLUGIN_NAMESPACES.items():
            enabled = self.settings.enabled_plugins(group)
            installed = self.installed_names(namespace)
            for name in enabled + [n for n in installed if n not in enabled]:
                error = None
                try:
                    classes = self._classes(group, [name])
                    if name in enabled:
                        self._build(group, name, classes[name])
                except PluginLoadError as exc:
                    error = exc.cause
                reports.append(PluginReport(group, namespace, name, name in enabled, name in installed, error))
        return reports

    def _classes(self, group: str, names: list[str]) -> dict[str, type[Plugin]]:
        namespace = PLUGIN_NAMESPACES[group]
        failures: dict[str, str] = {}

        def on_load_failure(manager, entrypoint, exc):
            failures[entrypoint.name] = f"failed to import {entrypoint.value}: {type(exc).__name__}: {exc}"

        def on_missing(missing_names):
            for name in missing_names:
                failures.setdefault(name, "not installed (no such entry point)")

        manager = self.manager_factory(namespace, names, on_load_failure, on_missing)
        loaded = {extension.name: extension.plugin for extension in manager}
        for name in names:
            if name in failures:
                raise PluginLoadError(namespace, name, failures[name])
            if name not in loaded:
                raise PluginLoadError(namespace, name, "not installed (no such entry point)")
            _check_contract(group, namespace, name, loaded[name])
        return loaded

    def _build(self, group: str, name: str, plugin_class: type[Plugin]) -> Plugin:
        namespace = PLUGIN_NAMESPACES[group]
        context = PluginContext(
            name=name,
            namespace=namespace,
            config=self.settings.plugin_config(name),
            settings=self.settings,
            state=self.state_factory(f"{group}.{name}"),
            log=logging.getLogger(f"wazo_ha.plugin.{name}"),
        )
        try:
            return plugin_class(context)
        except Exception as exc:  # any constructor failure is a load failure of that plugin
            raise PluginLoadError(namespace, name, f"failed to start: {type(exc).__name__}: {exc}") from exc


def _check_contract(group: str, namespace: str, name: str, plugin_class: object) -> None:
    base = EXTENSION_POINTS[group]
    if not (inspect.isclass(plugin_class) and issubclass(plugin_class, base)):
        raise PluginLoadError(namespace, name, f"{_qualname(plugin_class)} is not a subclass of {base.__name__}")
    if inspect.isabstract(plugin_class):
        missing = ", ".join(sorted(plugin_class.__abstractmethods__))
        raise PluginLoadError(namespace, name, f"{_qualname(plugin_class)} does not implement {missing}")


def _qualname(obj: object) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"


def _installed_names(namespace: str) -> list[str]:
    from importlib.metadata import entry_points

    return sorted({entry_point.name for entry_point in entry_points(group=namespace)})


def _stevedore_manager(namespace, names, on_load_failure, on_missing) -> NamedExtensionManager:
    # stevedore (and its entry point scan) only when a command loads a plugin: not for --help, nor a
    # status on a node without service managers.
    from stevedore import NamedExtensionManager

    return NamedExtensionManager(
        namespace,
        names,
        invoke_on_load=False,
        name_order=True,
        on_load_failure_callback=on_load_failure,
        on_missing_entrypoints_callback=on_missing,
    )
