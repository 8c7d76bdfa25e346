"""The built-in classification task: dataset layout, records and top-k metrics."""
from __future__ import annotations

import shutil

import numpy as np
import pytest

from modelzoo.errors import UserError
from modelzoo.tasks.classification import Classification, top5
from tests.conftest import write_photo

TASK = Classification(num_classes=1000, images="images", labels="val_label.txt",
                      label_format="<image file name> <class>", output="features")


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message
    return message


def test_seed_layout_finds_images_of_any_extension_case_sorted(tmp_path):
    (tmp_path / "images").mkdir()
    for name in ["b.jpeg", "a.JPEG", "c.Jpg", "d.png"]:
        write_photo(tmp_path / "images" / name, (20, 20), 0)
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    (tmp_path / "val_label.txt").write_text("a.JPEG 1\nb.jpeg 2\nc.Jpg 3\nd.png 4\n")
    ds = TASK.load_dataset(tmp_path)
    assert [s.source.name for s in ds.samples] == ["a.JPEG", "b.jpeg", "c.Jpg", "d.png"]
    assert [(s.key, s.target) for s in ds.samples] == [("a", 1), ("b", 2), ("c", 3), ("d", 4)]


def test_flat_directory_with_labels(tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(5):
        write_photo(flat / f"img{i}.jpg", (20, 20), i)
    labels = tmp_path / "labels.txt"
    labels.write_text("".join(f"img{i}.jpg {4 - i}\n" for i in range(5)))
    ds = TASK.load_dataset(flat, labels)
    assert [(s.key, s.target) for s in ds.samples] == [(f"img{i}", 4 - i) for i in range(5)]
    assert ds.files["labels"] == str(labels.resolve())


def test_demo_set_has_a_label_for_every_image():
    from modelzoo_lvvit.plugin import DEMO_DATA

    ds = TASK.load_dataset(DEMO_DATA)
    assert len(ds.samples) >= 4
    assert all(s.source.name.split(".")[0] == s.key for s in ds.samples)


def test_missing_label_file(tmp_path):
    write_photo(tmp_path / "a.jpg", (20, 20), 0)
    with pytest.raises(UserError) as info:
        TASK.load_dataset(tmp_path)
    assert "label file" in one_line(info) and "--labels" in one_line(info)


def test_empty_data_directory(tmp_path):
    (tmp_path / "val_label.txt").write_text("a.jpg 1\n")
    with pytest.raises(UserError) as info:
        TASK.load_dataset(tmp_path)
    assert "no images" in one_line(info) and str(tmp_path) in one_line(info)


def test_missing_data_directory(tmp_path):
    (tmp_path / "labels.txt").write_text("a.jpg 1\n")
    with pytest.raises(UserError) as info:
        TASK.load_dataset(tmp_path / "nope", tmp_path / "labels.txt")
    assert "does not exist" in one_line(info)


def test_image_without_label_names_it_and_counts_the_rest(tmp_path, dataset_dir):
    data = tmp_path / "data"
    shutil.copytree(dataset_dir, data)
    write_photo(data / "images" / "extra_1.JPEG", (20, 20), 0)
    write_photo(data / "images" / "extra_2.JPEG", (20, 20), 1)
    with pytest.raises(UserError) as info:
        TASK.load_dataset(data)
    assert "extra_1.JPEG and 1 more has no label" in one_line(info)


def test_top5_is_best_first_and_matches_a_full_sort():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.standard_normal(1000).astype(np.float32)
        assert top5(scores) == [int(i) for i in np.argsort(-scores)[:5]]


def test_postprocess_gives_one_record_per_row_with_the_best_scores():
    scores = np.zeros((2, 1000), dtype=np.float32)
    scores[0, [7, 3, 9, 1, 2]] = [5, 4, 3, 2, 1]
    scores[1, 999] = 1
    records = TASK.postprocess({"features": scores, "other": np.zeros((2, 3))})
    assert records[0] == {"top5": [7, 3, 9, 1, 2], "scores": [5.0, 4.0, 3.0, 2.0, 1.0]}
    assert records[1]["top5"][0] == 999 and len(records) == 2


def test_evaluator_counts_top1_and_top5():
    evaluator = TASK.evaluator()
    evaluator.update([{"top5": [1, 2, 3, 4, 5]}, {"top5": [9, 8, 7, 6, 0]}], [1, 0])
    evaluator.update([{"top5": [3, 1, 2, 4, 5]}], [7])
    assert evaluator.compute() == {"images": 3, "top1": 1 / 3, "top5": 2 / 3}


def test_evaluator_of_nothing_is_none_not_a_division_error():
    assert TASK.evaluator().compute()["top1"] is None
