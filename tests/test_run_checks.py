"""What `run` checks before it touches the output folder or exports anything: option values, the data
folder, every image file's header; and where its results go when --output is not given."""
from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from modelzoo.core import Dataset, Sample
from modelzoo.errors import UserError
from modelzoo.pipeline import RunOptions, default_output, run
from modelzoo.report import print_report
from modelzoo.steps import preprocess_to_bin

NOT_AN_IMAGE = b"<html>403 Forbidden</html>\n"  # what a failed download saves under the image's name


def options(data: Path | None, weights: Path | None, output: Path | None, cache: Path, **changes) -> RunOptions:
    return RunOptions(model="tinycnn", backend="onnxruntime", batch_size=2, data=data, weights=weights,
                      output=output, cache_dir=cache, workers=0, quiet=True, **changes)


def other_runs_output(path: Path) -> Path:
    """An output folder holding the results of a run on other inputs: a run into it is refused."""
    path.mkdir()
    (path / "results.jsonl").write_text(json.dumps({"inputs": {"data": "elsewhere"}}) + "\n")
    return path


@pytest.fixture
def bad_copy(tmp_path, tiny_data) -> Path:
    """The tiny data set with pic3.png replaced by a file that is no image."""
    data = tmp_path / "data"
    shutil.copytree(tiny_data, data)
    (data / "pictures" / "pic3.png").write_bytes(NOT_AN_IMAGE)
    return data


@pytest.mark.parametrize("change,message", [
    ({"limit": 0}, "--limit must be at least 1, got 0"),
    ({"limit": -2}, "--limit must be at least 1, got -2"),
    ({"workers": -1}, "--workers must be at least 0, got -1"),
    ({"batch_size": 0}, "--bs must be at least 1, got 0"),
    ({"calibration": 0}, "--calibration must be at least 1, got 0"),
    ({"agreement_samples": -1}, "--agreement-samples must be at least 0, got -1"),
], ids=lambda value: str(value) if isinstance(value, dict) else None)
def test_bad_values_are_refused_before_the_output_folder_or_the_export(tiny_registry, tiny_data, tiny_weights,
                                                                       tmp_path, change, message):
    out = other_runs_output(tmp_path / "out")
    before = (out / "results.jsonl").read_text()
    with pytest.raises(UserError, match=f"^{message}$"):
        run(tiny_registry, dataclasses.replace(options(tiny_data, tiny_weights, out, tmp_path / "cache"), **change))
    assert (out / "results.jsonl").read_text() == before and sorted(out.iterdir()) == [out / "results.jsonl"]
    assert not (tmp_path / "cache").exists()  # nothing exported


def test_a_missing_or_empty_data_folder_is_named_as_such(tiny_registry, tiny_weights, tmp_path):
    def refusal(data: Path) -> str:
        with pytest.raises(UserError) as info:
            run(tiny_registry, options(data, tiny_weights, tmp_path / "out", tmp_path / "cache"))
        return str(info.value)

    assert refusal(tmp_path / "nonexistent") == f"data folder {tmp_path / 'nonexistent'} does not exist; check --data"
    (tmp_path / "a-file").write_text("")
    assert refusal(tmp_path / "a-file") == f"data folder {tmp_path / 'a-file'} is not a folder; check --data"
    (tmp_path / "empty" / "pictures").mkdir(parents=True)
    empty = refusal(tmp_path / "empty")
    assert empty.startswith(f"folder {tmp_path / 'empty' / 'pictures'} holds no images (") and "label" not in empty
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_a_file_that_is_no_image_is_found_while_listing_before_any_export(tiny_registry, bad_copy, tiny_weights,
                                                                         tmp_path):
    victim = bad_copy / "pictures" / "pic3.png"
    with pytest.raises(UserError) as info:
        run(tiny_registry, options(bad_copy, tiny_weights, tmp_path / "out", tmp_path / "cache"))
    assert str(info.value) == (f"cannot read image {victim}: not an image (no JPEG, PNG, BMP, GIF, TIFF, WebP or "
                               "PPM header); remove it or pass --skip-invalid")
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()

    report = run(tiny_registry, options(bad_copy, tiny_weights, tmp_path / "out", tmp_path / "cache",
                                        skip_invalid=True))
    assert report["images"] == 6 and [(s["key"], s["source"]) for s in report["skipped"]] == [("pic3", str(victim))]
    assert "not an image" in report["skipped"][0]["reason"]
    assert "pic3" not in json.loads((tmp_path / "out" / "predictions.json").read_text())
    again = run(tiny_registry, options(bad_copy, tiny_weights, tmp_path / "out", tmp_path / "cache",
                                       skip_invalid=True))  # a rerun resumes, and lists it again
    assert again["resumed_images"] == 6 and again["skipped"] == report["skipped"]


