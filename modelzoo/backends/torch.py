"""PyTorch eager on the CPU: the reference every exported form is compared with."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modelzoo.backends.base import Backend, BackendSettings, Session
from modelzoo.export import torch_outputs
from modelzoo.hookspecs import hookimpl
from modelzoo.manifest import Manifest

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts


class TorchSession(Session):
    def __init__(self, model, manifest: Manifest) -> None:
        super().__init__()
        self.model = model
        self.manifest = manifest

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return torch_outputs(self.model, self.manifest, inputs)


class TorchBackend(Backend):
    name = "torch"
    priority = 10
    description = "PyTorch eager (reference)"

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        session = TorchSession(artifacts.torch_model(), artifacts.manifest)
        session.precision_note, session.identity = "torch eager fp32 (the reference)", "torch eager"
        return session

    def prepare(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> None:
        pass  # it starts from the weights, not from a built file


@hookimpl
def modelzoo_register_backends(register):
    register(TorchBackend())
