"""OpenVINO on the CPU: compiles the simplified ONNX and keeps several batches in flight.

With the THROUGHPUT hint OpenVINO splits the cores into streams, each running its own request;
an AsyncInferQueue with one request per stream keeps them all busy, so the cores never wait for
the single-threaded tail of a batch. Results still come back in the order the batches went in.
"""
from __future__ import annotations

import importlib.util
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

from modelzoo.backends.base import Backend, BackendSettings, Batch, Session, pad_batch
from modelzoo.hookspecs import hookimpl

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts


class OpenVinoSession(Session):
    """Runs batches asynchronously; ``throughput_fps`` counts the seconds during which at least one
    request was running, i.e. the wall time of inference, overlap included, without the time the
    queue stood empty waiting for preprocessed input."""

    def __init__(self, compiled, static_batch: int) -> None:
        super().__init__()
        import openvino as ov

        self.compiled = compiled
        self.static_batch = static_batch
        requests = compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")
        self.queue = ov.AsyncInferQueue(compiled, requests)
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


class OpenVinoBackend(Backend):
    name = "openvino"
    priority = 30
    description = "OpenVINO, CPU plugin (fp32, async throughput mode)"

    def unavailable_reason(self) -> str | None:
        if importlib.util.find_spec("openvino") is None:
            return "the openvino package is not installed (pip install openvino)"
        return None

    def versions(self) -> dict[str, str]:
        import openvino

        return {"openvino": openvino.__version__}

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        import openvino as ov

        onnx_path = artifacts.onnx(batch_size)
        core = ov.Core()
        # OpenVINO keeps compiled blobs here, keyed by the model and these settings: a rerun
        # imports the blob instead of compiling again.
        core.set_property({"CACHE_DIR": str(artifacts.cache.root / "openvino")})
        config = {
            "PERFORMANCE_HINT": "THROUGHPUT",
            # Without this OpenVINO runs bf16 on CPUs that have it: not the fp32 the run asked for.
            "INFERENCE_PRECISION_HINT": "f32",
        }
        compiled = core.compile_model(str(onnx_path), "CPU", config)
        return OpenVinoSession(compiled, batch_size)


@hookimpl
def modelzoo_register_backends(register):
    register(OpenVinoBackend())
