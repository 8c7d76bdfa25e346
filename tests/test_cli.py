"""`modelzoo` as a user runs it: subprocesses, real files, real export and inference."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest

from modelzoo.weights import sha256_of
from modelzoo_lvvit.preprocess import preprocess_image
from tests.conftest import run_cli

REPORT_KEYS = {"model", "backend", "batch_size", "images", "skipped", "top1", "top5", "throughput_fps",
               "e2e_fps", "parity", "weights", "data", "versions", "created"}


def ok(result):
    assert result.returncode == 0, result.stderr
    return result


def error_line(result) -> str:
    """The one line a user error prints, and nothing else (no traceback)."""
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def ort_run(tmp_path_factory, dataset_dir, spread_checkpoint, cache_dir):
    out = tmp_path_factory.mktemp("ort-run")
    result = ok(run_cli("run", "lvvit", "--bs", "4", "--backend", "onnxruntime", "--data", str(dataset_dir),
                        "--weights", str(spread_checkpoint), "--output", str(out), "--cache-dir", str(cache_dir)))
    return out, result


@pytest.mark.slow
def test_run_prints_the_figures_and_writes_the_report(ort_run, dataset_dir, spread_checkpoint):
    out, result = ort_run
    for label in ("top-1", "top-5", "images", "throughput", "end to end"):
        assert label in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert REPORT_KEYS <= report.keys()
    assert report["model"] == "lvvit" and report["backend"] == "onnxruntime" and report["batch_size"] == 4
    assert report["images"] == 6 and report["skipped"] == []
    assert 0 <= report["top1"] <= report["top5"] <= 1
    assert report["throughput_fps"] > 0 and report["e2e_fps"] > 0
    assert report["weights"] == {"path": str(spread_checkpoint.resolve()), "sha256": sha256_of(spread_checkpoint),
                                 "random": False}
    assert report["data"]["demo"] is False and report["data"]["path"] == str(dataset_dir.resolve())
    parity = report["parity"]
    assert parity["max_abs_diff"] < 1e-3 and parity["cosine"] > 0.99999 and parity["check"]["passed"]
    assert parity["outputs"]["features"]["decisive_agreement"] == 1.0 and not parity["degenerate"]
    assert {"python", "torch", "onnx", "onnxruntime", "modelzoo"} <= report["versions"].keys()
    predictions = json.loads((out / "predictions.json").read_text())
    assert sorted(predictions) == [f"ILSVRC2012_val_{i:08d}" for i in range(1, 7)]
    assert all(len(p["top5"]) == len(p["scores"]) == 5 for p in predictions.values())


@pytest.mark.slow
def test_rerun_reuses_cached_artifacts_and_says_so(ort_run, dataset_dir, spread_checkpoint, cache_dir, tmp_path):
    first, _ = ort_run
    result = ok(run_cli("run", "lvvit", "--bs", "4", "--backend", "onnxruntime", "--data", str(dataset_dir),
                        "--weights", str(spread_checkpoint), "--output", str(tmp_path), "--cache-dir", str(cache_dir)))
    assert "reusing cached ONNX export" in result.stderr and "reusing cached simplified ONNX" in result.stderr
    assert "built" not in result.stderr
    assert json.loads((tmp_path / "predictions.json").read_text()) == \
        json.loads((first / "predictions.json").read_text())


@pytest.mark.slow
def test_the_readme_command_works_with_nothing_given(tmp_path, cache_dir):
    result = ok(run_cli("run", "lvvit", "--bs", "4", "--cache-dir", str(cache_dir), cwd=tmp_path))
    assert "RANDOM weights" in result.stderr
    [path] = tmp_path.glob("modelzoo-out/lvvit/*-bs4-demo/report.json")  # the backend auto picked
    report = json.loads(path.read_text())
    assert path.parent.name == f"{report['backend']}-bs4-demo"
    assert report["weights"]["random"] is True and report["data"]["demo"] is True
    assert report["images"] == 8
    assert report["preprocessing"] == {"workers": min(4, os.cpu_count()), "in": "threads"}  # LV-ViT's Pillow


@pytest.mark.slow
def test_a_truncated_image_stops_the_run_or_is_skipped(tmp_path, dataset_dir, spread_checkpoint, cache_dir):
    data = tmp_path / "data"
    shutil.copytree(dataset_dir, data)
    victim = data / "images" / "ILSVRC2012_val_00000003.JPEG"
    victim.write_bytes(victim.read_bytes()[:2000])
    common = ["run", "lvvit", "--bs", "4", "--data", str(data), "--weights", str(spread_checkpoint),
              "--cache-dir", str(cache_dir)]
    out = tmp_path / "out"
    line = error_line(run_cli(*common, "--output", str(out)))
    assert str(victim) in line and "--skip-invalid" in line
    assert not (out / "report.json").exists()

    ok(run_cli(*common, "--output", str(out), "--skip-invalid"))
    report = json.loads((out / "report.json").read_text())
    assert report["images"] == 5
    assert [(s["key"], s["source"]) for s in report["skipped"]] == [("ILSVRC2012_val_00000003", str(victim))]


def test_a_non_image_named_jpeg_is_refused_before_any_export(tmp_path, dataset_dir, spread_checkpoint):
    data = tmp_path / "data"
    shutil.copytree(dataset_dir, data)
    victim = data / "images" / "ILSVRC2012_val_00000002.JPEG"
    victim.write_text("<html>403 Forbidden</html>")
    common = ["run", "lvvit", "--bs", "4", "--data", str(data), "--weights", str(spread_checkpoint),
              "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")]
    line = error_line(run_cli(*common))
    assert line == (f"error: cannot read image {victim}: not an image (no JPEG, PNG, BMP, GIF, TIFF, WebP or PPM "
                    "header); remove it or pass --skip-invalid")
    for image in (data / "images").iterdir():
        image.write_bytes(b"")
    line = error_line(run_cli(*common, "--skip-invalid"))
    assert line.startswith(f"error: no sample left to evaluate: all 6 in {data} are unreadable")
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()  # no export, no output folder


def test_bad_arguments_are_one_line_each(tmp_path, dataset_dir):
    missing = run_cli("run", "lvvit", "--weights", str(tmp_path / "none.pth"), cwd=tmp_path)
    assert "does not exist" in error_line(missing)
    assert "unknown model 'resnet'" in error_line(run_cli("run", "resnet"))
    assert "unknown backend" in error_line(run_cli("run", "lvvit", "--backend", "tpu", "--data", str(dataset_dir)))
    assert "label file" in error_line(run_cli("run", "lvvit", "--data", str(dataset_dir / "images")))
    missing = tmp_path / "nonexistent"
    assert error_line(run_cli("run", "lvvit", "--data", str(missing))) == \
        f"error: data folder {missing} does not exist; check --data"
    (tmp_path / "empty" / "images").mkdir(parents=True)
    empty = error_line(run_cli("run", "lvvit", "--data", str(tmp_path / "empty")))
    assert empty.startswith(f"error: folder {tmp_path / 'empty' / 'images'} holds no images (")
    debug = run_cli("run", "resnet", "--debug")
    assert debug.returncode == 2 and "Traceback" in debug.stderr


@pytest.mark.parametrize("args,message", [
    (("run", "lvvit", "--limit", "-2"), "argument --limit: must be at least 1, got -2"),
    (("run", "lvvit", "--limit", "0"), "argument --limit: must be at least 1, got 0"),
    (("run", "lvvit", "--workers", "-1"), "argument --workers: must be at least 0, got -1"),
    (("run", "lvvit", "--bs", "abc"), "argument --bs/--batchsize: expected a whole number, got 'abc'"),
    (("run", "lvvit", "--bs", "0"), "argument --bs/--batchsize: must be at least 1, got 0"),
    (("run", "lvvit", "--calibration", "0"), "argument --calibration: must be at least 1, got 0"),
    (("run", "lvvit", "--agreement-samples", "-1"), "argument --agreement-samples: must be at least 0, got -1"),
    (("run", "lvvit", "--actors-per-node", "0"), "argument --actors-per-node: must be at least 1, got 0"),
    (("run", "lvvit", "--device", "0,0"), "argument --device: expected distinct device ids"),
    (("run", "lvvit", "--dynamic-batch", "4,0"), "argument --dynamic-batch: batch sizes must be at least 1"),
    (("bench", "lvvit", "--bs", "0"), "argument --bs/--batchsize: batch sizes must be at least 1, got '0'"),
    (("bench", "lvvit", "--iters", "0"), "argument --iters/--loop: must be at least 1, got 0"),
    (("bench", "lvvit", "--warmup", "-1"), "argument --warmup: must be at least 0, got -1"),
    (("bench", "lvvit", "--device", "npu0"), "argument --device: expected distinct device ids"),
    (("export", "lvvit"), "the following arguments are required: --output"),
    (("export", "lvvit", "--output", "x.onnx", "--bs", "-4"), "argument --bs: must be at least 1, got -4"),
    (("preprocess", "lvvit", "--data", "d", "--save-bin", "b", "--workers", "-3"),
     "argument --workers: must be at least 0, got -3"),
], ids=lambda value: " ".join(value) if isinstance(value, tuple) else None)
def test_bad_option_values_are_one_line_before_anything_is_written(tmp_path, args, message):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()  # no usage block, no traceback
    assert line.startswith(f"modelzoo {args[0]}: error: {message}"), line
    assert line.endswith(f"see 'modelzoo {args[0]} --help'")
    assert list(tmp_path.iterdir()) == []  # no output folder, no cache, no export


def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly():
    """`modelzoo list | head -1`: the reader has gone before the listing is written."""
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-m", "modelzoo", "list"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    process.stdout.close()  # long before the interpreter has started and written anything
    stderr = process.stderr.read().decode()
    assert process.wait(timeout=120) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "Exception ignored" not in stderr


def test_list_and_info():
    listing = ok(run_cli("list")).stdout
    assert "lvvit" in listing and "onnxruntime" in listing and "torch" in listing and "available" in listing
    torch_line = next(line for line in listing.splitlines() if line.strip().startswith("torch "))
    assert torch_line.endswith("available; precisions here: auto, fp32")
    info = ok(run_cli("info", "lvvit")).stdout
    assert "image float32 NCHW [batch,3,224,224]" in info and "resize 248, crop 224, interpolation bicubic" in info
    assert "task        kind classification, num_classes 1000" in info and "top1 0.8317 ± 0.005" in info
    assert "310P3 (reference)" in info
    status = next(line for line in info.splitlines() if line.strip().startswith("status"))
    assert "PrecisionStatus:OK" in status and "declared by plugin.toml, not measured" in status
    assert "modelzoo ci --measured" in status


def test_every_subcommand_has_help():
    for command in ("list", "info", "run", "preprocess", "export", "postprocess", "fetch"):
        assert "usage: modelzoo " + command in ok(run_cli(command, "--help")).stdout


def test_preprocess_writes_modelzoo_bin_files(tmp_path, dataset_dir):
    out = tmp_path / "bins"
    result = ok(run_cli("preprocess", "lvvit", "--data", str(dataset_dir), "--save-bin", str(out)))
    assert "wrote 6 .bin files" in result.stdout
    images = sorted((dataset_dir / "images").iterdir())
    assert sorted(p.name for p in out.iterdir()) == [p.name.split(".")[0] + ".bin" for p in images]
    for image in images:
        raw = (out / (image.name.split(".")[0] + ".bin")).read_bytes()
        assert len(raw) == 602_112
        array = np.frombuffer(raw, dtype="<f4").reshape(3, 224, 224)
        assert np.array_equal(array, preprocess_image(image))


@pytest.mark.slow
def test_export_static_and_dynamic(tmp_path, spread_checkpoint, cache_dir):
    static = tmp_path / "lvvit_bs1.onnx"
    result = ok(run_cli("export", "lvvit", "--weights", str(spread_checkpoint), "--output", str(static),
                        "--bs", "1", "--cache-dir", str(cache_dir)))
    assert "parity torch vs ONNX Runtime" in result.stdout
    dynamic = tmp_path / "lvvit_dyn.onnx"
    ok(run_cli("export", "lvvit", "--weights", str(spread_checkpoint), "--output", str(dynamic),
               "--dynamic", "--cache-dir", str(cache_dir)))

    def dims(path):
        graph = onnx.load(str(path)).graph
        return [[d.dim_value or d.dim_param for d in t.type.tensor_type.shape.dim] for t in (graph.input[0], graph.output[0])]

    assert dims(static) == [[1, 3, 224, 224], [1, 1000]]
    (batch_in, *rest_in), (batch_out, _) = dims(dynamic)
    assert isinstance(batch_in, str) and isinstance(batch_out, str) and rest_in == [3, 224, 224]
    assert onnx.load(str(static)).opset_import[0].version == 13
    assert [t.name for t in onnx.load(str(static)).graph.input] == ["image"]


def write_txt_result(path: Path, row: np.ndarray) -> None:
    """ais_bench's TXT format: '%f ' per value, newline per row."""
    path.write_text("".join(f"{v:f} " for v in row) + "\n")


