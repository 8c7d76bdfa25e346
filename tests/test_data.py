from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from modelzoo.data import resolve_dataset
from modelzoo.errors import UserError
from modelzoo.manifest import load_manifest
from tests.conftest import write_photo

MANIFEST = load_manifest(Path(__file__).resolve().parent.parent / "plugin.toml")


def test_seed_layout_finds_images_of_any_extension_case_sorted(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ["b.jpeg", "a.JPEG", "c.Jpg", "d.png"]:
        write_photo(tmp_path / "images" / name, (20, 20), 0)
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    (tmp_path / "val_label.txt").write_text("a.JPEG 1\nb.jpeg 2\nc.Jpg 3\nd.png 4\n")
    ds = resolve_dataset(MANIFEST, tmp_path, None, None)
    assert [p.name for p in ds.images] == ["a.JPEG", "b.jpeg", "c.Jpg", "d.png"]
    assert ds.labels == {"a": 1, "b": 2, "c": 3, "d": 4}
    assert not ds.demo


def test_flat_directory_with_labels_and_limit(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(5):
        write_photo(flat / f"img{i}.jpg", (20, 20), i)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"img{i}.jpg {i}\n" for i in range(5)))
    ds = resolve_dataset(MANIFEST, flat, labels, None, limit=2)
    assert [p.name for p in ds.images] == ["img0.jpg", "img1.jpg"]
    assert ds.label_file == labels.resolve()


def test_demo_set_is_used_without_data():
    from modelzoo_lvvit.plugin import DEMO_DATA

    ds = resolve_dataset(MANIFEST, None, None, DEMO_DATA)
    assert ds.demo and len(ds.images) >= 4
    assert all(p.stem in ds.labels or p.name.split(".")[0] in ds.labels for p in ds.images)


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_missing_label_file(tmp_path):
    write_photo(tmp_path / "a.jpg", (20, 20), 0)
    with pytest.raises(UserError) as info:
        resolve_dataset(MANIFEST, tmp_path, None, None)
    assert "label file" in one_line(info) and "--labels" in one_line(info)


def test_empty_data_directory(tmp_path):
    (tmp_path / "val_label.txt").write_text("a.jpg 1\n")
    with pytest.raises(UserError) as info:
        resolve_dataset(MANIFEST, tmp_path, None, None)
    assert "no images" in one_line(info) and str(tmp_path) in one_line(info)


def test_missing_data_directory(tmp_path):
    with pytest.raises(UserError) as info:
        resolve_dataset(MANIFEST, tmp_path / "nope", tmp_path / "labels.txt", None)
    assert "does not exist" in one_line(info)


def test_image_without_label_names_it_and_counts_the_rest(tmp_path, dataset_dir):
    data = tmp_path / "data"
    shutil.copytree(dataset_dir, data)
    write_photo(data / "images" / "extra_1.JPEG", (20, 20), 0)
    write_photo(data / "images" / "extra_2.JPEG", (20, 20), 1)
    with pytest.raises(UserError) as info:
        resolve_dataset(MANIFEST, data, None, None)
    assert "extra_1.JPEG and 1 more has no label" in one_line(info)
