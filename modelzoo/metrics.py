"""Top-k accuracy of class scores matched to labels by image key."""
from __future__ import annotations

import numpy as np


def top5(scores: np.ndarray) -> list[int]:
    """The five best classes, best first."""
    best = np.argpartition(-scores, 5)[:5] if scores.size > 5 else np.arange(scores.size)
    return [int(i) for i in best[np.argsort(-scores[best], kind="stable")]]


def accuracy(predictions: dict[str, list[int]], labels: dict[str, int]) -> dict:
    """Top-1/top-5 over the images that have both a prediction and a label, and what did not match."""
    matched = [key for key in predictions if key in labels]
    top1 = sum(predictions[k][0] == labels[k] for k in matched)
    top5_hits = sum(labels[k] in predictions[k][:5] for k in matched)
    n = len(matched)
    return {
        "images": n,
        "top1": top1 / n if n else None,
        "top5": top5_hits / n if n else None,
        "results_without_label": len(predictions) - n,
        "labels_without_result": sum(1 for k in labels if k not in predictions),
    }
