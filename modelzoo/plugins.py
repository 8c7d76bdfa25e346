"""The plugin manager: built-in plugins first, then installed ones from entry points."""
from __future__ import annotations

import importlib
import os
from importlib.metadata import entry_points

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


def get_plugin_manager(load_entrypoints: bool | None = None,
                       broken: list[tuple[str, str]] | None = None) -> pluggy.PluginManager:
    """A plugin manager with the built-in plugins and, unless switched off, installed ones.

    A plugin that fails to load or does not match the hook specifications raises PluginError;
    with `broken` given it is left out and recorded there as (name, reason) instead.
    """
    if load_entrypoints is None:
        load_entrypoints = os.environ.get(LOAD_ENTRYPOINTS_ENV, "1") != "0"
    disabled = disabled_plugins()
    pm = pluggy.PluginManager("modelzoo")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        if name not in disabled:
            _register(pm, name, lambda name=name: importlib.import_module(name), name, broken)
    if load_entrypoints:
        for entry_point in entry_points(group="modelzoo"):
            if entry_point.name in disabled or pm.get_plugin(entry_point.name) is not None:
                continue
            _register(pm, entry_point.name, entry_point.load, f"installed plugin '{entry_point.name}' "
                      f"({entry_point.value})", broken)
    return pm


def _register(pm: pluggy.PluginManager, name: str, load, what: str,
              broken: list[tuple[str, str]] | None) -> None:
    hint = f"fix it, or skip it with {DISABLE_ENV}={name}"
    try:
        try:
            plugin = load()
        except Exception as exc:
            raise PluginError(f"{what} failed to load: {type(exc).__name__}: {exc}; {hint}") from exc
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
            raise PluginError(f"{what} does not match the hook specifications: {reason}; {hint}") from exc
    except PluginError as exc:
        if broken is None:
            raise
        broken.append((name, str(exc)))
