"""`--backend auto` runs the backend measured fastest for the model, batch size, precision and host:
figures recorded in the cache (an earlier probe, or `modelzoo bench`) are taken as they are, missing
ones are probed, and an Ascend host takes its NPU without measuring."""
from __future__ import annotations

import json

import pytest

from modelzoo import autochoice
from modelzoo.autochoice import measurement_key, read_figures, record_figure
from modelzoo.bench import bench
from modelzoo.pipeline import RunOptions, run


def options(tmp_path, data, weights, **extra) -> RunOptions:
    return RunOptions(**{"model": "tinycnn", "batch_size": 3, "data": data, "weights": weights,
                         "output": tmp_path / "out", "cache_dir": tmp_path / "cache", "workers": 0, "quiet": True,
                         "fresh": True, **extra})


def no_probe(*args):
    raise AssertionError("probed although figures were recorded")


def record(registry, cache_root, fps: dict[str, float], batch_size=3, precision="auto"):
    key = measurement_key(registry.model("tinycnn"), batch_size, precision)
    for name, value in fps.items():
        record_figure(cache_root, key, registry.backends[name], value, "fp32", "written by the test")


def test_a_probe_measures_every_candidate_once_and_its_record_is_reused(tmp_path, tiny_registry, tiny_data,
                                                                        tiny_weights, monkeypatch):
    first = run(tiny_registry, options(tmp_path, tiny_data, tiny_weights))
    choice = first["backend_choice"]
    candidates = [b.name for b in tiny_registry.candidates("auto")[0]]
    assert sorted(choice["figures"]) == sorted(candidates) and choice["probe_s"] > 0
    assert {f["source"] for f in choice["figures"].values()} == {"probe"}
    fastest = max(choice["figures"], key=lambda name: choice["figures"][name]["fps"])
    assert first["backend"] == fastest and choice["reason"].startswith(f"auto: {fastest} measured fastest")
    assert first["images"] == 7 and first["throughput_fps"] > 0

    monkeypatch.setattr(autochoice, "probe", no_probe)  # the same key again: the record answers
    again = run(tiny_registry, options(tmp_path, tiny_data, tiny_weights))
    assert again["backend"] == fastest and again["backend_choice"]["figures"] == choice["figures"]
    assert again["backend_choice"]["probe_s"] == 0

    with pytest.raises(AssertionError, match="probed although"):  # another batch size is another key
        run(tiny_registry, options(tmp_path, tiny_data, tiny_weights, batch_size=2))


@pytest.mark.parametrize("fps", [{"onnxruntime": 900.0, "openvino": 300.0, "torch": 100.0},
                                 {"onnxruntime": 300.0, "openvino": 900.0, "torch": 100.0},
                                 {"onnxruntime": 100.0, "openvino": 300.0, "torch": 900.0}],
                         ids=["onnxruntime", "openvino", "torch"])
def test_the_choice_follows_the_recorded_figures(tmp_path, tiny_registry, tiny_data, tiny_weights, monkeypatch,
                                                 fps):
    record(tiny_registry, tmp_path / "cache", fps)
    monkeypatch.setattr(autochoice, "probe", no_probe)
    report = run(tiny_registry, options(tmp_path, tiny_data, tiny_weights))
    assert report["backend"] == max(fps, key=fps.get)
    assert {name: f["fps"] for name, f in report["backend_choice"]["figures"].items()} == fps
    assert json.loads((tmp_path / "out" / "report.json").read_text())["backend_choice"] == report["backend_choice"]


def test_a_missing_figure_is_probed_and_a_faster_recorded_one_still_wins(tmp_path, tiny_registry, tiny_data,
                                                                          tiny_weights):
    record(tiny_registry, tmp_path / "cache", {"onnxruntime": 1e9, "openvino": 1.0})  # torch has none
    report = run(tiny_registry, options(tmp_path, tiny_data, tiny_weights))
    figures = report["backend_choice"]["figures"]
    assert report["backend"] == "onnxruntime" and figures["torch"]["source"] == "probe"
    assert figures["onnxruntime"]["source"] == "written by the test" and report["backend_choice"]["probe_s"] > 0


def test_a_figure_measured_on_other_library_versions_is_measured_again(tmp_path, tiny_registry, monkeypatch):
    record(tiny_registry, tmp_path, {"onnxruntime": 5.0, "torch": 7.0})
    key = measurement_key(tiny_registry.model("tinycnn"), 3, "auto")
    ort, torch = tiny_registry.backends["onnxruntime"], tiny_registry.backends["torch"]
    assert set(read_figures(tmp_path, key, [ort, torch])) == {"onnxruntime", "torch"}
    monkeypatch.setattr(type(ort), "versions", lambda self: {"onnxruntime": "0.0-other"})
    assert set(read_figures(tmp_path, key, [ort, torch])) == {"torch"}


def test_an_earlier_bench_of_the_same_key_decides(tmp_path, tiny_registry, tiny_data, tiny_weights, monkeypatch):
    bench(tiny_registry, "tinycnn", ["onnxruntime", "openvino", "torch"], [3], 1, 3, tmp_path / "bench",
          tmp_path / "cache", tiny_weights)
    rows = json.loads((tmp_path / "bench" / "bench.json").read_text())["rows"]
    monkeypatch.setattr(autochoice, "probe", no_probe)
    report = run(tiny_registry, options(tmp_path, tiny_data, tiny_weights))
    assert report["backend"] == max(rows, key=lambda row: row["fps"])["backend"]
    figures = report["backend_choice"]["figures"]
    assert {name: f["fps"] for name, f in figures.items()} == {row["backend"]: row["fps"] for row in rows}
    assert {f["source"] for f in figures.values()} == {f"modelzoo bench ({tmp_path / 'bench' / 'bench.json'})"}


def test_an_ascend_host_takes_the_npu_without_measuring(fake_ascend, tmp_path, tiny_registry, monkeypatch):
    from modelzoo.backends.base import BackendSettings

    monkeypatch.setattr(autochoice, "probe", no_probe)
    record(tiny_registry, tmp_path, {"onnxruntime": 1e9})  # a fast CPU figure does not matter
    choice = autochoice.choose(tiny_registry, tiny_registry.model("tinycnn"), 3, BackendSettings(workdir=tmp_path),
                               no_probe, tmp_path)
    assert choice.backend.name == "ascend" and choice.session is None
    assert choice.report["reason"] == "auto: ascend runs on this host's NPU, taken without measuring"
