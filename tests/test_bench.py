"""`modelzoo bench`: figures per backend and batch size, and the three files it writes."""
from __future__ import annotations

import json

import pytest

import tests.plugins.tinycnn.plugin as tiny_plugin
from modelzoo.bench import bench
from modelzoo.plugins import get_plugin_manager
from modelzoo.registry import Registry


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tiny_plugin)
    return out, bench(Registry(pm), "tinycnn", ["onnxruntime", "torch"], [1, 4, 8], warmup=1, iters=5,
                      output=out, cache_dir=out / "cache")


def test_every_backend_and_batch_size_is_measured(result):
    out, data = result
    assert [(r["backend"], r["batch_size"]) for r in data["rows"]] == \
        [(b, bs) for b in ("onnxruntime", "torch") for bs in (1, 4, 8)]
    for row in data["rows"]:
        assert 0 < row["fps_min"] <= row["fps_median"] <= row["fps_max"]
        assert row["latency_ms_median"] == pytest.approx(1000 * row["batch_size"] / row["fps_median"])
    assert json.loads((out / "bench.json").read_text()) == data
    assert data["host"]["cpus"] >= 1 and "onnxruntime" in data["versions"] and "torch" in data["versions"]


def test_the_markdown_table_marks_each_backends_best_batch_size(result):
    out, data = result
    table = [l for l in (out / "bench.md").read_text().splitlines() if l.startswith("| ") and "---" not in l][1:]
    assert len(table) == 6
    marked = {(cells[1], int(cells[2].rstrip(" *"))) for cells in (l.split(" | ") for l in table)
              if cells[2].endswith("*")}
    fastest = {backend: max((r for r in data["rows"] if r["backend"] == backend), key=lambda r: r["fps_median"])
               for backend in ("onnxruntime", "torch")}
    assert marked == {(backend, row["batch_size"]) for backend, row in fastest.items()}
    assert data["host"]["cpu"] in (out / "bench.md").read_text()


def test_the_plot_is_a_png(result):
    out, _ = result
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
