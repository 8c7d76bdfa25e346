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


def get_plugin_manager(load_entrypoints: bool | None = None) -> pluggy.PluginManager:
    """A plugin manager with the built-in plugins and, unless switched off, installed ones."""
    if load_entrypoints is None:
        load_entrypoints = os.environ.get(LOAD_ENTRYPOINTS_ENV, "1") != "0"
    pm = pluggy.PluginManager("modelzoo")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if load_entrypoints:
        for entry_point in entry_points(group="modelzoo"):
            if pm.get_plugin(entry_point.name) is not None:
                continue
            try:
                plugin = entry_point.load()
            except Exception as exc:
                raise PluginError(f"installed plugin '{entry_point.name}' ({entry_point.value}) failed to "
                                  f"load: {type(exc).__name__}: {exc}") from exc
            if not pm.is_registered(plugin):
                pm.register(plugin, name=entry_point.name)
    try:
        # A misspelled hook name in a plugin fails here instead of being silently never called.
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(f"plugin '{pm.get_name(exc.plugin)}' is invalid: {exc}") from exc
    return pm
