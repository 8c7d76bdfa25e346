"""The preprocessing stream: samples in order, and a bounded number of them in flight.

(That a run through the stream gives the model's answers on every backend is
tests/test_cpu_backends.py::test_every_backend_runs_the_pipeline_to_the_torch_models_answers.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from modelzoo.stream import Preprocessor
from modelzoo.tasks import Sample


def slow_identity(path: Path) -> np.ndarray:
    return np.full(3, int(path.name), dtype=np.float32)


def test_at_most_window_images_are_in_flight(tmp_path):
    samples = [Sample(str(i), tmp_path / str(i)) for i in range(40)]
    with Preprocessor(slow_identity, samples, workers=2, window=5, plugin="test") as stream:
        assert len(stream.pending) == 5  # started on entry, before anyone asked
        seen = []
        for sample, array, error in stream:
            assert len(stream.pending) <= 5
            seen.append(int(array[0]))
    assert seen == list(range(40))


def test_without_workers_the_same_stream_runs_in_process(tmp_path):
    samples = [Sample(str(i), tmp_path / str(i)) for i in range(7)]
    with Preprocessor(slow_identity, samples, workers=0, window=3, plugin="test") as stream:
        assert stream.pool is None
        assert [int(a[0]) for _, a, _ in stream] == list(range(7))
