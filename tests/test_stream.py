"""The preprocessing stream: samples in order, and a bounded number of them in flight.

(That a run through the stream gives the model's answers on every backend is
tests/test_cpu_backends.py::test_every_backend_runs_the_pipeline_to_the_torch_models_answers.)
"""
from __future__ import annotations

import os
import threading
from pathlib import Path

import numpy as np
import pytest

from modelzoo.core import Sample
from modelzoo.errors import PluginError, UserError
from modelzoo.stream import Preprocessor


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


def where_it_ran(path: Path) -> np.ndarray:
    return np.array([os.getpid(), threading.get_ident()], dtype=np.int64)


@pytest.mark.parametrize("threads", [True, False])
def test_workers_are_threads_of_this_process_or_other_processes(tmp_path, threads):
    samples = [Sample(str(i), tmp_path / str(i)) for i in range(12)]
    with Preprocessor(where_it_ran, samples, workers=2, window=4, plugin="test", threads=threads) as stream:
        places = [tuple(a) for _, a, _ in stream]
    pids = {pid for pid, _ in places}
    if threads:
        assert pids == {os.getpid()}
        assert threading.get_ident() not in {thread for _, thread in places}  # not the caller's thread
    else:
        assert os.getpid() not in pids


def test_in_threads_a_bad_sample_and_a_plugin_fault_are_reported_as_with_processes(tmp_path):
    (tmp_path / "1").write_text("not a number")
    samples = [Sample(str(i), tmp_path / str(i)) for i in range(3)]
    with Preprocessor(refuse_one, samples, workers=2, window=3, plugin="test", threads=True) as stream:
        results = [(s.key, error) for s, _, error in stream]
    assert results == [("0", None), ("1", f"cannot read {tmp_path / '1'}"), ("2", None)]
    with Preprocessor(slow_identity, [Sample("x", tmp_path / "x")], workers=1, window=1, plugin="named",
                      threads=True) as stream:
        with pytest.raises(PluginError, match="plugin 'named' raised ValueError in preprocess"):
            list(stream)


def refuse_one(path: Path) -> np.ndarray:
    if path.exists():
        raise UserError(f"cannot read {path}")
    return np.zeros(1, dtype=np.float32)
