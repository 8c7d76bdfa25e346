"""ONNX Runtime on the CPU: the default backend on a machine without an accelerator."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np

from modelzoo.backends.base import Backend, BackendSettings, Session
from modelzoo.hookspecs import hookimpl

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts


class OnnxRuntimeSession(Session):
    def __init__(self, onnx_path, input_name: str, static_batch: int) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = os.cpu_count() or 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.input_name = input_name
        self.static_batch = static_batch

    def infer(self, data: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: data})[0]


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    priority = 20
    description = "ONNX Runtime, CPU execution provider"

    def versions(self) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        onnx_path = artifacts.onnx(batch_size)
        return OnnxRuntimeSession(onnx_path, artifacts.manifest.inputs[0].name, batch_size)


@hookimpl
def modelzoo_register_backends(register):
    register(OnnxRuntimeBackend())
