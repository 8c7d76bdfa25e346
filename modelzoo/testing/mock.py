"""A mock runner for plugin authors: call a plugin's hooks as the runner does and check the contract.

    from modelzoo.testing.mock import MockRunner
    import my_plugin

    def test_my_model_keeps_the_contract():
        MockRunner(my_plugin).check_model("mymodel")

Nothing else is loaded (no entry points, no built-in backends) and no pipeline runs: the checks
(modelzoo.contract, the same ones the registry and zoo CI use) build the model, run example inputs
and demo samples through it, and score them with the task, so that a broken hook fails in seconds
with a message that names the broken part.
"""
from __future__ import annotations

from types import ModuleType

import pluggy

from modelzoo import hookspecs
from modelzoo.backends.base import Backend
from modelzoo.contract import (
    ContractError,
    check_backend,
    check_entry,
    check_model,
    expect,
)
from modelzoo.core import ModelEntry
from modelzoo.errors import UserError
from modelzoo.plugins import call_registration
from modelzoo.registry import resolve_task

__all__ = ["ContractError", "MockRunner"]


class MockRunner:
    def __init__(self, *plugins: ModuleType | object):
        self.pm = pluggy.PluginManager("modelzoo")
        self.pm.add_hookspecs(hookspecs)
        for plugin in plugins:
            self.pm.register(plugin)
        self.pm.check_pending()
        self.models: dict[str, ModelEntry] = {}
        self.backends: dict[str, Backend] = {}
        # The registry's own path through the hooks; a broken promise stays a ContractError.
        for _, entries in call_registration(self.pm, "modelzoo_register_models", check_entry,
                                            passthrough=(UserError, ContractError)):
            for entry in entries:
                expect(entry.name not in self.models, f"model '{entry.name}' registered twice")
                self.models[entry.name] = resolve_task(entry)
        for _, backends in call_registration(self.pm, "modelzoo_register_backends", check_backend,
                                             passthrough=(UserError, ContractError)):
            for backend in backends:
                expect(backend.name not in self.backends, f"backend name {backend.name!r} is registered twice")
                self.backends[backend.name] = backend

    def model(self, name: str) -> ModelEntry:
        expect(name in self.models, f"no model '{name}' registered (got: {sorted(self.models)})")
        return self.models[name]

    def check_model(self, name: str, batch_size: int = 2) -> None:
        """Every promise of a ModelEntry, checked on the real objects; raises ContractError."""
        check_model(self.model(name), batch_size)
