"""The plugin manager: built-in plugins first, then installed ones from entry points; and the one
way the runner calls the registration hooks."""
from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points
from typing import Any, Callable

import pluggy

from modelzoo import hookspecs
from modelzoo.errors import PluginError

# Internal plugins, registered exactly like external ones.
BUILTIN_PLUGINS = (
    "modelzoo.backends.onnxruntime",
    "modelzoo.backends.openvino",
    "modelzoo.backends.torch",
    "modelzoo.backends.ascend.backend",
)

# Set to "0" to skip installed (entry point) plugins, e.g. in tests that register their own.
LOAD_ENTRYPOINTS_ENV = "MODELZOO_LOAD_ENTRYPOINTS"
# Comma-separated plugin names (entry point names, or built-in module names) never to load:
# one broken installed plugin must not take every command down with it.
DISABLE_ENV = "MODELZOO_DISABLE_PLUGINS"


def disabled_plugins() -> set[str]:
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def disable_hint(name: str) -> str:
    return f"fix it, or skip it with --disable-plugin {name} or {DISABLE_ENV}={name}"


def get_plugin_manager(load_entrypoints: bool | None = None,
                       broken: list[PluginError] | None = None) -> pluggy.PluginManager:
    """A plugin manager with the built-in plugins and, unless switched off, installed ones.

    Disabled plugins are blocked (pluggy's `set_blocked`), so they never load. A plugin that fails
    to load or does not match the hook specifications raises PluginError; with `broken` given it is
    blocked too and its PluginError recorded there instead.
    """
    if load_entrypoints is None:
        load_entrypoints = os.environ.get(LOAD_ENTRYPOINTS_ENV, "1") != "0"
    pm = pluggy.PluginManager("modelzoo")
    pm.add_hookspecs(hookspecs)
    for name in disabled_plugins():
        pm.set_blocked(name)
    for name in BUILTIN_PLUGINS:
        _register(pm, name, lambda name=name: importlib.import_module(name), name, broken)
    if load_entrypoints:
        for entry_point in entry_points(group="modelzoo"):
            if pm.get_plugin(entry_point.name) is None:
                _register(pm, entry_point.name, entry_point.load, f"installed plugin '{entry_point.name}' "
                          f"({entry_point.value})", broken)
    return pm


def _register(pm: pluggy.PluginManager, name: str, load, what: str, broken: list[PluginError] | None) -> None:
    if pm.is_blocked(name):
        return
    try:
        try:
            plugin = load()
        except Exception as exc:
            raise PluginError(f"{what} failed to load: {type(exc).__name__}: {exc}; {disable_hint(name)}",
                              name) from exc
        if pm.is_registered(plugin):
            return
        try:
            pm.register(plugin, name=name)
            # A misspelled hook name fails here instead of being silently never called.
            pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if pm.is_registered(plugin):
                pm.unregister(plugin)
            reason = " ".join(str(exc).split())  # pluggy's message spans lines
            raise PluginError(f"{what} does not match the hook specifications: {reason}; "
                              f"{disable_hint(name)}", name) from exc
    except PluginError as exc:
        if broken is None:
            raise
        pm.set_blocked(name)
        broken.append(exc)


def call_registration(pm: pluggy.PluginManager, hook_name: str, check: Callable[[Any], None],
                      broken: list[PluginError] | None = None,
                      passthrough: tuple[type[Exception], ...] = ()) -> list[tuple[str, list]]:
    """What each plugin registers through the hook `hook_name`: (plugin name, objects) per plugin,
    in pluggy's call order, each object passed to `check` as it is registered.

    The hook runs through pluggy (hookwrappers included) once per implementing plugin, with the
    others left out (`subset_hook_caller`): pluggy does not say which implementation raised, and
    a plugin that raises must be named. Its exception (an invalid manifest's UserError too: the
    plugin ships it) becomes a PluginError naming it, except `passthrough` ones; with `broken` given the plugin is blocked, its error recorded there, and
    the other plugins still register.
    """
    impls = [impl for impl in getattr(pm.hook, hook_name).get_hookimpls()
             if not (impl.wrapper or impl.hookwrapper)]
    collected = []
    for impl in reversed(impls):  # pluggy's own order: last registered first
        call = pm.subset_hook_caller(hook_name, remove_plugins=[i.plugin for i in impls if i is not impl])
        objects: list = []

        def register(obj: Any) -> None:
            check(obj)
            objects.append(obj)

        try:
            call(register=register)
        except passthrough:
            raise
        except Exception as exc:
            error = PluginError(f"plugin '{impl.plugin_name}' raised {type(exc).__name__} in hook {hook_name}: "
                                f"{exc}; {disable_hint(impl.plugin_name)}", impl.plugin_name)
            if broken is None:
                raise error from exc
            error.__cause__ = exc
            pm.set_blocked(impl.plugin_name)
            broken.append(error)
            continue
        collected.append((impl.plugin_name, objects))
    return collected
