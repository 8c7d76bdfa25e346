"""tinyseg's task, without torch (preprocess runs in worker processes): pictures with PNG masks of
class indices at their own sizes (preprocess passes each picture's size on as its meta), a batch
padded to its largest picture (collate), the per-pixel argmax cropped back to the picture as a
run-length mask (postprocess), and mean IoU and pixel accuracy (evaluator).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from modelzoo.api import Dataset, Sample, UserError, load_manifest

HERE = Path(__file__).resolve().parent
MANIFEST = load_manifest(HERE / "plugin.toml")
CLASSES = MANIFEST.outputs[0].shape[1]
HEIGHT, WIDTH = MANIFEST.axes["height"], MANIFEST.axes["width"]


def preprocess(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    """The picture at its own size (resized to the example size when outside the axes' bounds), and
    that size as the meta, [height, width]."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        if not (HEIGHT.min <= rgb.height <= HEIGHT.max and WIDTH.min <= rgb.width <= WIDTH.max):
            rgb = rgb.resize((WIDTH.example, HEIGHT.example), Image.Resampling.BILINEAR)
    pixels = ((np.asarray(rgb, dtype=np.float32) / 255 - 0.5) / 0.25).transpose(2, 0, 1).copy()
    return pixels, {"size": [rgb.height, rgb.width]}


def collate(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Pictures padded at the bottom and right with the axes' pad (0) to the batch's largest."""
    height = max(row["pixels"].shape[1] for row in rows)
    width = max(row["pixels"].shape[2] for row in rows)
    batch = np.full((len(rows), 3, height, width), HEIGHT.pad, dtype=np.float32)
    for i, row in enumerate(rows):
        _, h, w = row["pixels"].shape
        batch[i, :, :h, :w] = row["pixels"]
    return {"pixels": batch}


def encode(mask: np.ndarray) -> dict[str, Any]:
    """A mask as runs of one class in row-major order: results.jsonl stays small."""
    flat = mask.ravel()
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    lengths = np.diff(np.r_[starts, flat.size])
    return {"size": list(mask.shape), "runs": [[int(flat[s]), int(n)] for s, n in zip(starts, lengths)]}


def decode(record: dict[str, Any]) -> np.ndarray:
    classes, lengths = zip(*record["runs"])
    return np.repeat(classes, lengths).reshape(record["size"])


def read_mask(path: str, size: tuple[int, int]) -> np.ndarray:
    """Class indices of a single-channel PNG, at the prediction's size (nearest: classes stay classes)."""
    with Image.open(path) as image:
        if image.mode not in ("L", "P"):
            raise UserError(f"mask {path} is a {image.mode} image; masks are single-channel PNGs of class indices")
        if image.size != (size[1], size[0]):
            image = image.resize((size[1], size[0]), Image.Resampling.NEAREST)
        return np.asarray(image)


@dataclass(frozen=True)
class Segmentation:
    """DIR/images/<key>.png, each with its mask DIR/masks/<key>.png (or in the --labels folder)."""

    num_classes: int
    kind: str = "segmentation"
    report_keys: tuple[str, ...] = ()

    def load_dataset(self, directory: Path, labels: Path | None = None) -> Dataset:
        images = Path(directory) / "images"
        masks = Path(labels) if labels else Path(directory) / "masks"
        if not images.is_dir():
            raise UserError(f"{images} is not a directory; pass --data DIR holding images/ and masks/")
        samples = []
        for image in sorted(images.glob("*.png")):
            mask = masks / image.name
            if not mask.is_file():
                raise UserError(f"picture {image} has no mask {mask}; add the mask or remove the picture")
            samples.append(Sample(image.stem, image, str(mask.resolve())))
        return Dataset(Path(directory).resolve(), samples, files={"masks": str(masks.resolve())})

    def postprocess(self, outputs: dict[str, np.ndarray], metas: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each mask cropped to its picture (the batch was padded to its largest)."""
        return [encode(mask[:meta["size"][0], :meta["size"][1]])
                for mask, meta in zip(outputs["logits"].argmax(1), metas)]

    def evaluator(self) -> MeanIoU:
        return MeanIoU(self.num_classes)


class MeanIoU:
    """IoU per class over all pixels seen, their mean over classes that occur, and pixel accuracy."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.images = 0
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)  # [target, predicted]

    def update(self, records: list[dict[str, Any]], targets: list[str]) -> None:
        for record, target in zip(records, targets, strict=True):
            predicted = decode(record)
            truth = read_mask(target, predicted.shape)
            labelled = truth < self.num_classes  # e.g. 255 marks unlabelled pixels in VOC-style masks
            pairs = truth[labelled].astype(np.int64) * self.num_classes + predicted[labelled]
            self.confusion += np.bincount(pairs, minlength=self.num_classes ** 2).reshape(self.confusion.shape)
            self.images += 1

    def compute(self) -> dict[str, Any]:
        hits = np.diag(self.confusion)
        union = self.confusion.sum(0) + self.confusion.sum(1) - hits
        iou = [float(h / u) if u else None for h, u in zip(hits, union)]
        present = [v for v in iou if v is not None]
        total = int(self.confusion.sum())
        return {"images": self.images, "miou": float(np.mean(present)) if present else None,
                "pixel_accuracy": float(hits.sum() / total) if total else None, "iou": iou}
