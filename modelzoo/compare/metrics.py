"""How far one tensor of the backend is from the same tensor of the fp32 ONNX."""
from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.99  # msprobe's default: the first op below it is where precision is lost


class Figures:
    """cosine, max |diff|, max relative error and the backend's inf/nan counts of one tensor, over
    batches given one at a time (`add`): the figures of their concatenation along the batch axis,
    without holding it. A non-finite value on either side makes cosine and the differences
    meaningless: they are None then and the counts tell the story."""

    def __init__(self) -> None:
        self.rows = 0
        self.shape: list[int] | None = None  # one batch's shape after its first axis
        self.mismatch: list[int] | None = None  # fp32's shape where the sides' shapes differ
        self.inf = self.nan = 0
        self.finite = True
        self.dot = self.ref_norm2 = self.got_norm2 = 0.0
        self.max_abs = self.max_rel = 0.0

    def add(self, golden: np.ndarray, other: np.ndarray) -> None:
        ref = np.asarray(golden, dtype=np.float64)
        got = np.asarray(other, dtype=np.float64)
        self.rows += got.shape[0] if got.ndim else 1
        self.shape = list(got.shape[1:])
        self.inf += int(np.isinf(got).sum())
        self.nan += int(np.isnan(got).sum())
        if ref.shape != got.shape:
            self.mismatch = list(ref.shape)
            return
        if not (np.isfinite(ref).all() and np.isfinite(got).all()):
            self.finite = False
            return
        ref, got = ref.ravel(), got.ravel()
        diff = np.abs(ref - got)
        self.dot += float(ref @ got)
        self.ref_norm2 += float(ref @ ref)
        self.got_norm2 += float(got @ got)
        self.max_abs = max(self.max_abs, float(diff.max(initial=0.0)))
        scale = np.maximum(np.abs(ref), 1e-6)  # relative to the fp32 value, tiny values not dividing by ~0
        self.max_rel = max(self.max_rel, float((diff / scale).max(initial=0.0)))

    def figures(self) -> dict:
        figures = {"shape": [self.rows, *(self.shape or [])], "inf": self.inf, "nan": self.nan}
        if self.mismatch is not None:
            return {**figures, "cosine": None, "max_abs": None, "max_rel": None,
                    "note": f"shape {self.mismatch} in fp32"}
        if not self.finite:
            return {**figures, "cosine": None, "max_abs": None, "max_rel": None}
        norms = np.sqrt(self.ref_norm2) * np.sqrt(self.got_norm2)
        cosine = self.dot / norms if norms > 0 else (1.0 if self.max_abs == 0 else 0.0)
        return {**figures, "cosine": float(cosine), "max_abs": self.max_abs, "max_rel": self.max_rel}


def tensor_figures(golden: np.ndarray, other: np.ndarray) -> dict:
    """Figures of one whole tensor (see Figures)."""
    figures = Figures()
    figures.add(golden, other)
    return figures.figures()


def diverges(figures: dict, threshold: float) -> bool:
    """Below the cosine threshold, or any inf/nan where fp32 had none."""
    if figures.get("observable") is False:
        return False
    return figures["inf"] > 0 or figures["nan"] > 0 or figures["cosine"] is None or figures["cosine"] < threshold


def first_divergent(rows: list[dict], threshold: float) -> dict | None:
    """The first row (topological order) that diverges, or None."""
    return next((row for row in rows if diverges(row, threshold)), None)
