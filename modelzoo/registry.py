"""What plugins register, collected once from the hooks: models and backends by name."""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from modelzoo.core import ModelEntry
from modelzoo.errors import PluginError, UserError
from modelzoo.tasks import builtin_task

if TYPE_CHECKING:
    import pluggy

    from modelzoo.backends.base import Backend


def resolve_task(entry: ModelEntry) -> ModelEntry:
    """The entry with its task: the plugin's own, or the built-in one its manifest names."""
    return entry if entry.task is not None else replace(entry, task=builtin_task(entry.manifest))


class Registry:
    """Models and backends registered by every plugin in a plugin manager.

    With `broken` given (the list get_plugin_manager filled, say), a plugin whose registration hook
    raises is left out and its PluginError added there; `broken` names them when a model is missing.
    """

    def __init__(self, pm: pluggy.PluginManager, broken: list[PluginError] | None = None):
        from modelzoo.contract import check_backend, check_entry
        from modelzoo.plugins import call_registration

        self.models: dict[str, ModelEntry] = {}
        self.backends: dict[str, Backend] = {}
        self.broken = broken if broken is not None else []
        for _, entries in call_registration(pm, "modelzoo_register_models", check_entry, broken):
            for entry in entries:
                self._add_model(entry)
        for _, backends in call_registration(pm, "modelzoo_register_backends", check_backend, broken):
            for backend in backends:
                self._add_backend(backend)

    def _add_model(self, entry: ModelEntry) -> None:
        entry = resolve_task(entry)
        if entry.name in self.models:
            raise UserError(f"two plugins register a model named '{entry.name}' "
                            f"({self.models[entry.name].manifest.path} and {entry.manifest.path}); "
                            "uninstall one of them")
        self.models[entry.name] = entry

    def _add_backend(self, backend: Backend) -> None:
        if backend.name in self.backends:
            raise UserError(f"two plugins register a backend named '{backend.name}'; uninstall one of them")
        self.backends[backend.name] = backend

    def model(self, name: str) -> ModelEntry:
        try:
            return self.models[name]
        except KeyError:
            known = ", ".join(sorted(self.models)) or "none"
            if self.broken:  # the model may be one of theirs: say why they are missing
                raise UserError(f"unknown model '{name}' (installed: {known}); broken plugins, whose models "
                                f"are missing: {'; '.join(map(str, self.broken))}") from None
            raise UserError(f"unknown model '{name}' (installed: {known}); "
                            "see 'modelzoo list' or install its plugin") from None

    def backend(self, name: str, precision: str = "auto") -> Backend:
        """The backend called `name`, or for "auto" the best available one that runs `precision`."""
        return self.choose_backend(name, precision)[0]

    def candidates(self, precision: str) -> tuple[list[Backend], list[str]]:
        """The available backends that run `precision` here, highest priority first, and those
        passed over with the reason; a UserError when none is left."""
        chosen, passed = [], []
        for b in sorted(self.backends.values(), key=lambda b: -b.priority):
            reason = "not available here" if b.unavailable_reason() else b.precision_problem(precision)
            if reason is None:
                chosen.append(b)
            else:
                passed.append(f"{b.name} ({reason})")
        if not chosen:
            raise UserError(f"no available backend runs {precision} here; see 'modelzoo list' for what each needs")
        return chosen, passed

    def choose_backend(self, name: str, precision: str = "auto") -> tuple[Backend, str]:
        """The backend for `name` and `precision`, and why it was chosen (for the report).

        "auto" here takes the highest-priority available backend that runs `precision` (an
        accelerator first); `modelzoo run` chooses among the same candidates by measurement
        (modelzoo.autochoice).
        """
        from modelzoo.precision import unsupported

        if name == "auto":
            chosen, passed = self.candidates(precision)
            why = f"auto: {chosen[0].name} is the highest-priority available backend that runs {precision} here"
            return chosen[0], why + ("; passed over: " + "; ".join(passed) if passed else "")
        backend = self.backends.get(name)
        if backend is None:
            known = ", ".join(sorted(self.backends))
            raise UserError(f"unknown backend '{name}' (known: {known}, or auto)")
        reason = backend.unavailable_reason()
        if reason:
            raise UserError(f"backend '{name}' is not available here: {reason}")
        if backend.precision_problem(precision):
            raise unsupported(backend, precision, list(self.backends.values()))
        return backend, f"--backend {name}"
