"""Faults a long evaluation meets: a full disk, links in the data, unwritable places."""
from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest

from modelzoo import resume
from modelzoo.data import find_images
from modelzoo.errors import UserError
from modelzoo.fileio import atomic_write_bytes
from modelzoo.pipeline import RunOptions, run
from modelzoo_lvvit.preprocess import preprocess_image
from tests.conftest import write_photo


@pytest.fixture
def tiny(tiny_registry, tiny_data, tiny_weights):
    return tiny_registry, tiny_data, tiny_weights


def options(data: Path, weights: Path, output: Path, cache: Path) -> RunOptions:
    return RunOptions(model="tinycnn", backend="onnxruntime", batch_size=2, data=data, weights=weights,
                      output=output, cache_dir=cache, workers=0, quiet=True)


def test_a_full_disk_stops_the_run_in_one_line_and_a_rerun_completes_it(tiny, tmp_path, monkeypatch):
    registry, data, weights = tiny
    reference = run(registry, options(data, weights, tmp_path / "reference", tmp_path / "cache"))

    real_fsync, calls = os.fsync, []

    def fsync_until_full(fd):
        calls.append(fd)
        if len(calls) > 2:  # the header and the first batch fit; then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(resume.os, "fsync", fsync_until_full)
    out = tmp_path / "out"
    with pytest.raises(UserError) as info:
        run(registry, options(data, weights, out, tmp_path / "cache"))
    assert "\n" not in str(info.value) and "No space left on device" in str(info.value)
    assert "rerun the same command to resume" in str(info.value)
    assert not (out / "report.json").exists()

    monkeypatch.setattr(resume.os, "fsync", real_fsync)
    finished = run(registry, options(data, weights, out, tmp_path / "cache"))
    assert finished["resumed_images"] >= 2
    assert json.loads((out / "predictions.json").read_text()) == \
        json.loads((tmp_path / "reference" / "predictions.json").read_text())
    assert (finished["top1"], finished["images"]) == (reference["top1"], reference["images"])


def test_an_atomic_write_that_fails_leaves_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    target.write_text('{"old": true}')

    def no_space(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(UserError, match="No space left on device"):
        atomic_write_bytes(target, b'{"new": true}')
    assert target.read_text() == '{"old": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary file left behind


def test_an_unwritable_output_directory_is_one_line(tiny, tmp_path):
    registry, data, weights = tiny
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    with pytest.raises(UserError, match="cannot write to output directory") as info:
        run(registry, options(data, weights, blocker / "out", tmp_path / "cache"))
    assert "--output" in str(info.value)


def test_symlinks_in_the_data_are_followed_and_dangling_ones_fail_loudly(tmp_path):
    store, data = tmp_path / "store", tmp_path / "data"
    store.mkdir()
    data.mkdir()
    real = write_photo(store / "real.JPEG", (300, 260), seed=1)
    (data / "a.JPEG").symlink_to(real)
    (data / "b.JPEG").symlink_to(store / "deleted.JPEG")
    images = find_images(data)
    assert [p.name for p in images] == ["a.JPEG", "b.JPEG"]
    assert (preprocess_image(images[0]) == preprocess_image(real)).all()
    with pytest.raises(UserError) as info:
        preprocess_image(images[1])
    assert "\n" not in str(info.value) and "b.JPEG" in str(info.value)


def test_a_rerun_with_nothing_left_keeps_the_figures_it_cannot_measure(tiny, tmp_path, caplog):
    registry, data, weights = tiny
    first = run(registry, options(data, weights, tmp_path / "out", tmp_path / "cache"))
    with caplog.at_level("INFO"):
        again = run(registry, options(data, weights, tmp_path / "out", tmp_path / "cache"))
    assert "nothing left to do: 7 samples already done" in caplog.text and "--fresh" in caplog.text
    assert again["resumed_images"] == 7
    assert first["figures_from_earlier_run"] is None and again["figures_from_earlier_run"] == first["created"]
    third = run(registry, options(data, weights, tmp_path / "out", tmp_path / "cache"))
    assert third["figures_from_earlier_run"] == first["created"]  # the run that measured them, not the last
    for key in ("throughput_fps", "e2e_fps", "parity"):
        assert again[key] == first[key] and first[key] is not None
    assert (again["top1"], again["images"]) == (first["top1"], first["images"])
