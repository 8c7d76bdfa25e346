"""Two more test plugins through the unchanged runner: a two-input text classifier (int64 token ids
and a mask, JSONL, padding collate, accuracy and macro-F1) and a segmenter (per-pixel argmax, PNG
masks, mIoU). Each goes through the mock runner, `run` on every CPU backend and the fake Ascend
toolchain (files and stream), resume, `bench` and `ci`.

The oracle is the torch model called directly by the test, and metrics are computed here from
its outputs, in the test's own way; nothing is copied from the plugins' postprocess or evaluators.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import re
import shlex
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import tests.plugins.tinyseg.plugin as tinyseg
import tests.plugins.tinyseg.task as seg_task
import tests.plugins.tinytext.plugin as tinytext
import tests.plugins.tinytext.task as text_task
from modelzoo.api import UserError, load_manifest
from modelzoo.backends.ascend.options import AscendOptions
from modelzoo.bench import bench
from modelzoo.pipeline import RunOptions, run
from modelzoo.registry import Registry
from modelzoo.steps import postprocess, preprocess_to_bin
from modelzoo.testing.mock import MockRunner
from modelzoo.weights import fetch_weights
from modelzoo.zoo_ci import run_ci
from tests.conftest import registering, registry_with

PLUGINS = {"tinytext": tinytext, "tinyseg": tinyseg}
# Seeds whose random weights predict several classes on the demo data (asserted below).
SEEDS = {"tinytext": 4, "tinyseg": 1}
BATCH = 4  # 12 texts: three full batches; 6 pictures: a short last batch


@pytest.fixture(scope="module")
def registry() -> Registry:
    return registry_with(*PLUGINS.values())


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("generic-weights")
    paths = {}
    for name, plugin in PLUGINS.items():
        model = plugin.build("standard")
        plugin.init_random(model, SEEDS[name])
        paths[name] = folder / f"{name}.pth"
        torch.save(model.state_dict(), paths[name])
    return paths


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("generic-cache")


def torch_outputs(name: str, weights: Path) -> tuple[list[str], list, np.ndarray]:
    """Keys, targets and the model's outputs for every demo sample, from torch alone, each sample
    alone and unpadded."""
    plugin = PLUGINS[name]
    model = plugin.build("standard")
    model.load_state_dict(torch.load(weights, weights_only=True))
    entry = MockRunner(plugin).model(name)
    samples = entry.task.load_dataset(entry.demo_data).samples
    rows = [entry.preprocess(s.source) for s in samples]
    with torch.inference_mode():
        if name == "tinytext":
            out = [model(torch.from_numpy(row["input_ids"][None]),
                         torch.ones((1, len(row["input_ids"])), dtype=torch.int64))[0].numpy() for row in rows]
        else:  # (pixels, meta): each picture at its own size
            out = [model(torch.from_numpy(pixels[None]))[0].numpy() for pixels, _ in rows]
    return [s.key for s in samples], [s.target for s in samples], out


def text_metrics(targets, labels) -> dict:
    """Accuracy and macro-F1 of `labels` from precision and recall."""
    labels, truth = np.array(labels), np.array(targets)
    f1 = []
    for c in sorted(set(truth) | set(labels)):
        tp = np.sum((labels == c) & (truth == c))
        precision = tp / max(np.sum(labels == c), 1)
        recall = tp / max(np.sum(truth == c), 1)
        f1.append(2 * precision * recall / (precision + recall) if tp else 0.0)
    return {"samples": len(labels), "accuracy": float(np.mean(labels == truth)), "macro_f1": float(np.mean(f1))}


def seg_metrics(targets, masks, classes: int) -> dict:
    """IoU of every class as intersection over union of pixel sets, their mean, pixel accuracy."""
    truths = []
    for target in targets:
        with Image.open(target) as mask:
            truths.append(np.asarray(mask))
    ious = []
    for c in range(classes):
        inter = sum(np.sum((m == c) & (t == c)) for m, t in zip(masks, truths))
        union = sum(np.sum((m == c) | (t == c)) for m, t in zip(masks, truths))
        ious.append(inter / union if union else None)
    present = [v for v in ious if v is not None]
    correct = sum(np.sum(m == t) for m, t in zip(masks, truths))
    return {"images": len(masks), "miou": float(np.mean(present)),
            "pixel_accuracy": float(correct / sum(t.size for t in truths)), "iou": ious}


@pytest.fixture(scope="module")
def expected(weights) -> dict[str, tuple[list[str], list, list[np.ndarray]]]:
    """Per plugin the torch model's keys, targets and per-sample logits (class axis last)."""
    found = {name: torch_outputs(name, weights[name]) for name in PLUGINS}
    found["tinyseg"] = (*found["tinyseg"][:2], [np.moveaxis(picture, 0, -1) for picture in found["tinyseg"][2]])
    # Outputs that all look alike would make agreement prove nothing.
    assert len({int(logits.argmax()) for logits in found["tinytext"][2]}) == 3
    assert len(np.unique(np.concatenate([p.argmax(-1).ravel() for p in found["tinyseg"][2]]))) == 4
    return found


