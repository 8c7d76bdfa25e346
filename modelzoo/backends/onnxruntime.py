"""ONNX Runtime on the CPU: the default backend on a machine without an accelerator.

The optimised graph is not saved to the cache (`optimized_model_filepath`): loading a pre-optimised
LV-ViT-S saved 0.04 s of a 0.16 s session start, and with ORT_ENABLE_ALL the saved file holds
layout transforms specific to the CPU it was made on.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from modelzoo.backends.base import Backend, BackendSettings, Session
from modelzoo.hookspecs import hookimpl

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts


def physical_cores() -> int:
    """Physical cores among the CPUs this process may run on (affinity, e.g. taskset or a container).

    One compute thread per physical core: two threads on the hyper-threads of one core compete
    for the same vector units and slow matrix kernels down.
    """
    cpus = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    cores = set()
    for cpu in cpus:
        topology = Path(f"/sys/devices/system/cpu/cpu{cpu}/topology")
        try:
            cores.add(((topology / "physical_package_id").read_text(), (topology / "core_id").read_text()))
        except OSError:  # no sysfs (not Linux, or hidden): count logical CPUs
            cores.add((str(cpu), ""))
    return max(1, len(cores))


class OnnxRuntimeSession(Session):
    def __init__(self, onnx_path: Path, static_batch: int) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = physical_cores()
        # One graph branch at a time: the model is a chain, and a second pool would only steal cores.
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.static_batch = static_batch

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return dict(zip(self.output_names, self.session.run(self.output_names, inputs)))


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"
    priority = 20
    description = "ONNX Runtime, CPU execution provider (fp32, or int8 by dynamic quantisation)"
    precisions = ("fp32", "int8")

    def versions(self) -> dict[str, str]:
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        if settings.precision == "int8":
            from modelzoo.precision import kept_ops
            from modelzoo.quantize import int8_onnx

            keep = kept_ops(artifacts.manifest, "int8", settings.keep_fp32)
            path = int8_onnx(artifacts, batch_size, keep)
            session = OnnxRuntimeSession(path, batch_size)
            session.precision, session.precision_note = "int8", "ONNX Runtime dynamic int8 (MatMul/Gemm)"
            session.kept_ops = keep
        else:
            path = artifacts.onnx(batch_size)
            session = OnnxRuntimeSession(path, batch_size)
            session.precision_note = "ONNX Runtime computes fp32 on the CPU"
        session.identity = f"onnxruntime {path.name}"
        return session

    def prepare(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> None:
        if settings.precision == "int8":
            from modelzoo.precision import kept_ops
            from modelzoo.quantize import int8_onnx

            # builds the fp32 ONNX on the way
            int8_onnx(artifacts, batch_size, kept_ops(artifacts.manifest, "int8", settings.keep_fp32))
        else:
            artifacts.onnx(batch_size)


@hookimpl
def modelzoo_register_backends(register):
    register(OnnxRuntimeBackend())
