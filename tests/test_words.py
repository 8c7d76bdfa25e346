"""The words fit the model: a text model's run and bench speak of samples, a picture model's of images."""
from __future__ import annotations

import json
import re

import pytest

import tests.plugins.tinycnn.plugin as tinycnn
import tests.plugins.tinydet.plugin as tinydet
import tests.plugins.tinytext.plugin as tinytext
from modelzoo.bench import bench
from modelzoo.pipeline import RunOptions, run
from modelzoo.report import print_report
from modelzoo.words import IMAGES, SAMPLES, unit_of
from tests.conftest import registry_with, write_photo

PICTURE_WORDS = re.compile(r"\bimages?\b|\bimg\b|img/s|JPEG|picture", re.IGNORECASE)


def test_the_unit_follows_the_inputs_layout():
    assert unit_of(tinytext.MANIFEST) == SAMPLES  # token ids and a mask, laid out NC
    assert unit_of(tinydet.MANIFEST) == IMAGES and unit_of(tinycnn.MANIFEST) == IMAGES  # NCHW pictures


@pytest.fixture(scope="module")
def registry():
    return registry_with(tinytext, tinycnn)


def test_a_text_model_speaks_of_samples_on_the_console_in_measures_and_in_bench(registry, tmp_path, capsys):
    report = run(registry, RunOptions(model="tinytext", backend="onnxruntime", output=tmp_path / "run",
                                      cache_dir=tmp_path / "cache", workers=0, quiet=True))
    capsys.readouterr()
    print_report(report)
    console = capsys.readouterr().out
    assert re.search(r"^samples +12$", console, re.MULTILINE), console
    assert "samples/s" in console and "sample to prediction" in console
    written = json.loads((tmp_path / "run" / "report.json").read_text())
    assert written["unit"] == "samples"
    assert all("samples" in text for key, text in written["measures"].items() if key != "latency_ms")
    console_without_paths = console.replace(str(tmp_path), "")
    assert not PICTURE_WORDS.search(console_without_paths + json.dumps(written["measures"]))

    data = bench(registry, "tinytext", ["onnxruntime"], [2], warmup=1, iters=2, output=tmp_path / "bench",
                 cache_dir=tmp_path / "cache")
    table = (tmp_path / "bench" / "bench.md").read_text()
    assert data["unit"] == "samples" and "| samples/s |" in table and "samples completed" in table
    assert not PICTURE_WORDS.search(table)


def test_a_classifier_of_pictures_keeps_images(registry, tmp_path, capsys):
    (tmp_path / "data" / "pictures").mkdir(parents=True)
    for i in range(3):
        write_photo(tmp_path / "data" / "pictures" / f"pic{i}.png", (40, 36), seed=i)
    (tmp_path / "data" / "classes.txt").write_text("".join(f"pic{i}.png {i}\n" for i in range(3)))
    report = run(registry, RunOptions(model="tinycnn", backend="onnxruntime", data=tmp_path / "data", output=tmp_path,
                                      cache_dir=tmp_path / "cache", workers=0, quiet=True))
    capsys.readouterr()
    print_report(report)
    console = capsys.readouterr().out
    assert re.search(r"^images +\d+$", console, re.MULTILINE) and "img/s (image file to prediction)" in console
    assert report["unit"] == "images" and "images /" in report["measures"]["throughput_fps"]
