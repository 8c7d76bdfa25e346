"""`modelzoo bench`: figures per backend, precision and batch size, and the three files it writes."""
from __future__ import annotations

import json

import pytest

import tests.plugins.tinycnn.plugin as tiny_plugin
from modelzoo.bench import bench
from modelzoo.plugins import get_plugin_manager
from modelzoo.registry import Registry
from modelzoo.throughput import bench_figures

CELLS = [("onnxruntime", "fp32"), ("onnxruntime", "int8"), ("torch", "fp32")]


@pytest.fixture(scope="module")
def result(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tiny_plugin)
    return out, bench(Registry(pm), "tinycnn", ["onnxruntime", "torch"], [1, 4, 8], warmup=1, iters=5,
                      output=out, cache_dir=out / "cache", precisions=("fp32", "int8"))


def test_every_backend_precision_and_batch_size_is_measured(result):
    out, data = result
    assert [(r["backend"], r["precision"], r["batch_size"]) for r in data["rows"]] == \
        [(b, p, bs) for b, p in CELLS for bs in (1, 4, 8)]
    assert data["skipped"] == [{"backend": "torch", "precision": "int8", "reason": "it runs auto, fp32"}]
    for row in data["rows"]:
        assert row["batches"] == 5 and row["fps"] == pytest.approx(5 * row["batch_size"] / row["wall_s"])
        assert 0 < row["latency_ms_p50"] <= row["latency_ms_p90"] <= row["latency_ms_p99"]
    assert json.loads((out / "bench.json").read_text()) == data
    assert data["host"]["cpus"] >= 1 and "onnxruntime" in data["versions"] and "torch" in data["versions"]
    assert set(data["host"]["isa"]) >= {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16"}


def test_the_markdown_table_has_precision_columns_and_the_isa_line(result):
    out, data = result
    text = (out / "bench.md").read_text()
    table = [l for l in text.splitlines() if l.startswith("| ") and "---" not in l][1:]
    assert len(table) == 9
    marked = {(cells[1], cells[2], int(cells[3].rstrip(" *"))) for cells in (l.split(" | ") for l in table)
              if cells[3].endswith("*")}
    fastest = {(b, pr): max((r for r in data["rows"] if (r["backend"], r["precision"]) == (b, pr)),
                           key=lambda r: r["fps"]) for b, pr in CELLS}
    assert marked == {(b, pr, row["batch_size"]) for (b, pr), row in fastest.items()}
    assert data["host"]["cpu"] in text and "ISA: " in text and "avx2" in text
    assert "Not measured: torch int8" in text


def test_the_plot_is_a_png(result):
    out, _ = result
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_that_arrive_together_do_not_make_a_rate():
    # Two batches finish 1 µs apart: the old gap-based max read 4,000,000 img/s here.
    stamps = [0.0, 1.0, 2.0, 2.000001, 3.0, 4.0]
    figures = bench_figures(stamps, [0.9, 1.0, 1.0, 1.0, 1.0], batch_size=4, warmup=1, in_flight=2)
    assert figures["fps"] == pytest.approx(4 * 4 / 3.0)  # 4 batches after the warm-up, in 3 s
    assert figures["latency_ms_p50"] == pytest.approx(1000.0)
    with pytest.raises(ValueError):
        bench_figures([0.0, 1.0], [1.0], batch_size=1, warmup=1)


def test_timed_batches_that_finish_with_the_warm_up_are_timed_by_their_run_times():
    # Two requests in flight, each batch 1 s: warm-up batch and first timed batch finish together,
    # the second timed one a second later. The gap alone would read 8 images in 1 s; the floor
    # (2 batches of 1 s, two at a time) agrees; with all timed ones finishing at once it rules.
    assert bench_figures([0.0, 1.0, 1.0, 2.0], [1.0] * 3, batch_size=4, warmup=1, in_flight=2)["fps"] == 8.0
    assert bench_figures([0.0, 1.0, 1.0, 1.0], [1.0] * 3, batch_size=4, warmup=1, in_flight=2)["fps"] == 8.0


def test_openvino_with_few_timed_batches_reads_a_rate_its_requests_can_reach(tmp_path):
    """The case that read 976,562 img/s: one warm-up and two timed batches on OpenVINO's two requests."""
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tiny_plugin)
    data = bench(Registry(pm), "tinycnn", ["openvino"], [4], warmup=1, iters=2, output=tmp_path,
                 cache_dir=tmp_path / "cache", precisions=("fp32",))
    row = data["rows"][0]
    assert row["batches"] == 2 and row["in_flight"] >= 1
    # No faster than its requests' own run times allow (p50 of two is their mean).
    assert row["fps"] <= row["in_flight"] * 4 / (row["latency_ms_p50"] / 1000) * (1 + 1e-9)


def test_all_means_every_precision_each_backend_runs_here():
    from modelzoo.bench import cells
    from modelzoo.precision import runnable_here

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tiny_plugin)
    registry = Registry(pm)
    chosen, skipped = cells(registry, ["openvino", "torch"], None)
    assert skipped == [] and ("torch", "fp32") in chosen and ("openvino", "int8") in chosen
    assert [p for b, p in chosen if b == "openvino"] == [p for p in runnable_here(registry.backends["openvino"])
                                                          if p != "auto"]
    with pytest.raises(Exception, match="cannot run int8 here"):  # one backend, one precision: the error
        cells(registry, ["torch"], ("int8",))
