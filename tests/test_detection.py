"""A detector through the unchanged runner: pictures of several sizes letterboxed to 64x64, whose
scale and padding (each sample's meta) must reach postprocess to map boxes back, fixed-size
candidates, NMS, and COCO mAP from pycocotools. Through the mock runner, `run` on every CPU backend
(worker processes too), the fake Ascend toolchain (files and stream), resume, the split
preprocess/postprocess steps, `bench` and `ci`.

The oracle is the torch model called directly by the test on the same samples, its outputs put
through the plugin's postprocess with the metas its preprocess returned and scored by the COCO
evaluator; the ground truth is the rectangles the test drew, so a high mAP means the boxes are right.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import tests.plugins.tinydet.plugin as tinydet
from modelzoo.api import UserError
from modelzoo.backends.ascend.options import AscendOptions
from modelzoo.bench import bench
from modelzoo.pipeline import RunOptions, run
from modelzoo.registry import Registry
from modelzoo.steps import METAS_FILE, postprocess, preprocess_to_bin
from modelzoo.testing.mock import MockRunner
from modelzoo.zoo_ci import run_ci
from tests.conftest import registry_with
from tests.plugins.tinydet import task as det_task
from tests.plugins.tinydet.scenes import write_scenes

SEED = 3
BATCH = 4  # 14 pictures: a short last batch


@pytest.fixture(scope="module")
def registry() -> Registry:
    return registry_with(tinydet)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_scenes(tmp_path_factory.mktemp("scenes"), 14, seed=11)


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    model = tinydet.build("standard")
    tinydet.init_random(model, SEED)
    path = tmp_path_factory.mktemp("det-weights") / "tinydet.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("det-cache")


def torch_run(data: Path, weights: Path) -> tuple[list, dict, dict]:
    """Samples, each one's raw outputs and meta, from the torch model called on the plugin's preprocessing."""
    entry = MockRunner(tinydet).model("tinydet")
    model = tinydet.build("standard")
    model.load_state_dict(torch.load(weights, weights_only=True))
    samples = entry.task.load_dataset(data).samples
    loaded = [entry.preprocess(s.source) for s in samples]
    with torch.inference_mode():
        boxes, scores = model(torch.from_numpy(np.stack([inputs["image"] for inputs, _ in loaded])))
    outputs = {"boxes": boxes.numpy(), "scores": scores.numpy()}
    return samples, outputs, {s.key: meta for s, (_, meta) in zip(samples, loaded)}


def score(samples: list, outputs: dict, metas: list) -> tuple[list, dict]:
    task = det_task.Detection()
    records = task.postprocess(outputs, metas)
    evaluator = task.evaluator()
    evaluator.update(records, [s.target for s in samples])
    return records, evaluator.compute()


@pytest.fixture(scope="module")
def expected(data, weights) -> tuple[dict, dict, dict]:
    """Per key the torch model's record and meta, and the metrics over them."""
    samples, outputs, metas = torch_run(data, weights)
    records, metrics = score(samples, outputs, [metas[s.key] for s in samples])
    assert metrics["map50"] > 0.9 and metrics["map"] > 0.6  # the boxes really find the rectangles
    assert len({tuple(m["size"]) for m in metas.values()}) >= 4  # several sizes: several scales
    return dict(zip([s.key for s in samples], records)), metas, metrics


def assert_matches(output: Path, report: dict, expected: tuple[dict, dict, dict]) -> None:
    """The run's records, stored metas and metrics are the torch model's, sample by sample."""
    records, metas, metrics = expected
    predictions = json.loads((output / "predictions.json").read_text())
    assert predictions.keys() == records.keys()
    for key, record in predictions.items():
        assert record["labels"] == records[key]["labels"], key
        np.testing.assert_allclose(record["boxes"], records[key]["boxes"], atol=1e-3, err_msg=key)
        np.testing.assert_allclose(record["scores"], records[key]["scores"], atol=1e-5, err_msg=key)
    assert stored_metas(output) == json.loads(json.dumps(metas))
    assert report["metrics"] == pytest.approx(metrics)
    assert report["map"] == pytest.approx(metrics["map"]) and report["images"] == len(records)


def stored_metas(output: Path) -> dict:
    lines = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()[1:]]
    return {k: m for line in lines for k, m in zip(line["keys"], line["metas"], strict=True)}


def run_det(registry, weights, cache, data, output: Path, **options) -> dict:
    return run(registry, RunOptions(model="tinydet", weights=weights, data=data, output=output, cache_dir=cache,
                                    quiet=True, **{"batch_size": BATCH, "workers": 0, **options}))


# ---------------------------------------------------------------- the plugin alone


def test_the_plugin_keeps_the_contract():
    MockRunner(tinydet).check_model("tinydet")


def test_numpy_nms_keeps_what_torchvision_keeps():
    from torchvision.ops import nms as torchvision_nms

    rng = np.random.default_rng(0)
    for trial in range(20):
        corners = rng.uniform(0, 50, size=(40, 2))
        boxes = np.concatenate([corners, corners + rng.uniform(2, 30, size=(40, 2))], axis=1).astype(np.float32)
        scores = rng.permutation(40).astype(np.float32) / 40  # distinct: the order is not up to ties
        for iou in (0.3, 0.5, 0.7):
            kept = det_task.nms(boxes, scores, iou)
            assert kept.tolist() == torchvision_nms(torch.from_numpy(boxes), torch.from_numpy(scores), iou).tolist()
            assert 0 < len(kept) < 40 or iou == 0.7


