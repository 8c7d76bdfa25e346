"""OpenVINO on the CPU: compiles the simplified ONNX and keeps several batches in flight.

With the THROUGHPUT hint OpenVINO splits the cores into streams, each running its own request;
an AsyncInferQueue with one request per stream keeps them all busy, so the cores never wait for
the single-threaded tail of a batch. Results still come back in the order the batches went in.

Precision: `auto` asks for the CPU's native fast float precision (bf16 where it has bf16 dot
products, else fp32) and the report states what OpenVINO says it compiled; `int8` runs a model
quantised by NNCF on calibration images (modelzoo.quantize), its remaining float ops at auto.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from modelzoo.backends.base import Backend, BackendSettings, Session, pad_batch
from modelzoo.cache import digest
from modelzoo.core import Batch
from modelzoo.errors import UserError
from modelzoo.hookspecs import hookimpl
from modelzoo.host import cpu, native_float_precision, openvino_capabilities
from modelzoo.openvino_precision import OV_TYPES, keep_float, reduced_ops

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts

log = logging.getLogger(__name__)


class OpenVinoSession(Session):
    """Runs batches asynchronously; ``throughput_fps`` counts the seconds during which at least one
    request was running, i.e. the wall time of inference, overlap included, without the time the
    queue stood empty waiting for preprocessed input."""

    def __init__(self, compiled, static_batch: int) -> None:
        super().__init__()
        import openvino as ov

        self.compiled = compiled
        self.static_batch = static_batch
        self.in_flight = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self.queue = ov.AsyncInferQueue(compiled, self.in_flight)
        self.queue.set_callback(self._done)
        self.output_names = [port.get_any_name() for port in compiled.outputs]
        self._results: dict[int, dict[str, np.ndarray]] = {}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._busy_since = 0.0

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        result = self.compiled(inputs)
        return {name: result[i] for i, name in enumerate(self.output_names)}

    def _started(self) -> None:
        with self._lock:
            if self._in_flight == 0:
                self._busy_since = time.perf_counter()
            self._in_flight += 1

    def _done(self, request, seq: int) -> None:
        # Runs on an OpenVINO thread. The output buffer belongs to the request and is reused by
        # the next batch it runs, hence the copy.
        out = {name: request.get_output_tensor(i).data.copy() for i, name in enumerate(self.output_names)}
        with self._lock:
            self._results[seq] = out
            self.finished_at.append(time.perf_counter())
            self.latencies_s.append(request.latency / 1000)  # the request's own run, in ms
            self._in_flight -= 1
            if self._in_flight == 0:
                self.compute_seconds += time.perf_counter() - self._busy_since

    def run(self, batches: Iterable[Batch]) -> Iterator[tuple[list[str], dict[str, np.ndarray]]]:
        waiting: deque[tuple[int, list[str]]] = deque()  # submitted batches, in input order
        for seq, batch in enumerate(batches):
            inputs = pad_batch(batch.inputs, len(batch.keys), self.static_batch)
            self._started()
            self.queue.start_async(inputs, seq)  # blocks while every request is busy
            waiting.append((seq, batch.keys))
            while waiting and waiting[0][0] in self._results:
                yield self._take(waiting.popleft())
        self.queue.wait_all()
        while waiting:
            yield self._take(waiting.popleft())

    def _take(self, item: tuple[int, list[str]]) -> tuple[list[str], dict[str, np.ndarray]]:
        seq, keys = item
        with self._lock:
            outputs = self._results.pop(seq)
        self.images += len(keys)
        return keys, {name: out[:len(keys)] for name, out in outputs.items()}

    def close(self) -> None:
        self.queue.wait_all()  # a run abandoned midway must not leave requests writing into us


OV_HINTS = {"fp32": "f32", "bf16": "bf16", "fp16": "f16"}
FROM_OV = {v: k for k, v in OV_HINTS.items()}


def auto_precision(flags: frozenset[str] | set[str], capabilities: tuple[str, ...] | list[str]) -> str:
    """What `auto` asks OpenVINO for: bf16 only where the CPU computes it natively and OpenVINO's
    CPU plugin says it can (on an AVX2-only host it would quietly run fp32 kernels anyway)."""
    return "bf16" if native_float_precision(flags) == "bf16" and "BF16" in capabilities else "fp32"


class OpenVinoBackend(Backend):
    name = "openvino"
    priority = 30
    description = "OpenVINO, CPU plugin (auto: bf16 where the CPU has it, else fp32; int8 by NNCF; async)"
    precisions = ("fp32", "bf16", "fp16", "int8")

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "the openvino package is not installed (pip install openvino)"
        return None

    def versions(self) -> dict[str, str]:
        import openvino

        found = {"openvino": openvino.__version__}
        if importlib.util.find_spec("nncf") is not None:
            from importlib.metadata import version

            found["nncf"] = version("nncf")
        return found

    def auto_precision(self) -> str:
        return auto_precision(cpu()[1], openvino_capabilities() or [])

    def precision_problem(self, precision: str) -> str | None:
        if precision in ("auto", "fp32"):
            return None
        capabilities = openvino_capabilities() or []
        if precision == "bf16" and auto_precision(cpu()[1], capabilities) != "bf16":
            return "this CPU has no bf16 dot products (avx512_bf16 or amx_bf16)"
        if precision == "fp16" and "FP16" not in capabilities:
            return f"OpenVINO's CPU plugin computes no fp16 on this CPU (it offers {', '.join(capabilities)})"
        if precision == "int8" and importlib.util.find_spec("nncf") is None:
            return "int8 needs NNCF (pip install 'modelzoo-lvvit[int8]', or pip install nncf)"
        return None

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        import openvino as ov

        core = ov.Core()
        requested = settings.precision
        float_precision = self.auto_precision() if requested in ("auto", "int8") else requested
        keep = settings.keep_fp32 if requested != "int8" and float_precision in OV_TYPES else ()
        # OpenVINO keeps compiled blobs here, keyed by the model: a rerun imports the blob instead
        # of compiling again. A folder per precision and kept ops, because its key missed both
        # (OpenVINO 2026.4.1 served an fp16 request the blob compiled at fp32, and a run with ops
        # kept in f32 the blob compiled without).
        blobs = float_precision + (f"-keep-{digest({'keep': list(keep)})}" if keep else "")
        core.set_property({"CACHE_DIR": str(artifacts.cache.root / "openvino" / blobs)})
        if requested == "int8":
            from modelzoo.quantize import nncf_int8

            if settings.calibration is None:
                raise UserError("int8 on openvino needs calibration images; pass --data or --calibration-data")
            from modelzoo.precision import kept_ops

            keep = kept_ops(artifacts.manifest, "int8", settings.keep_fp32)
            int8_dir = nncf_int8(artifacts, settings.calibration, keep)
            model = core.read_model(str(int8_dir / "model.xml"))
            # -1: the declared dynamic axes stay dynamic
            model.reshape({t.name: [batch_size, *(-1 if isinstance(d, str) else d for d in t.shape[1:])]
                           for t in artifacts.manifest.inputs})
            source = int8_dir.name
        else:
            onnx_path = artifacts.onnx(batch_size)
            model, source = str(onnx_path), onnx_path.name
            if keep:
                model = keep_float(core.read_model(model), keep, float_precision)
        # Set always: OpenVINO's own default differs between CPUs and versions.
        config = {"PERFORMANCE_HINT": "THROUGHPUT", "INFERENCE_PRECISION_HINT": OV_HINTS[float_precision]}
        compiled = core.compile_model(model, "CPU", config)
        compiled_float = FROM_OV.get(compiled.get_property("INFERENCE_PRECISION_HINT").to_string(), "fp32")
        session = OpenVinoSession(compiled, batch_size)
        session.precision = "int8" if requested == "int8" else compiled_float
        session.precision_note = f"OpenVINO compiled {compiled_float}, as the compiled model reports"
        if requested != "int8" and keep:
            session.kept_ops = _kept_as_compiled(compiled, keep, compiled_float)
        # What the session computes, for the agreement figures remembered under it.
        session.identity = f"openvino {source} {compiled_float}" + (
            f" keeping {','.join(session.kept_ops)}" if requested != "int8" and session.kept_ops else "")
        if requested == "int8":
            session.kept_ops = keep
            session.precision_note = f"NNCF static int8; float ops {compiled_float}; " + session.precision_note
            session.calibration = {**json.loads((int8_dir / "calibration.json").read_text()),
                                   "reused": artifacts.cache.reused[int8_dir.name]}
        if requested not in ("auto", "int8") and compiled_float != requested:
            log.warning("openvino: asked for %s, compiled %s", requested, compiled_float)
        return session


def _kept_as_compiled(compiled, keep: tuple[str, ...], precision: str) -> tuple[str, ...]:
    """The ops of `keep` that `compiled` really computes in f32; a line for the others."""
    reduced = reduced_ops(compiled, keep)
    if reduced:
        log.warning("openvino: --keep-fp32 ops still computed at %s (its CPU plugin did not honour the per-op "
                    "mark at this precision): %s", precision, ", ".join(reduced))
    return tuple(op for op in keep if op not in reduced)


@hookimpl
def modelzoo_register_backends(register):
    register(OpenVinoBackend())