def test_postprocess_scores_ais_bench_results_by_name(tmp_path):
    rng = np.random.default_rng(0)
    results = tmp_path / "result" / "2026_11_25-10_00_00"
    results.mkdir(parents=True)
    labels = []
    for i, cls in enumerate([5, 17, 999]):
        row = rng.standard_normal(1000).astype(np.float32)
        row[cls] = 100 if i != 2 else -100  # the third image is wrong on top-1 and top-5
        write_txt_result(results / f"ILSVRC2012_val_{i + 1:08d}_0.txt", row)
        labels.append(f"ILSVRC2012_val_{i + 1:08d}.JPEG {cls}")
    write_txt_result(results / "unlabelled_0.txt", rng.standard_normal(1000))
    (tmp_path / "result" / "2026_11_25-10_00_00_summary.json").write_text("{}")
    (results / "_summary.json").write_text("{}")
    labels.append("ILSVRC2012_val_00000099.JPEG 3")  # a label without a result
    (tmp_path / "val_label.txt").write_text("\n".join(reversed(labels)) + "\n")
    out = ok(run_cli("postprocess", "lvvit", "--result-path", str(results), "--labels",
                     str(tmp_path / "val_label.txt"), "--output", str(tmp_path / "scores.json"))).stdout
    assert "images: 3" in out and "top-1: 0.6667" in out and "top-5: 0.6667" in out
    assert "results without label: 1" in out and "labels without result: 1" in out
    assert json.loads((tmp_path / "scores.json").read_text())["top1"] == pytest.approx(2 / 3)


