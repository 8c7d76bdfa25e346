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
        session = TorchSession(artifacts.torch_model())
        session.precision_note, session.identity = "torch eager fp32 (the reference)", "torch eager"
        return session


@hookimpl
def modelzoo_register_backends(register):
    register(TorchBackend())
