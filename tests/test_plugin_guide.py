"""docs/plugin-guide.md is executed as a reader would use it: each file block is written as its
file, and each Python block runs alone in a fresh interpreter (only its own imports), in order."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from modelzoo.api import UserError
from tests.conftest import REPO, registry_with

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

GUIDE = REPO / "docs" / "plugin-guide.md"
BLOCK = re.compile(r"^```(\w+)(?: (file=\S+|run))?\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str, str]]:
    return [(m[1], m[2] or "", m[3]) for m in BLOCK.finditer(GUIDE.read_text())]


@pytest.fixture(scope="module")
def guide_dir(tmp_path_factory) -> tuple[Path, list[str]]:
    """The guide followed once, block by block: the folder it leaves and what its blocks printed."""
    root = tmp_path_factory.mktemp("guide")
    env = {**os.environ, "MODELZOO_LOAD_ENTRYPOINTS": "0",
           "PYTHONPATH": os.pathsep.join([str(root), str(REPO)])}  # the reader's folder, and modelzoo
    printed = []
    for language, extra, code in blocks():
        if extra.startswith("file="):
            path = root / extra.removeprefix("file=")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(code)
        elif extra == "run":
            result = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True,
                                    text=True, timeout=600)
            assert result.returncode == 0, f"{GUIDE.name} ({language} block):\n{code}\n{result.stderr}"
            printed.append(result.stdout)
    return root, printed


@pytest.fixture
def guide_path(guide_dir, monkeypatch, no_entrypoints):
    """The guide's folder importable here; its modules forgotten again after the test."""
    monkeypatch.syspath_prepend(str(guide_dir[0]))
    yield guide_dir[0]
    for name in [m for m in sys.modules if m.split(".")[0] in ("brightness", "wordcount")]:
        del sys.modules[name]


@pytest.fixture
def brightness(guide_path):
    """The guide's plugin, imported as its reader's code would."""
    import brightness.plugin

    return brightness.plugin


def test_the_guide_has_files_and_steps_to_run():
    kinds = [extra for _, extra, _ in blocks()]
    for name in ("brightness/plugin.toml", "brightness/plugin.py", "brightness/task.py", "brightness/__init__.py",
                 "pyproject.toml"):
        assert f"file={name}" in kinds
    assert kinds.count("run") >= 3


def test_the_plugin_written_by_the_guide_runs_and_scores_what_its_model_predicts(guide_dir, brightness):
    root, printed = guide_dir
    report = json.loads((root / "out" / "report.json").read_text())

    # The metric, recomputed here from the model and the demo pictures, without the runner.
    from modelzoo.weights import RANDOM_SEED

    model = brightness.build("standard")
    brightness.init_random(model, RANDOM_SEED)
    targets = json.loads((root / "brightness" / "demo" / "targets.json").read_text())
    errors = []
    for key, target in targets.items():
        with Image.open(root / "brightness" / "demo" / f"{key}.png") as image:
            pixels = np.asarray(image.convert("L").resize((16, 16)), dtype=np.float32) / 255
        with torch.inference_mode():
            predicted = float(model(torch.from_numpy(pixels)[None, None])[0, 0])
        errors.append(abs(predicted - target))
    assert report["metrics"]["samples"] == len(targets) == 4
    assert report["metrics"]["mae"] == pytest.approx(float(np.mean(errors)), abs=1e-5)
    assert report["mae"] == report["metrics"]["mae"] and report["task"] == "brightness"
    assert report["parity"]["max_abs_diff"] < 1e-4
    assert any(str(report["metrics"]) in out for out in printed)  # the run block printed them


def test_the_guides_task_reads_its_own_task_key_and_names_a_picture_without_target(guide_dir, brightness,
                                                                                  tmp_path):
    from brightness.task import BrightnessTask

    assert brightness.MANIFEST.task["targets"] == "targets.json"
    assert registry_with(brightness).model("brightness").task.targets == "targets.json"
    (tmp_path / "scores.json").write_text(json.dumps({"a": 0.5}))
    for name in ("a", "b"):
        Image.new("L", (8, 8), 128).save(tmp_path / f"{name}.png")
    with pytest.raises(UserError) as info:
        BrightnessTask("scores.json").load_dataset(tmp_path)
    message = str(info.value)
    assert "\n" not in message and "scores.json has no target for picture" in message
    assert str(tmp_path / "b.png") in message and "add key 'b'" in message


def test_the_guides_pyproject_installs_the_entry_point_and_the_files_the_plugin_reads(guide_dir):
    root, _ = guide_dir
    project = tomllib.loads((root / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["modelzoo"] == {"brightness": "brightness.plugin"}
    data = project["tool"]["setuptools"]["package-data"]
    shipped = [(package, glob) for package, globs in data.items() for glob in globs]
    needed = [path for path in (root / "brightness").rglob("*")
              if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts]
    assert {p.name for p in needed} >= {"plugin.toml", "targets.json", "pic0.png"}
    for path in needed:
        package = ".".join(path.parent.relative_to(root).parts)
        assert any(p == package and path.match(glob) for p, glob in shipped), path
    assert (root / "brightness" / "__init__.py").is_file()


def test_the_guides_dynamic_axis_example_scores_each_text_as_torch_does_unpadded(guide_path):
    """wordcount: every text scored as torch scores it alone and unpadded; padding and the parity
    sizes reported."""
    import wordcount.plugin as plugin
    from modelzoo.weights import RANDOM_SEED

    report = json.loads((guide_path / "out-wordcount" / "report.json").read_text())
    records = json.loads((guide_path / "out-wordcount" / "predictions.json").read_text())
    model = plugin.build("standard")
    plugin.init_random(model, RANDOM_SEED)
    lines = (guide_path / "wordcount" / "demo" / "texts.txt").read_text().splitlines()
    for i, line in enumerate(lines):
        ids = torch.tensor([[len(word) for word in line.split()]])
        with torch.inference_mode():
            expected = float(model(ids, torch.ones_like(ids))[0, 0])
        assert records[f"text{i}"]["score"] == pytest.approx(expected, rel=1e-5, abs=1e-5)
    words = [len(line.split()) for line in lines]
    assert 0 < report["padding"]["ids"] <= 1 and report["padding"]["ids"] >= sum(words) / (len(words) * max(words))
    assert sorted(report["parity"]["sizes"]) == ["seq=32", "seq=8"]