@pytest.mark.slow
def test_int8_run_reports_its_agreement_with_fp32(tmp_path, dataset_dir, spread_checkpoint, cache_dir):
    # OpenVINO named: auto takes whichever int8 backend it measures fastest on this host.
    result = ok(run_cli("run", "lvvit", "--bs", "4", "--backend", "openvino", "--precision", "int8",
                        "--data", str(dataset_dir), "--calibration", "4", "--weights", str(spread_checkpoint), "--output", str(tmp_path),
                        "--cache-dir", str(cache_dir)))
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["backend"] == "openvino" and report["precision"] == "int8"  # NNCF static int8
    assert report["calibration"]["images"] == 4 and report["calibration"]["source"] == "data"
    for where in ("parity_inputs", "run_samples"):
        agreement = report["agreement"][where]
        assert 0 <= agreement["top1_agreement"] <= 1 and 0 < agreement["cosine"] <= 1 + 1e-9
    assert report["agreement"]["run_samples"]["images"] == 6
    assert "int8 against torch fp32 on 6 of this run's samples" in result.stdout


class _Payload:
    def __init__(self, target: str):
        self.target = target

    def __reduce__(self):
        import os
        return (os.mkdir, (self.target,))


def test_a_checkpoint_that_would_run_code_is_refused_by_the_cli(tmp_path, dataset_dir):
    import torch

    marker = tmp_path / "payload-ran"
    evil = tmp_path / "lvvit_s-26M-224-83.3.pth.tar"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": _Payload(str(marker))}, evil)
    line = error_line(run_cli("run", "lvvit", "--weights", str(evil), "--data", str(dataset_dir),
                              "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache")))
    assert "not a plain checkpoint" in line and str(evil) in line
    assert not marker.exists()


def test_export_to_an_unwritable_place_is_one_line(tmp_path, spread_checkpoint, cache_dir):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    line = error_line(run_cli("export", "lvvit", "--weights", str(spread_checkpoint), "--bs", "1",
                              "--output", str(blocker / "x.onnx"), "--cache-dir", str(cache_dir)))
    assert str(blocker / "x.onnx") in line and "--output" in line
