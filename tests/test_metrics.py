from __future__ import annotations

import numpy as np

from modelzoo.metrics import accuracy, top5


def test_top5_is_best_first_and_matches_a_full_sort():
    rng = np.random.default_rng(0)
    for _ in range(20):
        scores = rng.standard_normal(1000).astype(np.float32)
        assert top5(scores) == [int(i) for i in np.argsort(-scores)[:5]]


def test_accuracy_counts_top1_top5_and_unmatched():
    predictions = {"a": [1, 2, 3, 4, 5], "b": [9, 8, 7, 6, 0], "c": [3, 1, 2, 4, 5], "orphan": [1, 1, 1, 1, 1]}
    labels = {"a": 1, "b": 0, "c": 7, "lonely": 4}
    scores = accuracy(predictions, labels)
    assert scores["images"] == 3
    assert scores["top1"] == 1 / 3          # only a
    assert scores["top5"] == 2 / 3          # a and b (0 is b's fifth)
    assert scores["results_without_label"] == 1
    assert scores["labels_without_result"] == 1


def test_accuracy_of_nothing_is_none_not_a_division_error():
    assert accuracy({}, {"a": 1})["top1"] is None
