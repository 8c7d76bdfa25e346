"""How far one tensor of the backend is from the same tensor of the fp32 ONNX."""
from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.99  # msprobe's default: the first op below it is where precision is lost


def tensor_figures(golden: np.ndarray, other: np.ndarray) -> dict:
    """cosine, max |diff|, max relative error and the backend's inf/nan counts, over all samples.

    A non-finite value on either side makes cosine and the differences meaningless: they are None
    then and the counts tell the story."""
    ref = np.asarray(golden, dtype=np.float64).ravel()
    got = np.asarray(other, dtype=np.float64).ravel()
    figures = {"shape": list(np.shape(other)), "inf": int(np.isinf(got).sum()), "nan": int(np.isnan(got).sum())}
    if ref.shape != got.shape:
        return {**figures, "cosine": None, "max_abs": None, "max_rel": None,
                "note": f"shape {list(np.shape(golden))} in fp32"}
    if not (np.isfinite(ref).all() and np.isfinite(got).all()):
        return {**figures, "cosine": None, "max_abs": None, "max_rel": None}
    diff = np.abs(ref - got)
    norms = np.linalg.norm(ref) * np.linalg.norm(got)
    cosine = float(ref @ got / norms) if norms > 0 else (1.0 if not diff.any() else 0.0)
    scale = np.maximum(np.abs(ref), 1e-6)  # relative to the fp32 value, tiny values not dividing by ~0
    return {**figures, "cosine": cosine, "max_abs": float(diff.max(initial=0.0)),
            "max_rel": float((diff / scale).max(initial=0.0))}


def diverges(figures: dict, threshold: float) -> bool:
    """Below the cosine threshold, or any inf/nan where fp32 had none."""
    if figures.get("observable") is False:
        return False
    return figures["inf"] > 0 or figures["nan"] > 0 or figures["cosine"] is None or figures["cosine"] < threshold


def first_divergent(rows: list[dict], threshold: float) -> dict | None:
    """The first row (topological order) that diverges, or None."""
    return next((row for row in rows if diverges(row, threshold)), None)
