"""PyTorch eager on the CPU: the reference every exported form is compared with."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from modelzoo.backends.base import Backend, BackendSettings, Session
from modelzoo.hookspecs import hookimpl

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts


class TorchSession(Session):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def infer(self, data: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model(torch.from_numpy(data)).numpy()


class TorchBackend(Backend):
    name = "torch"
    priority = 10
    description = "PyTorch eager (reference)"

    def versions(self) -> dict[str, str]:
        import torch

        return {"torch": torch.__version__}

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        return TorchSession(artifacts.torch_model())

    def prepare(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> None:
        pass  # it starts from the weights, not from a built file


@hookimpl
def modelzoo_register_backends(register):
    register(TorchBackend())
