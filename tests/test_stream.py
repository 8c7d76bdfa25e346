"""The streaming pipeline: same answers as a plain loop, and a bounded number of images in flight."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tests.plugins.tinycnn.plugin as tiny_plugin
from modelzoo.artifacts import Artifacts
from modelzoo.backends.base import BackendSettings
from modelzoo.cache import Cache
from modelzoo.tasks.classification import top5
from modelzoo.pipeline import RunOptions, run
from modelzoo.registry import Registry
from modelzoo.stream import Preprocessor
from modelzoo.tasks import Sample
from modelzoo.weights import resolve_weights
from tests.conftest import predicted_classes


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_registry, tiny_data, tiny_weights):
    return tiny_registry, tiny_data, tiny_weights, tmp_path_factory.mktemp("stream")


def sequential(registry: Registry, backend_name: str, data: Path, weights: Path, cache: Path, bs: int) -> dict:
    """The plain way: preprocess each image in turn, fill batches by hand, pad the last one."""
    entry, backend = registry.model("tinycnn"), registry.backend(backend_name)
    artifacts = Artifacts(entry, resolve_weights(entry.manifest, weights), Cache(cache), backend.export_variant,
                          quiet=True)
    session = backend.open(artifacts, bs, BackendSettings(workdir=cache))
    paths = sorted((data / "pictures").iterdir())
    predictions = {}
    for start in range(0, len(paths), bs):
        chunk = paths[start:start + bs]
        x = np.stack([tiny_plugin.preprocess(p) for p in chunk])
        x = np.concatenate([x, np.zeros((bs - len(chunk), *x.shape[1:]), np.float32)])
        for path, row in zip(chunk, session.infer({"pixels": x})["scores"]):
            predictions[path.stem] = top5(row)
    session.close()
    return predictions


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino"])
def test_streaming_gives_exactly_the_sequential_predictions(setup, backend):
    registry, data, weights, root = setup
    out = root / f"out-{backend}"
    run(registry, RunOptions(model="tinycnn", backend=backend, batch_size=4, data=data, weights=weights,
                             output=out, cache_dir=root / "cache", workers=2, quiet=True))
    streamed = predicted_classes(out)
    expected = sequential(registry, backend, data, weights, root / "cache", 4)
    assert streamed == expected
    assert list(streamed) == sorted(streamed)  # in image order
    assert len({p[0] for p in streamed.values()}) > 1


def slow_identity(path: Path) -> np.ndarray:
    return np.full(3, int(path.name), dtype=np.float32)


def test_at_most_window_images_are_in_flight(tmp_path):
    samples = [Sample(str(i), tmp_path / str(i)) for i in range(40)]
    with Preprocessor(slow_identity, samples, workers=2, window=5) as stream:
        assert len(stream.pending) == 5  # started on entry, before anyone asked
        seen = []
        for sample, array, error in stream:
            assert len(stream.pending) <= 5
            seen.append(int(array[0]))
    assert seen == list(range(40))


def test_without_workers_the_same_stream_runs_in_process(tmp_path):
    samples = [Sample(str(i), tmp_path / str(i)) for i in range(7)]
    with Preprocessor(slow_identity, samples, workers=0, window=3) as stream:
        assert stream.pool is None
        assert [int(a[0]) for _, a, _ in stream] == list(range(7))
