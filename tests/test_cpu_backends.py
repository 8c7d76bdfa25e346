"""The CPU backends: OpenVINO and ONNX Runtime give torch's answer for every image, in order, a short
last batch included; ONNX Runtime's int8 form is built once and cached."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
import torch

import tests.plugins.tinycnn.plugin as tiny_plugin
from modelzoo.artifacts import Artifacts
from modelzoo.backends.base import BackendSettings
from modelzoo.backends.onnxruntime import physical_cores
from modelzoo.backends.openvino import OpenVinoSession
from modelzoo.cache import Cache
from modelzoo.core import Batch
from modelzoo.errors import UserError
from modelzoo.pipeline import RunOptions, run
from modelzoo.plugins import get_plugin_manager
from modelzoo.quantize import int8_onnx
from modelzoo.registry import Registry
from modelzoo.weights import resolve_weights
from tests.margins import assert_logits_agree, assert_records_agree, ranked

CPU_BACKENDS = ("onnxruntime", "openvino")


@pytest.fixture(scope="module")
def registry() -> Registry:
    pm = get_plugin_manager(load_entrypoints=True)
    pm.register(tiny_plugin)
    return Registry(pm)


def tiny_artifacts(registry: Registry, weights, cache_root) -> Artifacts:
    entry = registry.model("tinycnn")
    return Artifacts(entry, resolve_weights(entry.manifest, weights), Cache(cache_root), quiet=True)


def in_batches(data: np.ndarray, batch_size: int, input_name: str) -> list[Batch]:
    return [Batch([f"img{i}" for i in range(s, min(s + batch_size, len(data)))], {input_name: data[s:s + batch_size]})
            for s in range(0, len(data), batch_size)]


def run_session(session, data: np.ndarray, batch_size: int, input_name: str = "pixels",
                output_name: str = "scores") -> tuple[list[str], np.ndarray]:
    names, outs = [], []
    try:
        for batch_names, out in session.run(in_batches(data, batch_size, input_name)):
            assert list(out) == [output_name] and len(out[output_name]) == len(batch_names)
            names += batch_names
            outs.append(out[output_name])
    finally:
        session.close()
    return names, np.concatenate(outs)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_logits_match_torch_image_by_image_in_order(registry, tiny_weights, tmp_path, backend):
    artifacts = tiny_artifacts(registry, tiny_weights, tmp_path / "cache")
    x = np.random.default_rng(0).standard_normal((11, 3, 32, 32)).astype(np.float32)  # 3+3+3+2
    with torch.inference_mode():
        reference = artifacts.torch_model()(torch.from_numpy(x)).numpy()
    session = registry.backend(backend).open(artifacts, 3, BackendSettings(workdir=tmp_path, precision="fp32"))
    names, got = run_session(session, x, 3)
    assert names == [f"img{i}" for i in range(11)]
    np.testing.assert_allclose(got, reference, rtol=1e-4, atol=1e-4)
    assert len(set(reference.argmax(1))) > 1  # rows that all look alike would prove nothing
    assert session.images == 11 and session.throughput_fps() > 0


class FakeRequest:
    def __init__(self, out: np.ndarray) -> None:
        self.out = out

    latency = 1.0  # ms, as OpenVINO's InferRequest reports it

    def get_output_tensor(self, index: int) -> SimpleNamespace:
        return SimpleNamespace(data=self.out)


class FakeQueue:
    """Stands in for AsyncInferQueue and finishes requests newest first, as a busy machine may."""

    def __init__(self, compiled, jobs: int) -> None:
        self.jobs, self.pending = jobs, []

    def set_callback(self, callback) -> None:
        self.callback = callback

    def start_async(self, inputs: dict[str, np.ndarray], seq: int) -> None:
        if len(self.pending) == self.jobs:
            self.wait_all()
        self.pending.append((inputs["x"] * 10, seq))

    def wait_all(self) -> None:
        for out, seq in reversed(self.pending):
            self.callback(FakeRequest(out), seq)
        self.pending = []


def test_openvino_yields_in_input_order_when_requests_finish_out_of_order(monkeypatch):
    import openvino

    monkeypatch.setattr(openvino, "AsyncInferQueue", FakeQueue)
    compiled = SimpleNamespace(get_property=lambda name: 2,  # two requests
                               outputs=[SimpleNamespace(get_any_name=lambda: "y")])
    session = OpenVinoSession(compiled, static_batch=2)
    x = np.arange(7, dtype=np.float32).reshape(7, 1)
    names, got = run_session(session, x, 2, input_name="x", output_name="y")
    assert names == [f"img{i}" for i in range(7)]
    assert got.ravel().tolist() == [10 * i for i in range(7)]


def torch_answers(pictures, weights) -> dict[str, dict]:
    """Picture key -> its six best classes and their scores, best first, from the tiny model called
    directly."""
    model = tiny_plugin.build("standard")
    model.load_state_dict(torch.load(weights, weights_only=True))
    x = np.stack([tiny_plugin.preprocess(p) for p in pictures])
    with torch.inference_mode():
        scores = model(torch.from_numpy(x)).numpy()
    return {p.stem: ranked(s) for p, s in zip(pictures, scores)}


@pytest.mark.parametrize("backend,workers", [("torch", 0), ("onnxruntime", 2), ("openvino", 2)])
def test_every_backend_runs_the_pipeline_to_the_torch_models_answers(registry, tiny_data, tiny_weights, tmp_path,
                                                                      backend, workers):
    """`run` end to end (in process, or preprocessing in worker processes): records and top-1/top-5
    are those of the torch model called here, scored here against classes.txt."""
    pictures = sorted((tiny_data / "pictures").iterdir())
    expected = torch_answers(pictures, tiny_weights)
    assert len({record["top5"][0] for record in expected.values()}) > 1  # answers that all look alike prove nothing
    labels = {line.split()[0].rsplit(".", 1)[0]: int(line.split()[1])
              for line in (tiny_data / "classes.txt").read_text().splitlines()}
    report = run(registry, RunOptions(model="tinycnn", backend=backend, batch_size=3, data=tiny_data,
                                      output=tmp_path, weights=tiny_weights, cache_dir=tmp_path / "cache",
                                      workers=workers, quiet=True, precision="fp32"))
    assert report["backend"] == backend and report["images"] == 7 and report["throughput_fps"] > 0
    assert report["preprocessing"] == {"workers": workers, "in": "processes" if workers else "main thread"}
    got = json.loads((tmp_path / "predictions.json").read_text())
    # Scores within 1e-4 of torch's; classes compared place by place only as far as torch's own
    # gaps exceed twice that (a near tie may flip in a correct backend).
    assert len(assert_records_agree(expected, got, atol=1e-4)) >= 5
    assert report["top1"] == pytest.approx(np.mean([got[k]["top5"][0] == c for k, c in labels.items()]))
    assert report["top5"] == pytest.approx(np.mean([c in got[k]["top5"] for k, c in labels.items()]))
    if backend != "torch":
        assert report["parity"]["max_abs_diff"] < 1e-4


@pytest.mark.slow
@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_lvvit_predictions_match_torch_on_spread_weights(registry, dataset_dir, spread_checkpoint, cache_dir,
                                                         tmp_path, backend):
    entry = registry.model("lvvit")
    artifacts = Artifacts(entry, resolve_weights(entry.manifest, spread_checkpoint), Cache(cache_dir), quiet=True)
    images = sorted((dataset_dir / "images").iterdir())
    x = np.stack([entry.preprocess(p) for p in images])  # 6 images at bs 4: 4 + 2
    with torch.inference_mode():
        reference = artifacts.torch_model()(torch.from_numpy(x)).numpy()
    session = registry.backend(backend).open(artifacts, 4, BackendSettings(workdir=tmp_path, precision="fp32"))
    _, got = run_session(session, x, 4, input_name="image", output_name="features")
    assert len(set(reference.argmax(1))) > 1
    # Logits within 1e-3; top-1 compared only where torch's top-1 margin exceeds twice the measured
    # max |diff| (a near tie may flip either way in a correct backend).
    settled = assert_logits_agree(reference, got, atol=1e-3)
    assert settled.sum() >= 4  # the margins of this checkpoint leave most images to compare


def test_auto_prefers_openvino_and_falls_back_without_it(registry, monkeypatch):
    for backend in registry.backends.values():  # a host without an accelerator
        if backend.name not in (*CPU_BACKENDS, "torch"):
            monkeypatch.setattr(backend, "unavailable_reason", lambda: "no accelerator here")
    assert registry.backend("auto").name == "openvino"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real_find_spec(name, *a))
    assert "pip install openvino" in registry.backends["openvino"].unavailable_reason()
    assert registry.backend("auto").name == "onnxruntime"


def test_onnxruntime_uses_one_thread_per_available_core(registry, tiny_weights, tmp_path):
    # Counted here from lscpu, not from the code under test: one (socket, core) pair per physical core.
    listing = subprocess.run(["lscpu", "-p=CPU,CORE,SOCKET"], capture_output=True, text=True, check=True).stdout
    allowed = os.sched_getaffinity(0)
    cores = {tuple(line.split(",")[1:]) for line in listing.splitlines()
             if line and not line.startswith("#") and int(line.split(",")[0]) in allowed}
    assert physical_cores() == len(cores)
    session = registry.backend("onnxruntime").open(tiny_artifacts(registry, tiny_weights, tmp_path),
                                                   2, BackendSettings(workdir=tmp_path))
    options = session.session.get_session_options()
    assert options.intra_op_num_threads == physical_cores() and options.inter_op_num_threads == 1


def test_openvino_compiles_once_into_the_cache(registry, tiny_weights, tmp_path):
    backend = registry.backend("openvino")
    for loaded_from_cache in (False, True):
        session = backend.open(tiny_artifacts(registry, tiny_weights, tmp_path), 2, BackendSettings(workdir=tmp_path))
        assert session.compiled.get_property("LOADED_FROM_CACHE") is loaded_from_cache
    assert list((tmp_path / "openvino" / session.precision).glob("*.blob"))  # a folder per precision


def test_onnxruntime_int8_is_dynamic_cached_and_says_so(registry, tiny_weights, tmp_path):
    artifacts = tiny_artifacts(registry, tiny_weights, tmp_path)
    session = registry.backend("onnxruntime").open(artifacts, 3, BackendSettings(workdir=tmp_path, precision="int8"))
    path = int8_onnx(artifacts, 3)
    assert artifacts.cache.reused[path.name] is True  # open() built it; asking again reuses it
    ops = {node.op_type for node in onnx.load(str(path)).graph.node}
    assert "DynamicQuantizeLinear" in ops and "ConvInteger" not in ops and "Conv" in ops  # only Gemm/MatMul
    x = np.random.default_rng(1).standard_normal((7, 3, 32, 32)).astype(np.float32)
    names, got = run_session(session, x, 3)
    assert names == [f"img{i}" for i in range(7)] and got.shape == (7, 10)
    assert session.precision == "int8" and "dynamic" in session.precision_note and path.name in session.identity

    again = tiny_artifacts(registry, tiny_weights, tmp_path)  # a later run: a fresh Cache object
    assert int8_onnx(again, 3) == path and again.cache.reused[path.name] is True


def test_a_precision_a_backend_cannot_run_is_one_line_naming_what_can(registry):
    from modelzoo.precision import runnable_here

    with pytest.raises(UserError) as info:
        registry.backend("onnxruntime", "bf16")
    message = str(info.value)
    assert "\n" not in message and message.startswith("backend 'onnxruntime' cannot run bf16 here: it runs auto, fp32, int8")
    assert "--precision auto or fp32 or int8" in message
    if registry.backends["openvino"].precision_problem("bf16") is None:  # a CPU with bf16 dot products
        assert "use --backend openvino" in message
    else:
        assert "no other backend here runs bf16" in message
    assert runnable_here(registry.backends["torch"]) == ("auto", "fp32")
    with pytest.raises(UserError, match=r"backend 'torch' cannot run int8 here: it runs auto, fp32; "
                                        r"use --backend (openvino or onnxruntime|onnxruntime or openvino)"):
        registry.backend("torch", "int8")
