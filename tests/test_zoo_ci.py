"""`modelzoo ci`: plugins discovered in directory trees, each model checked, results for CI systems."""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from modelzoo.zoo_ci import find_manifests, run_ci
from tests.conftest import write_photo

REPO = Path(__file__).resolve().parent.parent
LEVELS_NOT_MEASURED = ["PrecisionStatus:NOT_MEASURED", "PerfStatus:NOT_MEASURED"]

# A second model, written by the tests into a temporary tree: importable only through discovery,
# so a pass proves that the runner needs no change for a new model.
PLUGIN_MODULE = '''\
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from modelzoo.hookspecs import hookimpl
from modelzoo.manifest import load_manifest
from modelzoo.core import ModelEntry

HERE = Path(__file__).resolve().parent
OUT_FEATURES = {out_features}


def build(variant: str) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, stride=2), torch.nn.ReLU(),
        torch.nn.Conv2d(4, 8, 3, stride=2), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, OUT_FEATURES)).eval()


def init_random(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.5)


def preprocess(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((24, 24))
    return (np.asarray(rgb, dtype=np.float32) / 255 - 0.5).transpose(2, 0, 1).copy()


@hookimpl
def modelzoo_register_models(register):
    demo = HERE / "demo"
    register(ModelEntry(manifest=load_manifest(HERE / "plugin.toml"), build=build, init_random=init_random,
                        preprocess=preprocess, demo_data=demo if demo.is_dir() else None))
'''

MANIFEST = '''\
name = "{name}"
summary = "A two-layer CNN on 24x24 images, 5 classes (written by test_zoo_ci)"
plugin = "{name}.plugin"

[task]
kind = "classification"
num_classes = 5
labels = "labels.txt"

[weights]
file = "{name}.pth"
url = "http://127.0.0.1:9/{name}.pth"

[[inputs]]
name = "image"
dtype = "float32"
layout = "NCHW"
shape = ["batch", 3, 24, 24]

[[outputs]]
name = "logits"
dtype = "float32"
layout = "NC"
shape = ["batch", 5]

[expected]
metrics = {{ top1 = 0.2 }}
tolerance = {{ top1 = 0.2 }}
source = "chance level"

[status]
FuncStatus = "OK"
PrecisionStatus = "NOK"
PerfStatus = "NOK"
'''


def write_plugin(root: Path, name: str, out_features: int = 5, demo: bool = True,
                 drop_line: str | None = None) -> Path:
    """A plugin package ROOT/NAME: plugin.toml, plugin.py and (with `demo`) three demo images."""
    package = root / name
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(PLUGIN_MODULE.format(out_features=out_features))
    manifest = MANIFEST.format(name=name)
    if drop_line:
        manifest = "".join(line for line in manifest.splitlines(True) if not line.startswith(drop_line))
    (package / "plugin.toml").write_text(manifest)
    if demo:
        (package / "demo" / "images").mkdir(parents=True)
        for i in range(3):
            write_photo(package / "demo" / "images" / f"pic{i}.png", (40, 30), seed=i)
        (package / "demo" / "labels.txt").write_text("".join(f"pic{i}.png {i}\n" for i in range(3)))
    return package


@pytest.fixture(autouse=True)
def forget_written_plugins():
    """Each test writes its own ci_* packages: drop them from sys.modules so the next test imports its own."""
    yield
    for name in [m for m in sys.modules if m.split(".")[0].startswith("ci_")]:
        del sys.modules[name]


def read_outputs(out: Path) -> tuple[ET.Element, dict]:
    return ET.parse(out / "junit.xml").getroot(), json.loads((out / "ci.json").read_text())


def level_lines(out: Path, model: str) -> list[str]:
    return (out / model / "modelzoo_level.txt").read_text().splitlines()


