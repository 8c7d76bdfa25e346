"""tinydet's task, without torch (preprocess runs in worker processes): pictures of any size with
COCO instances annotations, a letterbox preprocess that returns its scale and padding as the
sample's meta, a postprocess that keeps the best candidates (numpy NMS) and maps them back to the
picture through the meta, and COCO mAP from pycocotools (evaluator).
"""
from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modelzoo.api import Dataset, Sample, UserError, load_manifest

HERE = Path(__file__).resolve().parent
MANIFEST = load_manifest(HERE / "plugin.toml")
SIZE = MANIFEST.inputs[0].shape[2]
CLASSES = MANIFEST.outputs[1].shape[2]
SCORE_MIN = 0.05  # candidates below this are absent classes
NMS_IOU = 0.5


def letterbox(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The picture scaled to fit SIZE x SIZE, centred on black, as CHW floats in [0, 1]; and the
    meta that maps letterbox pixels back: (x - pad_x) / scale."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    scale = SIZE / max(width, height)
    new = (max(1, round(width * scale)), max(1, round(height * scale)))
    pad = ((SIZE - new[0]) // 2, (SIZE - new[1]) // 2)
    canvas = np.zeros((SIZE, SIZE, 3), dtype=np.float32)
    resized = np.asarray(rgb.resize(new, Image.Resampling.BILINEAR), dtype=np.float32) / 255
    canvas[pad[1]:pad[1] + new[1], pad[0]:pad[0] + new[0]] = resized
    return canvas.transpose(2, 0, 1).copy(), {"scale": scale, "pad": list(pad), "size": [width, height]}


def preprocess(path: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    image, meta = letterbox(path)
    return {"image": image}, meta


def example_inputs(batch: int, seed: int) -> dict[str, np.ndarray]:
    """Seeded letterboxes with rectangles of random classes, places and sizes: random normals would
    light up every pixel, give every sample the same boxes, and make parity prove nothing."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 0.15, size=(batch, 3, SIZE, SIZE)).astype(np.float32)
    for image in images:
        for label in range(CLASSES):
            if rng.random() < 0.7:
                (x, y), (w, h) = rng.integers(0, SIZE - 16, 2), rng.integers(4, 16, 2)
                image[:, y:y + h, x:x + w] = 0.12
                image[label, y:y + h, x:x + w] = 0.9
    return {"image": images}


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Indices of the boxes (x0, y0, x1, y1) kept by greedy non-maximum suppression, best first:
    each box suppresses the lower-scored ones that overlap it by more than `iou`."""
    order = np.argsort(-scores, kind="stable")
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        low = np.maximum(boxes[best, :2], boxes[rest, :2])
        high = np.minimum(boxes[best, 2:], boxes[rest, 2:])
        overlap = np.clip(high - low, 0, None).prod(axis=1)
        union = areas[best] + areas[rest] - overlap
        ratio = np.divide(overlap, union, out=np.zeros_like(overlap), where=union > 0)
        order = rest[ratio <= iou]
    return np.array(keep, dtype=np.int64)


def unletterbox(boxes: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Letterbox boxes (x0, y0, x1, y1) in the picture's own pixels, clipped to it."""
    pad = np.array(meta["pad"] * 2, dtype=np.float64)
    limit = np.array(meta["size"] * 2, dtype=np.float64)
    return np.clip((boxes - pad) / meta["scale"], 0, limit)


def detect(boxes: np.ndarray, scores: np.ndarray, meta: dict[str, Any]) -> dict[str, list]:
    """One picture's detections: best class per candidate, NMS per class, COCO [x, y, w, h] boxes."""
    labels, best = scores.argmax(1), scores.max(1)
    kept = []
    for c in np.unique(labels[best >= SCORE_MIN]):
        chosen = np.flatnonzero((labels == c) & (best >= SCORE_MIN))
        kept.extend(chosen[nms(boxes[chosen], best[chosen], NMS_IOU)])
    xyxy = unletterbox(boxes[kept].astype(np.float64), meta)
    xywh = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    return {"boxes": np.round(xywh, 3).tolist(), "scores": [round(float(s), 6) for s in best[kept]],
            "labels": [int(c) for c in labels[kept]]}


@dataclass(frozen=True)
class Detection:
    """DIR/images/<file> with DIR/annotations.json (COCO instances: images, annotations, categories)."""

    kind: str = "detection"
    report_keys: tuple[str, ...] = ("map", "map50")

    def load_dataset(self, directory: Path, labels: Path | None = None) -> Dataset:
        path = Path(labels) if labels else Path(directory) / MANIFEST.task["annotations"]
        try:
            coco = json.loads(path.read_text())
            boxes: dict[int, list] = {image["id"]: [] for image in coco["images"]}
            for a in coco["annotations"]:
                boxes[a["image_id"]].append({"bbox": a["bbox"], "category_id": a["category_id"]})
            samples = [Sample(Path(image["file_name"]).stem, Path(directory) / "images" / image["file_name"],
                              {"id": image["id"], "width": image["width"], "height": image["height"],
                               "annotations": boxes[image["id"]]}) for image in coco["images"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"cannot read COCO annotations {path} ({type(exc).__name__}: {exc}); "
                            "pass --data DIR holding images/ and annotations.json") from None
        return Dataset(Path(directory).resolve(), samples, files={"annotations": str(path.resolve())})

    def postprocess(self, outputs: dict[str, np.ndarray], metas: list[dict[str, Any]]) -> list[dict[str, list]]:
        return [detect(b, s, meta) for b, s, meta in zip(outputs["boxes"], outputs["scores"], metas, strict=True)]

    def evaluator(self) -> CocoMap:
        return CocoMap()


class CocoMap:
    """mAP@[.5:.95] and mAP@.5 over every picture seen, from pycocotools' COCOeval."""

    def __init__(self) -> None:
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.detections: list[dict] = []

    def update(self, records: list[dict[str, list]], targets: list[dict[str, Any]]) -> None:
        for record, target in zip(records, targets, strict=True):
            self.images.append({k: target[k] for k in ("id", "width", "height")})
            for a in target["annotations"]:
                x, y, w, h = a["bbox"]
                self.annotations.append({"id": len(self.annotations) + 1, "image_id": target["id"], "bbox": a["bbox"],
                                         "category_id": a["category_id"], "area": w * h, "iscrowd": 0})
            for box, score, label in zip(record["boxes"], record["scores"], record["labels"]):
                self.detections.append({"image_id": target["id"], "bbox": box, "score": score,
                                        "category_id": label + 1})

    def compute(self) -> dict[str, Any]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        if not self.detections:
            return {"images": len(self.images), "map": 0.0, "map50": 0.0}
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            truth = COCO()
            truth.dataset = {"images": self.images, "annotations": self.annotations,
                             "categories": [{"id": c + 1, "name": str(c)} for c in range(CLASSES)]}
            truth.createIndex()
            evaluation = COCOeval(truth, truth.loadRes(self.detections), "bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        return {"images": len(self.images), "map": float(evaluation.stats[0]), "map50": float(evaluation.stats[1])}
