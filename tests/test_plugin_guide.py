"""docs/plugin-guide.md is executed: its files are written, its `run` blocks run in order."""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "plugin-guide.md"
BLOCK = re.compile(r"^```(\w+)(?: (file=\S+|run))?\n(.*?)^```", re.S | re.M)


def blocks() -> list[tuple[str, str, str]]:
    return [(m[1], m[2] or "", m[3]) for m in BLOCK.finditer(GUIDE.read_text())]


@pytest.fixture
def guide_dir(tmp_path, monkeypatch, no_entrypoints):
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.split(".")[0] in ("brightness", "wordcount")]:
        del sys.modules[name]


def test_the_guide_has_files_and_steps_to_run():
    kinds = [extra for _, extra, _ in blocks()]
    assert "file=brightness/plugin.toml" in kinds and "file=brightness/plugin.py" in kinds
    assert kinds.count("run") >= 3


def test_the_plugin_written_by_the_guide_runs_and_scores_what_its_model_predicts(guide_dir, capsys):
    (guide_dir / "brightness").mkdir()
    (guide_dir / "brightness" / "__init__.py").write_text("")
    (guide_dir / "wordcount").mkdir()
    (guide_dir / "wordcount" / "__init__.py").write_text("")
    namespace: dict = {}
    for language, extra, code in blocks():
        if extra.startswith("file="):
            (guide_dir / extra.removeprefix("file=")).write_text(code)
        elif extra == "run":
            exec(compile(code, f"{GUIDE.name} ({language} block)", "exec"), namespace)  # noqa: S102
    report = json.loads((guide_dir / "out" / "report.json").read_text())

    # The metric, recomputed here from the model and the demo pictures, without the runner.
    import brightness.plugin as plugin
    from modelzoo.weights import RANDOM_SEED

    model = plugin.build("standard")
    plugin.init_random(model, RANDOM_SEED)
    targets = json.loads((guide_dir / "brightness" / "demo" / "targets.json").read_text())
    errors = []
    for key, target in targets.items():
        with Image.open(guide_dir / "brightness" / "demo" / f"{key}.png") as image:
            pixels = np.asarray(image.convert("L").resize((16, 16)), dtype=np.float32) / 255
        with torch.inference_mode():
            predicted = float(model(torch.from_numpy(pixels)[None, None])[0, 0])
        errors.append(abs(predicted - target))
    assert report["metrics"]["samples"] == len(targets) == 4
    assert report["metrics"]["mae"] == pytest.approx(float(np.mean(errors)), abs=1e-5)
    assert report["mae"] == report["metrics"]["mae"] and report["task"] == "brightness"
    assert report["parity"]["max_abs_diff"] < 1e-4
    assert str(report["metrics"]) in capsys.readouterr().out

    check_the_dynamic_axis_example(guide_dir)


def check_the_dynamic_axis_example(guide_dir: Path) -> None:
    """wordcount: every text scored as torch scores it alone and unpadded; padding and the parity
    sizes reported."""
    import wordcount.plugin as plugin
    from modelzoo.weights import RANDOM_SEED

    report = json.loads((guide_dir / "out-wordcount" / "report.json").read_text())
    records = json.loads((guide_dir / "out-wordcount" / "predictions.json").read_text())
    model = plugin.build("standard")
    plugin.init_random(model, RANDOM_SEED)
    lines = (guide_dir / "wordcount" / "demo" / "texts.txt").read_text().splitlines()
    for i, line in enumerate(lines):
        ids = torch.tensor([[len(word) for word in line.split()]])
        with torch.inference_mode():
            expected = float(model(ids, torch.ones_like(ids))[0, 0])
        assert records[f"text{i}"]["score"] == pytest.approx(expected, rel=1e-5, abs=1e-5)
    words = [len(line.split()) for line in lines]
    assert 0 < report["padding"]["ids"] <= 1 and report["padding"]["ids"] >= sum(words) / (len(words) * max(words))
    assert sorted(report["parity"]["sizes"]) == ["seq=32", "seq=8"]