def test_ci_finds_and_passes_lvvit_and_a_new_model_with_no_runner_change(tmp_path, cache_dir, capsys):
    plugins = tmp_path / "plugins"
    write_plugin(plugins, "ci_tinyconv")
    path_before = list(sys.path)

    code = run_ci([REPO, plugins], tmp_path / "out", cache_dir=cache_dir, quiet=True)

    junit, ci = read_outputs(tmp_path / "out")
    suites = [s.get("name") for s in junit.iter("testsuite")]
    assert code == 0, ci
    # lvvit is found three ways (plugin.toml, its link in the package, the entry point): once here.
    assert len(suites) == len(set(suites)) and {"lvvit", "tinycnn", "ci_tinyconv"} <= set(suites)
    assert junit.get("tests") == str(4 * len(suites)) and len(list(junit.iter("testcase"))) == 4 * len(suites)
    assert junit.get("failures") == "0" and not list(junit.iter("failure"))

    lvvit, tiny, new = ci["models"]["lvvit"], ci["models"]["tinycnn"], ci["models"]["ci_tinyconv"]
    assert lvvit["manifest"] == str(REPO / "plugin.toml") and lvvit["plugin"] == "modelzoo_lvvit.plugin"
    for model in (lvvit, new):
        assert {c["status"] for c in model["checks"].values()} == {"pass"}, model["checks"]
        assert model["backend"] and model["smoke"]["images"] >= 3
        assert model["parity"]["max_abs_diff"] < 1e-3 and model["parity"]["check"]["passed"]
        assert model["weights"]["random"] is True
        assert model["statuses"] == {"FuncStatus": "OK", "PrecisionStatus": "NOT_MEASURED",
                                     "PerfStatus": "NOT_MEASURED"}
        assert "random weights" in model["not_measured_because"]["PrecisionStatus"]
    assert tiny["checks"]["smoke"] == {"status": "skip", "seconds": tiny["checks"]["smoke"]["seconds"],
                                       "message": "the plugin ships no demo data"}
    assert tiny["statuses"]["FuncStatus"] == "OK"
    for model in ("lvvit", "tinycnn", "ci_tinyconv"):
        assert level_lines(tmp_path / "out", model) == ["FuncStatus:OK", *LEVELS_NOT_MEASURED]
    assert sys.path == path_before  # the tree was importable for the run only

    summary = capsys.readouterr().out
    assert "FuncStatus" in summary and "models passed" in summary


def test_broken_plugins_fail_alone_with_their_reason(tmp_path, cache_dir):
    write_plugin(tmp_path, "ci_good")
    write_plugin(tmp_path, "ci_nokey", drop_line="summary =")
    write_plugin(tmp_path, "ci_wrongshape", out_features=3, demo=False)
    (tmp_path / "ci_noimport").mkdir()
    (tmp_path / "ci_noimport" / "plugin.toml").write_text(MANIFEST.format(name="ci_noimport"))

    code = run_ci([tmp_path], tmp_path / "out", load_entrypoints=False, cache_dir=cache_dir)

    junit, ci = read_outputs(tmp_path / "out")
    models = ci["models"]
    assert code != 0 and not ci["passed"]
    assert sorted(models) == ["ci_good", "ci_noimport", "ci_nokey", "ci_wrongshape"]
    assert models["ci_good"]["passed"] and models["ci_good"]["checks"]["smoke"]["status"] == "pass"
    assert level_lines(tmp_path / "out", "ci_good") == ["FuncStatus:OK", *LEVELS_NOT_MEASURED]

    nokey = models["ci_nokey"]["checks"]
    assert nokey["manifest"]["status"] == "fail" and "key 'summary'" in nokey["manifest"]["message"]
    assert {nokey[c]["status"] for c in ("contract", "export", "smoke")} == {"skip"}
    assert "not run: the manifest check failed" == nokey["export"]["message"]
    wrong = models["ci_wrongshape"]["checks"]
    assert wrong["contract"]["status"] == "fail" and "output 'logits' shape [2, 3]" in wrong["contract"]["message"]
    noimport = models["ci_noimport"]["checks"]
    assert noimport["contract"]["status"] == "fail"
    assert "cannot import plugin module 'ci_noimport.plugin'" in noimport["contract"]["message"]
    for model in ("ci_nokey", "ci_wrongshape", "ci_noimport"):
        assert level_lines(tmp_path / "out", model) == ["FuncStatus:NOK", *LEVELS_NOT_MEASURED]

    failures = {case.get("classname"): case.find("failure").get("message")
                for case in junit.iter("testcase") if case.find("failure") is not None}
    assert set(failures) == {"modelzoo.ci_nokey", "modelzoo.ci_wrongshape", "modelzoo.ci_noimport"}
    assert junit.get("failures") == "3"


def test_discovery_skips_tool_and_build_directories_and_follows_links_once(tmp_path):
    real = tmp_path / "model" / "plugin.toml"
    real.parent.mkdir()
    real.write_text("")
    (tmp_path / "model" / "pkg").mkdir()
    (tmp_path / "model" / "pkg" / "plugin.toml").symlink_to(real)
    for skipped in (".git", ".venv-ci", "modelzoo-out", "build", "__pycache__", "x.egg-info", "env"):
        (tmp_path / skipped / "deep").mkdir(parents=True)
        (tmp_path / skipped / "deep" / "plugin.toml").write_text("")
    (tmp_path / "env" / "pyvenv.cfg").write_text("")  # a virtualenv whatever its name

    assert find_manifests([tmp_path, real]) == [real.resolve()]


def full_run_report(top1: float | None, random: bool = False, demo: bool = False, limit: int | None = None) -> dict:
    return {"model": "m", "metrics": {"top1": top1}, "weights": {"random": random}, "data": {"demo": demo, "limit": limit}}