def test_every_image_unreadable_is_a_failure_before_any_export(tiny_registry, tiny_weights, tmp_path):
    data = tmp_path / "data"
    (data / "pictures").mkdir(parents=True)
    for i in range(3):
        (data / "pictures" / f"pic{i}.png").write_bytes(b"" if i == 0 else NOT_AN_IMAGE)
    (data / "classes.txt").write_text("".join(f"pic{i}.png {i}\n" for i in range(3)))
    with pytest.raises(UserError, match=f"^no sample left to evaluate: all 3 in {data} are unreadable, e.g. "
                                        f"{data / 'pictures' / 'pic0.png'}; check --data$"):
        run(tiny_registry, options(data, tiny_weights, tmp_path / "out", tmp_path / "cache", skip_invalid=True))
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()


def test_preprocess_checks_headers_too(tiny_registry, bad_copy, tmp_path, capsys):
    entry = tiny_registry.model("tinycnn")
    with pytest.raises(UserError, match="pic3.png: not an image .*--skip-invalid$"):
        preprocess_to_bin(entry, bad_copy, tmp_path / "bins", 0, skip_invalid=False)
    assert not (tmp_path / "bins").exists()
    assert preprocess_to_bin(entry, bad_copy, tmp_path / "bins", 0, skip_invalid=True) == 6
    assert "skipped: cannot read image" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "bins").iterdir()) == [f"pic{i}.bin" for i in range(7) if i != 3]


def dataset(root: Path, demo: bool = False, **files: str) -> Dataset:
    return Dataset(root, [Sample("a", root / "a.png", 0)], demo=demo, files=files)


def test_the_default_output_folder_depends_on_the_data(tmp_path):
    imagenet = tmp_path / "ImageNet val"
    same_name = tmp_path / "elsewhere" / "ImageNet val"
    folder = default_output("lvvit", "openvino", 4, dataset(imagenet, labels="a.txt"))
    assert default_output("lvvit", "openvino", 4, dataset(tmp_path, demo=True)) == \
        Path("modelzoo-out/lvvit/openvino-bs4-demo")
    assert folder.parent == Path("modelzoo-out/lvvit") and folder.name.startswith("openvino-bs4-imagenet-val-")
    assert folder == default_output("lvvit", "openvino", 4, dataset(imagenet, labels="a.txt"))  # resumes there
    assert folder != default_output("lvvit", "openvino", 4, dataset(same_name, labels="a.txt"))
    assert folder != default_output("lvvit", "openvino", 4, dataset(imagenet, labels="b.txt"))
    assert default_output("lvvit", "openvino", 4, dataset(imagenet, labels="a.txt"), limit=100) == \
        folder.with_name(folder.name + "-first100")


def test_runs_on_other_data_go_to_their_own_default_folders(tiny_registry, tiny_data, bad_copy, tiny_weights,
                                                          tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = run(tiny_registry, options(tiny_data, tiny_weights, None, tmp_path / "cache"))
    other = run(tiny_registry, options(bad_copy, tiny_weights, None, tmp_path / "cache", skip_invalid=True))
    assert first["report_path"] != other["report_path"] and other["resumed_images"] == 0
    again = run(tiny_registry, options(tiny_data, tiny_weights, None, tmp_path / "cache"))
    assert again["report_path"] == first["report_path"] and again["resumed_images"] == 7

    with pytest.raises(UserError, match="holds results of a run with other inputs"):  # --output still refuses
        run(tiny_registry, options(bad_copy, tiny_weights, Path(first["report_path"]).parent, tmp_path / "cache",
                                   skip_invalid=True))


def test_a_rerun_with_nothing_to_do_says_whose_figures_it_prints(tiny_registry, tiny_data, tiny_weights, tmp_path,
                                                                capsys):
    first = run(tiny_registry, options(tiny_data, tiny_weights, tmp_path / "out", tmp_path / "cache"))
    print_report(first)
    assert "nothing left to do" not in capsys.readouterr().out
    again = run(tiny_registry, options(tiny_data, tiny_weights, tmp_path / "out", tmp_path / "cache"))
    print_report(again)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == ("nothing left to do: every sample was done before; the figures below (throughput, "
                          f"latency, agreement) are from the run of {first['created']}")
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk["figures_from_earlier_run"] == first["created"]


@pytest.mark.parametrize("quiet", [True, False])
def test_random_weights_are_one_line_with_quiet(tiny_registry, tiny_data, tmp_path, capsys, caplog, quiet):
    with caplog.at_level("INFO"):
        run(tiny_registry, dataclasses.replace(options(tiny_data, None, tmp_path / "out", tmp_path / "cache", limit=1),
                                               quiet=quiet))
    banner = [line for line in capsys.readouterr().err.splitlines() if line.startswith("*") or "CHECKPOINT" in line]
    if quiet:
        assert banner == ["modelzoo: NO CHECKPOINT: tinycnn runs with seeded RANDOM weights: accuracy means "
                          "nothing, throughput is real"]
    else:
        assert len(banner) == 6 and "RANDOM weights" in banner[1]  # the full banner without --quiet
    assert "batch size 2, 1 sample from" in caplog.text  # not "1 samples"