def test_a_meta_that_ignores_the_scale_loses_the_boxes(data, weights, expected):
    """The meta is what puts boxes back on the picture: scale or padding ignored, mAP falls."""
    samples, outputs, metas = torch_run(data, weights)
    good = expected[2]["map"]
    for broken in ({"scale": 1.0}, {"pad": [0, 0]}):
        _, metrics = score(samples, outputs, [{**metas[s.key], **broken} for s in samples])
        assert metrics["map"] < good - 0.3, broken


def test_bad_annotations_are_one_line_naming_the_file(tmp_path):
    (tmp_path / "annotations.json").write_text('{"images": [{"id": 1}]}')
    with pytest.raises(UserError, match=r"cannot read COCO annotations .*annotations.json \(KeyError"):
        det_task.Detection().load_dataset(tmp_path)


# ---------------------------------------------------------------- through the runner


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
def test_every_cpu_backend_gives_the_torch_models_boxes_and_map(registry, weights, cache, data, expected, tmp_path,
                                                               backend):
    # One backend's run preprocesses in spawned worker processes: metas come back through pickling.
    report = run_det(registry, weights, cache, data, tmp_path, backend=backend, precision="fp32",
                     workers=2 if backend == "onnxruntime" else 0)
    assert report["backend"] == backend and report["task"] == "detection"
    assert_matches(tmp_path, report, expected)


def test_int8_calibrates_on_the_letterboxes_and_keeps_the_metas(registry, weights, cache, data, expected, tmp_path):
    """Calibration reads preprocess's inputs and leaves its metas; the records still map back."""
    report = run_det(registry, weights, cache, data, tmp_path, backend="openvino", precision="int8", calibration=4)
    assert report["calibration"]["images"] == 4
    assert stored_metas(tmp_path) == json.loads(json.dumps(expected[1]))
    assert report["metrics"]["map50"] > 0.5


@pytest.mark.parametrize("io", ["files", "stream"])
def test_the_fake_ascend_toolchain_gives_the_torch_models_boxes(registry, weights, cache, data, expected, tmp_path,
                                                               fake_ascend, io):
    report = run_det(registry, weights, cache, data, tmp_path, backend="ascend", precision="fp32",
                     backend_options={"ascend": AscendOptions(io=io)})
    assert report["backend"] == "ascend"
    assert_matches(tmp_path, report, expected)


def test_metas_survive_a_resume(registry, weights, cache, data, expected, tmp_path):
    """A run stopped after its first batches (a torn line after them) resumes to the one-shot run's
    results.jsonl metas, records and metrics."""
    full = run_det(registry, weights, cache, data, tmp_path / "full", backend="onnxruntime")
    lines = (tmp_path / "full" / "results.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "results.jsonl").write_text("".join(lines[:3]) + lines[3][:60])
    resumed = run_det(registry, weights, cache, data, tmp_path / "cut", backend="onnxruntime")
    assert resumed["resumed_images"] == 2 * BATCH
    assert resumed["metrics"] == full["metrics"]
    assert stored_metas(tmp_path / "cut") == stored_metas(tmp_path / "full")
    assert_matches(tmp_path / "cut", resumed, expected)


def test_the_split_steps_carry_metas_from_preprocess_to_postprocess(registry, data, weights, expected, tmp_path):
    """`modelzoo preprocess` writes metas.jsonl beside the .bin files; `postprocess --metas` after
    another tool's inference (here: the torch model writing ais_bench's result files) uses them."""
    entry = registry.model("tinydet")
    assert preprocess_to_bin(entry, data, tmp_path / "bins", workers=0, skip_invalid=False, quiet=True) == 14
    model = tinydet.build("standard")
    model.load_state_dict(torch.load(weights, weights_only=True))
    (tmp_path / "result").mkdir()
    for path in sorted((tmp_path / "bins").glob("*.bin")):
        image = np.fromfile(path, dtype="<f4").reshape(1, 3, 64, 64)
        with torch.inference_mode():
            boxes, scores = model(torch.from_numpy(image))
        boxes.numpy().tofile(tmp_path / "result" / f"{path.stem}_0.bin")
        scores.numpy().tofile(tmp_path / "result" / f"{path.stem}_1.bin")
    scores = postprocess(entry, tmp_path / "result", data, None, None, tmp_path / "bins" / METAS_FILE)
    assert {k: scores[k] for k in ("images", "map", "map50")} == pytest.approx(expected[2])
    with pytest.raises(UserError, match=r"needs each sample's meta: pass --metas with the metas.jsonl"):
        postprocess(entry, tmp_path / "result", data, None, None)


# ---------------------------------------------------------------- bench and ci


def test_bench_measures_the_detector(registry, weights, cache, tmp_path):
    report = bench(registry, "tinydet", ["onnxruntime"], [1, 4], warmup=1, iters=3, output=tmp_path,
                   cache_dir=cache, weights=weights)
    assert [r["batch_size"] for r in report["rows"]] == [1, 4] and all(r["fps"] > 0 for r in report["rows"])


def test_ci_checks_the_detector_from_its_manifest(cache, tmp_path):
    code = run_ci([det_task.HERE], tmp_path, load_entrypoints=False, quiet=True, cache_dir=cache)
    ci = json.loads((tmp_path / "ci.json").read_text())
    assert code == 0, ci
    model = ci["models"]["tinydet"]
    assert {c["status"] for c in model["checks"].values()} == {"pass"}, model["checks"]
    assert model["smoke"]["images"] == 4 and model["smoke"]["metrics"]["map50"] > 0.5
    parity = model["parity"]
    assert parity["outputs"]["boxes"]["compare"] == "values" and parity["outputs"]["scores"]["compare"] == "scores"
    assert parity["degenerate"] is False  # the plugin's example scenes give outputs that vary