def decode_runs(record: dict) -> np.ndarray:
    values = [v for v, n in record["runs"] for _ in range(n)]
    return np.array(values).reshape(record["size"])


ATOL = 1e-4  # what the report's parity allows a CPU backend or the fake Ascend toolchain


def assert_matches(name: str, output: Path, report: dict, expected: dict) -> None:
    """The run's records are the torch model's, sample by sample (classes wherever torch's top-1
    margin exceeds twice ATOL: a near tie may flip in a correct backend), and its metrics are those
    of its own records."""
    keys, targets, per_sample = expected[name]
    records = json.loads((output / "predictions.json").read_text())
    assert sorted(records) == sorted(keys)
    settled = [np.diff(np.sort(logits, axis=-1)[..., -2:], axis=-1)[..., 0] > 2 * ATOL for logits in per_sample]
    assert np.concatenate([s.ravel() for s in settled]).mean() > 0.9  # most of the answers are compared
    if name == "tinytext":
        logits, settled = np.stack(per_sample), np.array(settled)
        labels = np.array([records[k]["label"] for k in keys])
        np.testing.assert_array_equal(labels[settled], logits.argmax(-1)[settled])
        probability = np.exp(logits[np.arange(len(keys)), labels]) / np.exp(logits).sum(-1)
        np.testing.assert_allclose([records[k]["score"] for k in keys], probability, atol=1e-5)
        metrics = text_metrics(targets, labels)
    else:
        masks = [decode_runs(records[k]) for k in keys]
        for mask, logits, sure in zip(masks, per_sample, settled):
            np.testing.assert_array_equal(mask[sure], logits.argmax(-1)[sure])
        metrics = seg_metrics(targets, masks, per_sample[0].shape[-1])
    assert report["images"] == len(keys)
    got = dict(report["metrics"])
    assert got.pop("iou", None) == pytest.approx(metrics.get("iou"))
    assert got == pytest.approx({k: v for k, v in metrics.items() if k != "iou"})


def run_model(registry, weights, cache, name: str, output: Path, **options) -> dict:
    return run(registry, RunOptions(model=name, weights=weights[name], output=output, cache_dir=cache,
                                    quiet=True, **{"batch_size": BATCH, "workers": 0, **options}))


# ---------------------------------------------------------------- the plugins alone


@pytest.mark.parametrize("name", PLUGINS)
def test_the_plugins_keep_the_contract(name):
    MockRunner(PLUGINS[name]).check_model(name)


def test_text_collate_pads_to_the_longest_text_and_masks():
    rows = [{"input_ids": np.array([5, 6, 7])}, {"input_ids": np.arange(1, 21)}, {"input_ids": np.array([], int)}]
    batch = text_task.collate(rows)
    assert batch["input_ids"].dtype == batch["attention_mask"].dtype == np.int64
    assert batch["input_ids"].tolist() == [[5, 6, 7] + [0] * 17, list(range(1, 21)), [0] * 20]
    assert batch["attention_mask"].tolist() == [[1] * 3 + [0] * 17, [1] * 20, [0] * 20]
    assert text_task.collate([{"input_ids": np.array([], int)}])["input_ids"].shape == (1, 1)  # the axis's min
    ids = text_task.tokenize("Rain, rain AND wind!")
    assert len(ids) == 4 and ids[0] == ids[1] != ids[3] and all(1 <= i < 64 for i in ids)
    assert len(text_task.preprocess("word " * 100)["input_ids"]) == 64  # cut at the axis's max