def test_precision_status_compares_a_full_run_with_the_expected_metric_and_its_tolerance():
    from modelzoo.zoo_ci.reports import NOT_MEASURED, precision_status

    expected = {"metrics": {"top1": 0.8317, "top5": 0.96}, "tolerance": {"top1": 0.005}}
    assert precision_status(expected, full_run_report(0.8270))[0] == "OK"  # 0.0047 short: within
    status, why = precision_status(expected, full_run_report(0.8260))
    assert status == "NOK" and "top1 0.826 < 0.8317 - 0.005" in why
    assert precision_status(expected, full_run_report(None))[0] == "NOK"
    for partial in (full_run_report(0.9, random=True), full_run_report(0.9, demo=True), full_run_report(0.9, limit=10)):
        assert precision_status(expected, partial)[0] == NOT_MEASURED
    assert precision_status({"metrics": {"top1": 0.8}, "tolerance": {}}, full_run_report(0.9))[0] == NOT_MEASURED


def test_precision_status_of_a_lower_is_better_metric_fails_above_the_tolerance():
    from modelzoo.zoo_ci.reports import precision_status

    expected = {"metrics": {"mae": 0.05}, "tolerance": {"mae": 0.01}, "lower_is_better": ["mae"]}

    def report(mae: float | None) -> dict:
        return {**full_run_report(None), "metrics": {"mae": mae}}

    assert precision_status(expected, report(0.02))[0] == "OK"  # better than published
    assert precision_status(expected, report(0.059))[0] == "OK"  # worse, within the tolerance
    status, why = precision_status(expected, report(0.07))
    assert status == "NOK" and "mae 0.07 > 0.05 + 0.01" in why
    assert precision_status(expected, report(None))[0] == "NOK"
    higher_is_better = {**expected, "lower_is_better": []}  # the default: the same figures read the other way
    assert precision_status(higher_is_better, report(0.07))[0] == "OK"
    assert precision_status(higher_is_better, report(0.02))[0] == "NOK"


def test_ci_takes_precision_status_from_a_measured_full_run(tmp_path, tiny_registry, tiny_data, tiny_weights, cache_dir):
    from modelzoo.pipeline import RunOptions, run

    report = run(tiny_registry, RunOptions(model="tinycnn", backend="onnxruntime", batch_size=2, data=tiny_data,
                                           weights=tiny_weights, output=tmp_path / "full", cache_dir=cache_dir,
                                           workers=0, quiet=True))
    expected = tiny_registry.model("tinycnn").manifest.expected
    # The manifest asks for top-1 0.1 +- 0.1: whatever the tiny model scores passes.
    assert report["top1"] >= expected["metrics"]["top1"] - expected["tolerance"]["top1"]
    run_ci([REPO / "tests" / "plugins" / "tinycnn"], tmp_path / "ci", load_entrypoints=False, cache_dir=cache_dir,
           measured=[tmp_path / "full" / "report.json"])
    model = read_outputs(tmp_path / "ci")[1]["models"]["tinycnn"]
    assert model["statuses"]["PrecisionStatus"] == "OK" and "within tolerance: top1" in model["precision"]
    assert "PrecisionStatus:OK" in level_lines(tmp_path / "ci", "tinycnn")

    # The same run, had it scored below the tolerance: NOK, with the shortfall named.
    short = {**report, "metrics": {**report["metrics"], "top1": -0.01}}
    (tmp_path / "short.json").write_text(json.dumps(short))
    run_ci([REPO / "tests" / "plugins" / "tinycnn"], tmp_path / "ci-short", load_entrypoints=False,
           cache_dir=cache_dir, measured=[tmp_path / "short.json"])
    model = read_outputs(tmp_path / "ci-short")[1]["models"]["tinycnn"]
    assert model["statuses"]["PrecisionStatus"] == "NOK" and "top1 -0.01 < 0.1 - 0.1" in model["precision"]


def test_a_broken_installed_plugin_is_reported_as_broken_and_the_others_are_found(tmp_path, monkeypatch):
    from modelzoo.zoo_ci.discovery import discover
    from tests.conftest import install_plugin

    install_plugin(tmp_path, "broken_plugin", "broken = no_such_module_here")
    monkeypatch.syspath_prepend(str(tmp_path))  # where entry points are looked up
    results, registry = discover([], load_entrypoints=True)
    contract = results["broken"].checks["contract"]
    assert contract.status == "fail"
    assert contract.message.startswith("broken plugin: installed plugin 'broken' (no_such_module_here) failed "
                                       "to load: ModuleNotFoundError")
    assert results["lvvit"].passed and "lvvit" in registry.models
