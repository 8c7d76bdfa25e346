"""A Ray cluster a run starts lives as long as the run: an error after connecting closes it too.

Its own module, so that no other test's connection is open in this process (a connection the run
finds open is used and left open, by design)."""
from __future__ import annotations

import logging
import time

import psutil
import pytest

from modelzoo.errors import UserError
from modelzoo.pipeline import RunOptions, run

ray = pytest.importorskip("ray")

pytestmark = pytest.mark.ray


def descendants() -> set[int]:
    return {child.pid for child in psutil.Process().children(recursive=True) if child.status() != psutil.STATUS_ZOMBIE}


def test_an_error_after_connecting_leaves_no_ray_process_the_run_started(tmp_path, tiny_registry, tiny_weights,
                                                                         caplog):
    assert not ray.is_initialized()
    before = descendants()
    opts = RunOptions(model="tinycnn", backend="onnxruntime", engine="ray", address="local",  # a new local cluster
                      data=tmp_path / "no-such-data", weights=tiny_weights, output=tmp_path / "out",
                      cache_dir=tmp_path / "cache", quiet=True, workers=0)
    with caplog.at_level(logging.INFO, logger="modelzoo"):
        with pytest.raises(UserError, match="no-such-data"):  # the data is looked at after connecting
            run(tiny_registry, opts)
    assert "connecting to Ray at local" in caplog.text  # the run did start a cluster
    assert not ray.is_initialized()
    deadline = time.monotonic() + 30  # Ray stops its processes as it shuts down; give them time to exit
    while descendants() - before:
        assert time.monotonic() < deadline, f"Ray processes left behind: {descendants() - before}"
        time.sleep(0.2)