def test_bad_data_is_one_line_naming_the_file(tmp_path):
    (tmp_path / "samples.jsonl").write_text('{"id": "a", "text": "ok", "label": 1}\n{"id": "b", "text": "x"}\n')
    with pytest.raises(UserError, match=r"samples.jsonl line 2 is not a JSON object .*; fix that line"):
        text_task.TextClassification(3).load_dataset(tmp_path)
    (tmp_path / "images").mkdir()
    shutil.copy(seg_task.HERE / "demo" / "images" / "scene0.png", tmp_path / "images" / "lonely.png")
    with pytest.raises(UserError, match=r"picture .*lonely.png has no mask .*masks/lonely.png"):
        seg_task.Segmentation(4).load_dataset(tmp_path)


def test_a_model_without_weights_runs_random_and_has_nothing_to_fetch(registry, cache, tmp_path, capsys):
    report = run(registry, RunOptions(model="tinytext", backend="torch", output=tmp_path, cache_dir=cache,
                                      workers=0))  # not quiet: the full banner, with where weights come from
    assert report["weights"]["random"] is True and report["metrics"]["samples"] == 12
    banner = capsys.readouterr().err
    assert "seeded RANDOM weights" in banner and "The plugin publishes no checkpoint: pass --weights PATH." in banner
    assert "modelzoo fetch" not in banner
    with pytest.raises(UserError, match=r"plugin.toml names no \[weights\] to download"):
        fetch_weights(text_task.MANIFEST)


# ---------------------------------------------------------------- through the runner


@pytest.mark.parametrize("backend", ["torch", "onnxruntime", "openvino"])
@pytest.mark.parametrize("name", PLUGINS)
def test_every_cpu_backend_gives_the_torch_models_records_and_metrics(registry, weights, cache, expected,
                                                                     tmp_path, name, backend):
    # One backend's runs also preprocess in spawned worker processes, as a user's runs do. fp32: the
    # records must equal torch's (the default may run bf16, whose drift the report measures instead).
    report = run_model(registry, weights, cache, name, tmp_path, backend=backend,
                       workers=2 if backend == "onnxruntime" else 0, precision="fp32")
    assert report["backend"] == backend and report["task"] == PLUGINS[name].MANIFEST.task["kind"]
    assert_matches(name, tmp_path, report, expected)
    if backend != "torch":
        assert report["parity"]["max_abs_diff"] < 1e-4 and report["parity"]["check"]["passed"]
        assert not report["parity"]["degenerate"]


