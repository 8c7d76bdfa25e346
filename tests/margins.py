"""Comparing two implementations' answers without failing on a correct program.

Two correct implementations (torch and ONNX Runtime, OpenVINO, the fake Ascend toolchain, another
graph layout) differ in the last bits of every logit. Where the reference's best two logits are
closer than that, either may win, and neither is wrong. So: logits are compared within a
tolerance, and a ranking only where it cannot flip. If every logit moves by at most d, the gap
between two classes shrinks by at most 2 d: a place whose gap to the next exceeds 2 d is settled.
"""
from __future__ import annotations

import numpy as np


def settled_places(ranked_scores, bound: float) -> int:
    """How many leading places of a ranking (scores best first) no error up to `bound` per score
    can change: the places before the first gap of at most 2 * bound."""
    gaps = -np.diff(np.asarray(ranked_scores, dtype=np.float64))
    close = np.flatnonzero(gaps <= 2 * bound)
    return int(close[0]) if close.size else len(gaps)


def assert_logits_agree(reference: np.ndarray, got: np.ndarray, atol: float) -> np.ndarray:
    """Logits within `atol`; the top-1 class equal wherever the reference's top-1 margin exceeds
    twice the measured max |diff|. Returns the mask of those settled rows (the class axis is last)."""
    reference, got = np.asarray(reference, np.float64), np.asarray(got, np.float64)
    assert got.shape == reference.shape
    diff = float(np.abs(got - reference).max())
    assert diff <= atol, f"max |diff| {diff:.3g} > {atol}"
    best_two = np.sort(reference, axis=-1)[..., -2:]
    settled = best_two[..., 1] - best_two[..., 0] > 2 * diff
    np.testing.assert_array_equal(got.argmax(-1)[settled], reference.argmax(-1)[settled])
    return settled


def ranked(logits: np.ndarray, places: int = 6) -> dict:
    """A predictions.json-like record from one sample's full logits: its best classes and scores."""
    best = np.argsort(-logits, kind="stable")[:places]
    return {"top5": [int(c) for c in best], "scores": [float(logits[c]) for c in best]}


def assert_records_agree(reference: dict, got: dict, atol: float) -> set[str]:
    """Two classification runs' predictions.json records ({key: {"top5", "scores"}}): every score
    of a class both list within `atol`; the classes equal place by place as far as the reference's
    ranking is settled for errors of `atol` (scores beyond the listed ones are not recorded, so the
    tolerance stands for the measured diff there). Returns the keys whose top-1 is settled."""
    assert sorted(got) == sorted(reference)
    settled = set()
    for key, want in reference.items():
        have = dict(zip(got[key]["top5"], got[key]["scores"]))
        for cls, score in zip(want["top5"], want["scores"]):
            if cls in have:
                assert abs(have[cls] - score) <= atol, (key, cls, have[cls], score)
        places = min(settled_places(want["scores"], atol), len(got[key]["top5"]))
        assert got[key]["top5"][:places] == want["top5"][:places], (key, places)
        if places:
            settled.add(key)
    return settled
