"""Per-output parity: the compare kinds and their tolerances, enforcement wherever a model is exported,
honest parity inputs (half-open integer ranges, constant outputs called degenerate) and nested outputs.

The figures judged here come from real exports through ONNX Runtime; a wrong export is a plugin
export hook that writes a different graph than its torch model.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from modelzoo.api import ModelEntry, UserError, load_manifest
from modelzoo.artifacts import Artifacts
from modelzoo.cache import Cache
from modelzoo.manifest import OutputCheck
from modelzoo.parity import output_failures, output_figures
from modelzoo.weights import resolve_weights
from tests.conftest import REPO, install_plugin, run_cli

TINYCNN = REPO / "tests" / "plugins" / "tinycnn" / "plugin.toml"
TINYTEXT = REPO / "tests" / "plugins" / "tinytext" / "plugin.toml"

# --- the compare kinds on arrays ---------------------------------------------------------------


def test_scores_judge_top1_only_where_the_torch_margin_exceeds_the_backend_error():
    rng = np.random.default_rng(0)
    reference = rng.standard_normal((64, 10)).astype(np.float32)
    reference[0, :2] = [5.0, 5.0 - 1e-5]  # a near tie: its top-1 may flip in a correct backend
    candidate = reference + rng.uniform(-1e-5, 1e-5, reference.shape).astype(np.float32)
    candidate[0, :2] = [5.0 - 1e-5, 5.0]
    figures = output_figures(OutputCheck("scores"), reference, candidate)
    assert figures["top1_agreement"] < 1.0 and figures["decisive_agreement"] == 1.0
    margins = np.diff(np.sort(reference, 1)[:, -2:], axis=1)[:, 0]
    assert figures["decisive_positions"] == int((margins > figures["max_abs_diff"]).sum()) < 64
    assert output_failures(OutputCheck("scores"), figures) == []

    # A flip whose torch margin exceeds the error measured anywhere: a failure, with figures and tolerance.
    row = int(np.argmax(margins))
    first, second = np.argsort(reference[row])[-1], np.argsort(reference[row])[-2]
    candidate = reference.copy()
    candidate[row, first] -= 0.6 * margins[row]
    candidate[row, second] += 0.6 * margins[row]
    figures = output_figures(OutputCheck("scores"), reference, candidate)
    assert figures["decisive_agreement"] == 1 - 1 / figures["decisive_positions"]
    short = output_failures(OutputCheck("scores", atol=10.0, min_cosine=0.9), figures)
    assert len(short) == 1 and short[0].startswith("top-1 agreement ")
    assert short[0].endswith(f"on {figures['decisive_positions']} decisive positions < min_agreement 100.00%")


def test_values_and_labels_report_only_their_own_figures():
    reference = np.arange(12, dtype=np.float32).reshape(3, 4)
    values = output_figures(OutputCheck("values"), reference, reference + 0.5)
    assert values["max_abs_diff"] == 0.5 and "top1_agreement" not in values
    assert output_failures(OutputCheck("values", atol=0.1), values) == ["max|diff| 5.00e-01 > atol 1.0e-01"]
    labels = output_figures(OutputCheck("labels"), np.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 0]]))
    assert labels["equal"] == 0.75 and "cosine" not in labels
    assert output_failures(OutputCheck("labels", min_equal=0.7), labels) == []
    assert output_failures(OutputCheck("labels"), labels) == ["75.00% equal < min_equal 100.00%"]


def test_zero_vectors_have_no_cosine_and_constant_outputs_are_degenerate():
    zeros = np.zeros((4, 3), np.float32)
    figures = output_figures(OutputCheck("values"), zeros, zeros)
    assert figures["cosine"] is None and "all zeros" in figures["cosine_note"] and figures["degenerate"]
    varied = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert not output_figures(OutputCheck("values"), varied, varied)["degenerate"]


# --- the manifest keys ---------------------------------------------------------------------------


def manifest_with(tmp_path: Path, source: Path, old: str, new: str):
    text = source.read_text()
    assert old in text
    (tmp_path / "plugin.toml").write_text(text.replace(old, new))
    return load_manifest(tmp_path / "plugin.toml")


@pytest.mark.parametrize("bounds, expected", [
    ("[1, 1]", "must be [low, high) with low < high"),
    ("[5, 2]", "must be [low, high) with low < high"),
])
def test_an_empty_range_is_one_line_naming_file_and_key(tmp_path, bounds, expected):
    with pytest.raises(UserError) as caught:
        manifest_with(tmp_path, TINYTEXT, "range = [0, 2]", f"range = {bounds}")
    message = str(caught.value)
    assert "\n" not in message and str(tmp_path / "plugin.toml") in message
    assert "key 'inputs[1].range'" in message and expected in message


def test_a_range_outside_the_dtype_or_on_a_float_input_is_refused(tmp_path):
    with pytest.raises(UserError, match=r"inputs\[1\]\.range'.*outside uint8 \(0\.\.255\).*\[0, 256\)"):
        manifest_with(tmp_path, TINYTEXT, 'dtype = "int64"\nshape = ["batch", 16]\nrange = [0, 2]',
                      'dtype = "uint8"\nshape = ["batch", 16]\nrange = [0, 257]')
    with pytest.raises(UserError, match=r"inputs\[0\]\.range'.*integer tensors, not float32"):
        manifest_with(tmp_path, TINYCNN, 'shape = ["n", 3, 32, 32]', 'shape = ["n", 3, 32, 32]\nrange = [0, 2]')


def test_outputs_default_to_scores_values_or_labels_and_refuse_keys_of_another_kind(tmp_path):
    manifest = manifest_with(tmp_path, TINYCNN, '\n[atc]', '\n[[outputs]]\nname = "size"\ndtype = "float32"\n'
                             'shape = ["n", 1]\n\n[[outputs]]\nname = "ids"\ndtype = "int64"\nshape = ["n", 5]\n'
                             'min_equal = 0.9\n\n[[outputs]]\nname = "map"\ndtype = "float32"\n'
                             'shape = ["n", 7, 8]\n\n[atc]')
    assert [t.check for t in manifest.outputs] == [  # the first as tinycnn's manifest says, the rest defaults
        OutputCheck("scores"), OutputCheck("values"), OutputCheck("labels", min_equal=0.9), OutputCheck("scores")]
    with pytest.raises(UserError, match=r"key 'outputs\[0\]'.*min_equal applies to compare = 'labels'"):
        manifest_with(tmp_path, TINYCNN, 'shape = ["n", 10]', 'shape = ["n", 10]\nmin_equal = 0.5')
    with pytest.raises(UserError, match=r'compare = "scores" needs a float output'):
        manifest_with(tmp_path, TINYCNN, 'dtype = "float32"\nlayout = "NC"', 'dtype = "int32"\nlayout = "NC"')


# --- nested outputs --------------------------------------------------------------------------------

NESTED_MANIFEST = """
name = "nested"
summary = "nested outputs (test)"
plugin = "tests.test_parity"
[task]
kind = "none"
[[inputs]]
name = "x"
dtype = "float32"
shape = ["batch", 6]
[[outputs]]
name = "first"
dtype = "float32"
shape = ["batch", 2]
[[outputs]]
name = "second"
dtype = "float32"
shape = ["batch", 3]
[[outputs]]
name = "third"
dtype = "float32"
shape = ["batch", 4]
[status]
FuncStatus = "OK"
PrecisionStatus = "NOK"
PerfStatus = "NOK"
"""


class Heads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.first, self.second, self.third = (torch.nn.Linear(6, n) for n in (2, 3, 4))


class DictHeads(Heads):
    def forward(self, x):  # the dict's own order differs from the manifest's
        return {"third": self.third(x), "first": self.first(x), "second": self.second(x)}


class TupleHeads(Heads):
    def forward(self, x):
        return (self.first(x), self.second(x)), self.third(x)


def _seeded(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("net", [DictHeads, TupleHeads])
def test_nested_outputs_are_exported_and_compared_in_the_manifests_order(tmp_path, net):
    (tmp_path / "plugin.toml").write_text(NESTED_MANIFEST)
    manifest = load_manifest(tmp_path / "plugin.toml")
    entry = ModelEntry(manifest=manifest, build=lambda variant: net().eval(), init_random=_seeded,
                       preprocess=lambda source: source)
    artifacts = Artifacts(entry, resolve_weights(manifest, None), Cache(tmp_path / "cache"), quiet=True)
    path = artifacts.onnx(None)

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == ["first", "second", "third"]
    x = np.random.default_rng(3).standard_normal((5, 6)).astype(np.float32)
    got = dict(zip(["first", "second", "third"], session.run(None, {"x": x})))
    model = artifacts.torch_model()
    with torch.no_grad():
        heads = {name: getattr(model, name)(torch.from_numpy(x)).numpy() for name in got}
    for name, array in got.items():
        np.testing.assert_allclose(array, heads[name], atol=1e-5)
    parity = artifacts.parity
    assert list(parity["outputs"]) == ["first", "second", "third"] and parity["check"]["passed"]
    assert parity["outputs"]["third"]["compare"] == "scores" and not parity["degenerate"]


# --- enforcement through the CLI -------------------------------------------------------------------

WRONG_EXPORT = '''
from pathlib import Path
import dataclasses
import torch
from modelzoo.api import ModelEntry, hookimpl, load_manifest
import tests.plugins.tinycnn.plugin as tiny

MANIFEST = load_manifest(Path(__file__).with_name("plugin.toml"))


class Shifted(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x) + 0.5


def export(model, manifest, path, batch_size, example):
    # A wrong export: its graph adds 0.5 to every score the torch model gives.
    axes = None if batch_size else {"pixels": {0: "n"}, "scores": {0: "n"}}
    torch.onnx.export(Shifted(model), (torch.from_numpy(example["pixels"]),), str(path), input_names=["pixels"],
                      output_names=["scores"], dynamic_axes=axes, opset_version=13, dynamo=False)


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=tiny.build, init_random=tiny.init_random,
                        preprocess=tiny.preprocess, export=export))
'''


@pytest.fixture(scope="module")
def wrong_plugin(tmp_path_factory) -> dict[str, str]:
    site = tmp_path_factory.mktemp("site")
    package = site / "tinywrong"
    package.mkdir()
    (package / "__init__.py").write_text(WRONG_EXPORT)
    (package / "plugin.toml").write_text(TINYCNN.read_text().replace('name = "tinycnn"', 'name = "tinywrong"')
                                         .replace('plugin = "tests.plugins.tinycnn.plugin"', 'plugin = "tinywrong"'))
    return install_plugin(site, "tinywrong", "tinywrong = tinywrong")


def test_zoo_ci_fails_a_wrong_export_naming_the_output_and_its_tolerance(tmp_path, wrong_plugin):
    site = Path(wrong_plugin["PYTHONPATH"].split(":")[0])
    done = run_cli("ci", str(site / "tinywrong"), "--output", str(tmp_path / "ci"), "--quiet", env=wrong_plugin)
    assert done.returncode == 1, done.stdout + done.stderr
    export = json.loads((tmp_path / "ci" / "ci.json").read_text())["models"]["tinywrong"]["checks"]["export"]
    assert export["status"] == "fail" and "output 'scores' max|diff| 5.00e-01 > atol 1.0e-03" in export["message"]
    assert "[[outputs]]" in export["message"] and "--no-parity-check" not in export["message"]


def test_a_wrong_export_stops_run_export_and_bench_with_one_line(tmp_path, wrong_plugin, tiny_data, tiny_weights):
    common = ("--weights", str(tiny_weights), "--cache-dir", str(tmp_path / "cache"), "--quiet")
    runs = {
        "run": run_cli("run", "tinywrong", "--backend", "onnxruntime", "--workers", "0", "--data", str(tiny_data),
                       "--output", str(tmp_path / "run"), *common, env=wrong_plugin),
        "export": run_cli("export", "tinywrong", "--output", str(tmp_path / "m.onnx"), *common, env=wrong_plugin),
        "bench": run_cli("bench", "tinywrong", "--backend", "onnxruntime", "--bs", "2", "--iters", "1",
                         "--output", str(tmp_path / "bench"), *common, env=wrong_plugin),
    }
    for command, done in runs.items():
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (command, done.stderr)
        assert lines[0].startswith("error: parity torch vs ONNX Runtime of ")
        assert "output 'scores' max|diff| 5.00e-01 > atol 1.0e-03" in lines[0] and "--no-parity-check" in lines[0]
    assert not (tmp_path / "run" / "report.json").exists() and not (tmp_path / "m.onnx").exists()


def test_no_parity_check_goes_on_and_the_report_says_so(tmp_path, wrong_plugin, tiny_data, tiny_weights):
    done = run_cli("run", "tinywrong", "--backend", "onnxruntime", "--workers", "0", "--data", str(tiny_data),
                   "--output", str(tmp_path / "run"), "--weights", str(tiny_weights), "--cache-dir",
                   str(tmp_path / "cache"), "--no-parity-check", env=wrong_plugin)
    assert done.returncode == 0, done.stderr
    parity = json.loads((tmp_path / "run" / "report.json").read_text())["parity"]
    check, cosine = parity["check"], parity["outputs"]["scores"]["cosine"]
    assert check["enforced"] is False and check["passed"] is False and cosine < 0.999
    assert check["failures"] == [f"output 'scores' max|diff| 5.00e-01 > atol 1.0e-03, cosine {cosine:.6f} "
                                 "< min_cosine 0.999"]
    parity_line = next(line for line in done.stdout.splitlines() if line.startswith("parity"))
    assert "FAILED: output 'scores'" in parity_line and "NOT ENFORCED (--no-parity-check)" in parity_line


# --- degenerate parity inputs ---------------------------------------------------------------------

MASKED_TEXT = '''
import dataclasses
from pathlib import Path
from modelzoo.api import ModelEntry, hookimpl, load_manifest
import tests.plugins.tinytext.plugin as text

MANIFEST = load_manifest(Path(__file__).with_name("plugin.toml"))


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=text.build, init_random=text.init_random,
                        preprocess=text.preprocess, task=text.TextClassification(text.CLASSES),
                        collate=text.collate, demo_data=text.HERE / "demo"))
'''


def test_a_mask_range_that_draws_only_zeros_is_caught_as_degenerate(tmp_path):
    package = tmp_path / "site" / "tinymask"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MASKED_TEXT)
    manifest = TINYTEXT.read_text().replace('name = "tinytext"', 'name = "tinymask"').replace(
        'plugin = "tests.plugins.tinytext.plugin"', 'plugin = "tinymask"')
    assert "range = [0, 2]" in manifest
    (package / "plugin.toml").write_text(manifest.replace("range = [0, 2]", "range = [0, 1]"))  # zeros only
    env = install_plugin(tmp_path / "site", "tinymask", "tinymask = tinymask")

    done = run_cli("run", "tinymask", "--backend", "onnxruntime", "--workers", "0", "--output",
                   str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), env=env)
    assert done.returncode == 0, done.stderr
    parity = json.loads((tmp_path / "run" / "report.json").read_text())["parity"]
    assert parity["degenerate"] is True and parity["outputs"]["logits"]["degenerate"] is True
    assert "DEGENERATE: logits did not vary" in done.stdout and "proved nothing" in done.stdout

    ci = run_cli("ci", str(package), "--output", str(tmp_path / "ci"), "--quiet", env=env)
    assert ci.returncode == 1, ci.stdout + ci.stderr
    export = json.loads((tmp_path / "ci" / "ci.json").read_text())["models"]["tinymask"]["checks"]["export"]
    assert export["status"] == "fail" and "proved nothing" in export["message"]