@pytest.mark.parametrize("name", PLUGINS)
def test_a_partial_run_resumes_to_the_same_report(registry, weights, cache, tmp_path, name):
    """A killed run leaves its header, whole batches and perhaps a torn line: the rerun infers the rest."""
    full = run_model(registry, weights, cache, name, tmp_path / "full", backend="onnxruntime", batch_size=2)
    lines = (tmp_path / "full" / "results.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "results.jsonl").write_text("".join(lines[:3]) + lines[3][:40])
    resumed = run_model(registry, weights, cache, name, tmp_path / "cut", backend="onnxruntime", batch_size=2)
    assert resumed["resumed_images"] == 4
    assert resumed["metrics"] == full["metrics"]
    assert json.loads((tmp_path / "cut" / "predictions.json").read_text()) == \
        json.loads((tmp_path / "full" / "predictions.json").read_text())


@pytest.mark.parametrize("io", ["files", "stream"])
@pytest.mark.parametrize("name", PLUGINS)
def test_the_fake_ascend_toolchain_gives_the_torch_models_records(registry, weights, cache, expected, tmp_path,
                                                                 caplog, fake_ascend, name, io):
    caplog.set_level(logging.INFO, logger="modelzoo")
    # fp32 (force_fp32): the fake chip then computes what torch does; at atc's default fp16 it rounds
    # every op (tests/test_compare.py).
    report = run_model(registry, weights, cache, name, tmp_path, backend="ascend", precision="fp32",
                       backend_options={"ascend": AscendOptions(io=io)})
    assert report["backend"] == "ascend"
    assert_matches(name, tmp_path, report, expected)
    work = tmp_path / "ascend"
    if io == "stream":
        assert not work.exists()
        return
    # One ais_bench call per gear used, each at its gear (--dymDims / --dymHW) with its own folders.
    calls = [shlex.split(r.getMessage().split("running: ", 1)[1]) for r in caplog.records
             if "-m ais_bench" in r.getMessage()]
    dirnames = [argv[argv.index("--output_dirname") + 1] for argv in calls]
    assert len(set(dirnames)) == len(calls) >= 1
    for argv, dirname in zip(calls, dirnames):
        gear = {n: int(v) for n, v in re.findall(r"([a-z]+)(\d+)", dirname.partition("-")[2])}
        if name == "tinytext":
            assert argv[argv.index("--dymDims") + 1] == f"input_ids:{BATCH},{gear['seq']};attention_mask:{BATCH},{gear['seq']}"
        else:
            assert argv[argv.index("--dymHW") + 1] == f"{gear['height']},{gear['width']}"
        folders = argv[argv.index("--input") + 1].split(",")
        device = work / "input" / "device0" / dirname.partition("-")[2]
        assert folders == ([f"{device}/input_ids", f"{device}/attention_mask"] if name == "tinytext" else [f"{device}"])
    written = sorted(p.name for d in dirnames for p in (work / "output" / d).glob("*.bin"))
    assert written == sorted(f"{k}_0.bin" for k in expected[name][0])
    # The padding figure counts what the gears computed: each sample at its call's gear.
    own, computed = own_elements(name), 0
    for dirname in dirnames:
        gear = [int(v) for v in re.findall(r"\d+", dirname.partition("-")[2])]
        computed += len(list((work / "output" / dirname).glob("*_0.bin"))) * int(np.prod(gear))
    assert report["padding"][PLUGINS[name].MANIFEST.inputs[0].name] == round(sum(own.values()) / computed, 4) < 1


def own_elements(name: str) -> dict[str, int]:
    """Each demo sample's own size: its token count, or its height times width."""
    entry = MockRunner(PLUGINS[name]).model(name)
    samples = entry.task.load_dataset(entry.demo_data).samples
    if name == "tinytext":
        return {s.key: len(entry.preprocess(s.source)["input_ids"]) for s in samples}
    return {s.key: int(np.prod(entry.preprocess(s.source)[0].shape[1:])) for s in samples}


def test_the_split_steps_score_a_text_model_whose_inputs_vary_in_length(registry, weights, expected, tmp_path):
    """`preprocess` writes each text at its own length, one folder per input; another tool's results
    (here torch's, as ais_bench names them) score as the run does."""
    entry = registry.model("tinytext")
    assert preprocess_to_bin(entry, text_task.HERE / "demo", tmp_path / "bins", workers=0, skip_invalid=False,
                             quiet=True) == 12
    model = tinytext.build("standard")
    model.load_state_dict(torch.load(weights["tinytext"], weights_only=True))
    (tmp_path / "result").mkdir()
    for ids in sorted((tmp_path / "bins" / "input_ids").glob("*.bin")):
        tokens = torch.from_numpy(np.fromfile(ids, dtype="<i8")[None])
        mask = torch.from_numpy(np.fromfile(tmp_path / "bins" / "attention_mask" / ids.name, dtype="<i8")[None])
        with torch.inference_mode():
            model(tokens, mask).numpy().tofile(tmp_path / "result" / f"{ids.stem}_0.bin")
    scores = postprocess(entry, tmp_path / "result", text_task.HERE / "demo", None, None)
    keys, targets, logits = expected["tinytext"]
    assert scores == pytest.approx({**text_metrics(targets, np.argmax(logits, -1)), "results_without_label": 0,
                                    "labels_without_result": 0})


def test_postprocess_of_outputs_whose_size_varies_is_one_line(registry, tmp_path):
    with pytest.raises(UserError) as info:
        postprocess(registry.model("tinyseg"), tmp_path, seg_task.HERE / "demo", None, None)
    message = str(info.value)
    assert "\n" not in message and message.startswith("output 'logits' of tinyseg has dynamic axes (height, width)")
    assert "--backend ascend --io files --keep-bin" in message


# ---------------------------------------------------------------- bench and ci


@pytest.mark.parametrize("name", PLUGINS)
def test_bench_measures_each_batch_size(registry, weights, cache, tmp_path, name):
    data = bench(registry, name, ["onnxruntime"], [1, 4], warmup=1, iters=3, output=tmp_path, cache_dir=cache,
                 weights=weights[name])
    assert [(r["backend"], r["batch_size"]) for r in data["rows"]] == [("onnxruntime", 1), ("onnxruntime", 4)]
    assert all(r["fps"] > 0 for r in data["rows"])
    assert json.loads((tmp_path / "bench.json").read_text()) == data


def test_ci_checks_both_plugins_from_their_manifests(cache, tmp_path):
    code = run_ci([text_task.HERE, seg_task.HERE], tmp_path, load_entrypoints=False, quiet=True, cache_dir=cache)
    ci = json.loads((tmp_path / "ci.json").read_text())
    assert code == 0, ci
    assert sorted(ci["models"]) == ["tinyseg", "tinytext"]
    for name, metric in (("tinytext", "macro_f1"), ("tinyseg", "miou")):
        model = ci["models"][name]
        assert {c["status"] for c in model["checks"].values()} == {"pass"}, model["checks"]
        assert model["smoke"]["images"] == 4 and model["smoke"]["metrics"][metric] is not None
        assert model["parity"]["max_abs_diff"] < 1e-4


class WithArgmax(tinytext.MeanOfEmbeddings):
    """tinytext with a second output of another dtype: the predicted class as int64."""

    def forward(self, input_ids, attention_mask):
        logits = super().forward(input_ids, attention_mask)
        return logits, logits.argmax(1)


class ArgmaxTask(text_task.TextClassification):
    def postprocess(self, outputs):
        records = super().postprocess(outputs)
        return [{**record, "argmax": int(a)} for record, a in zip(records, outputs["argmax"], strict=True)]


def test_ascend_files_with_two_inputs_and_two_outputs_resume_after_a_crash(weights, cache, expected, tmp_path,
                                                                          monkeypatch, fake_ascend):
    """Output i is read from `<key>_<i>.bin` with its own dtype; after a crash only the samples
    without every result are sent again."""
    manifest = tmp_path / "plugin.toml"
    manifest.write_text((text_task.HERE / "plugin.toml").read_text().replace('name = "tinytext"', 'name = "argmax"')
                        + '\n[[outputs]]\nname = "argmax"\ndtype = "int64"\nshape = ["batch"]\n')
    entry = dataclasses.replace(MockRunner(tinytext).model("tinytext"), manifest=load_manifest(manifest),
                                build=lambda variant: WithArgmax().eval(), task=ArgmaxTask(3))
    registry = registry_with(registering(entry))
    output = tmp_path / "run"
    monkeypatch.setenv("MODELZOO_FAKE_AIS_CRASH_AFTER", "1")
    with pytest.raises(UserError, match="ais_bench on device 0 failed"):
        run_model(registry, {"argmax": weights["tinytext"]}, cache, "argmax", output, backend="ascend",
                  precision="fp32", backend_options={"ascend": AscendOptions(io="files")})
    first = sorted(p.name for p in (output / "ascend" / "output").glob("device0-seq*/*.bin"))
    done = sorted({name.rsplit("_", 1)[0] for name in first})
    assert len(done) == BATCH and first == sorted(f"{k}_{o}.bin" for k in done for o in (0, 1))  # the batch before the crash

    monkeypatch.delenv("MODELZOO_FAKE_AIS_CRASH_AFTER")
    report = run_model(registry, {"argmax": weights["tinytext"]}, cache, "argmax", output, backend="ascend",
                       precision="fp32", backend_options={"ascend": AscendOptions(io="files", keep_files=True)})
    sent = sorted(p.stem for p in (output / "ascend" / "input" / "device0").glob("seq*/attention_mask/*.bin"))
    assert sent == sorted({f"t{i:02d}" for i in range(1, 13)} - set(done))
    assert_matches("tinytext", output, report, expected)
    records = json.loads((output / "predictions.json").read_text())
    assert all(r["label"] == r["argmax"] for r in records.values())


@pytest.mark.parametrize("precision", ["auto", "int8"])
@pytest.mark.parametrize("name", PLUGINS)
def test_reduced_precisions_run_any_task_and_measure_their_drift(registry, weights, cache, tmp_path, name,
                                                                 precision):
    report = run_model(registry, weights, cache, name, tmp_path, backend="openvino", precision=precision,
                       calibration=4)
    assert report["precision_requested"] == precision and report["precision"] in ("fp32", "bf16", "int8")
    parity = report["agreement"]["parity_inputs"]
    assert set(parity["outputs"]) == {t.name for t in PLUGINS[name].MANIFEST.outputs}
    assert 0.9 < parity["cosine"] <= 1 + 1e-9
    if report["precision"] != "fp32":
        samples = report["agreement"]["run_samples"]
        assert samples["images"] == report["images"] and 0.9 < samples["cosine"] <= 1 + 1e-9
    if precision == "int8":
        assert report["calibration"]["images"] == 4 and report["calibration"]["source"] == "demo"
