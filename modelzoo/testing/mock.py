"""A mock runner for plugin authors: call a plugin's hooks as the runner does and check the contract.

    from modelzoo.testing.mock import MockRunner
    import my_plugin

    def test_my_model_keeps_the_contract():
        MockRunner(my_plugin).check_model("mymodel")

Nothing else is loaded (no entry points, no built-in backends) and no pipeline runs: the checks
build the model, run one batch of zeros through it, preprocess a generated image, and read the
demo data, so that a broken hook fails in seconds with a message that names the broken part.
"""
from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pluggy

from modelzoo import hookspecs
from modelzoo.backends.base import Backend
from modelzoo.data import resolve_dataset
from modelzoo.registry import ModelEntry


class ContractError(AssertionError):
    """A plugin's registration does not keep the contract documented in modelzoo.hookspecs."""


class MockRunner:
    def __init__(self, *plugins: ModuleType | object):
        self.pm = pluggy.PluginManager("modelzoo")
        self.pm.add_hookspecs(hookspecs)
        for plugin in plugins:
            self.pm.register(plugin)
        self.pm.check_pending()
        self.models: dict[str, ModelEntry] = {}
        self.backends: dict[str, Backend] = {}
        self.pm.hook.modelzoo_register_models(register=self._register_model)
        self.pm.hook.modelzoo_register_backends(register=self._register_backend)

    def _register_model(self, entry: object) -> None:
        _expect(isinstance(entry, ModelEntry), f"register() got {type(entry).__name__}, not a ModelEntry")
        _expect(entry.name not in self.models, f"model '{entry.name}' registered twice")
        self.models[entry.name] = entry

    def _register_backend(self, backend: object) -> None:
        _expect(isinstance(backend, Backend), f"register() got {type(backend).__name__}, not a Backend")
        _expect(bool(backend.name) and backend.name not in self.backends,
                f"backend name {backend.name!r} is empty or registered twice")
        self.backends[backend.name] = backend

    def model(self, name: str) -> ModelEntry:
        _expect(name in self.models, f"no model '{name}' registered (got: {sorted(self.models)})")
        return self.models[name]

    def check_model(self, name: str, batch_size: int = 2) -> None:
        """Every promise of a ModelEntry, checked on the real objects; raises ContractError."""
        import torch

        entry = self.model(name)
        manifest = entry.manifest
        inp, out = manifest.inputs[0], manifest.outputs[0]

        model = entry.build("standard")
        _expect(isinstance(model, torch.nn.Module), "build() must return a torch.nn.Module")
        _expect(not model.training, "build() must return the model in eval mode")
        with torch.inference_mode():
            result = model(torch.zeros(inp.concrete_shape(batch_size), dtype=getattr(torch, inp.dtype)))
        _expect(tuple(result.shape) == out.concrete_shape(batch_size),
                f"output shape {tuple(result.shape)} differs from the manifest's {out.concrete_shape(batch_size)}")
        _expect(str(result.dtype) == f"torch.{out.dtype}", f"output dtype {result.dtype} is not {out.dtype}")

        other = entry.build("no-such-variant")
        _expect(isinstance(other, torch.nn.Module) and other.state_dict().keys() == model.state_dict().keys(),
                "build() must give the standard model for a variant it does not know")
        entry.init_random(model, 7)
        entry.init_random(other, 7)
        same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
        _expect(same, "init_random() with the same seed must give identical weights")

        try:
            pickle.dumps(entry.preprocess)
        except Exception as exc:  # noqa: BLE001 - any pickling failure breaks worker processes
            raise ContractError(f"preprocess is not picklable ({exc}); use a module-level function") from None
        with tempfile.TemporaryDirectory() as tmp:
            image = Path(tmp) / "probe.JPEG"
            _probe_image().save(image)
            array = entry.preprocess(image)
        expected = inp.concrete_shape(1)[1:]
        _expect(isinstance(array, np.ndarray) and array.shape == expected and array.dtype == np.dtype(inp.dtype),
                f"preprocess() must return a {inp.dtype} array of shape {expected}, got "
                f"{getattr(array, 'dtype', type(array).__name__)} {getattr(array, 'shape', '')}")

        if entry.demo_data is not None:
            dataset = resolve_dataset(manifest, None, None, entry.demo_data)
            _expect(len(dataset.images) > 0, "the demo data holds no images")


def _probe_image():
    from PIL import Image

    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype=np.uint8))


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)
