"""The .bin files of the preprocess step, in ModelZoo's layout."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from modelzoo.errors import UserError
from modelzoo.steps import write_bin
from modelzoo_lvvit.preprocess import preprocess_image


def test_write_bin_raw_little_endian_float32(tmp_path: Path, dataset_dir: Path) -> None:
    image = dataset_dir / "images" / "ILSVRC2012_val_00000001.JPEG"
    array = preprocess_image(image)
    target = write_bin(array, tmp_path, image)

    assert target == tmp_path / "ILSVRC2012_val_00000001.bin"
    data = target.read_bytes()
    assert len(data) == 602_112  # 3 * 224 * 224 * 4, no header
    np.testing.assert_array_equal(np.frombuffer(data, dtype="<f4").reshape(3, 224, 224), array)
    assert os.listdir(tmp_path) == ["ILSVRC2012_val_00000001.bin"]  # no temporary file left


def test_write_bin_names_by_first_dot_and_overwrites(tmp_path: Path) -> None:
    first = np.zeros((3, 2, 2), dtype=np.float32)
    second = np.ones((3, 2, 2), dtype=np.float32)
    write_bin(first, tmp_path, "photo.v2.jpg")
    target = write_bin(second, str(tmp_path), Path("some/folder/photo.v2.jpg"))
    assert target.name == "photo.bin"
    np.testing.assert_array_equal(np.fromfile(target, dtype="<f4"), second.ravel())
    assert os.listdir(tmp_path) == ["photo.bin"]


def test_write_bin_big_endian_input_is_stored_little_endian(tmp_path: Path) -> None:
    array = np.arange(12, dtype=">f4").reshape(3, 2, 2)
    target = write_bin(array, tmp_path, "a.JPEG")
    np.testing.assert_array_equal(np.fromfile(target, dtype="<f4"), np.arange(12, dtype=np.float32))


def test_write_bin_to_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(UserError) as excinfo:
        write_bin(np.zeros((3, 2, 2), dtype=np.float32), blocker, "a.JPEG")
    assert "\n" not in str(excinfo.value) and str(blocker) in str(excinfo.value)
