"""The built-in classification task: `<image file name> <class>` labels, top-1/top-5 by name.

The dataset layout is ModelZoo's: DIR/<images>/ beside DIR/<labels>, or a flat DIR with --labels.
Images and labels are matched by `image_key`, never by position.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import PositiveInt

from modelzoo.core import Dataset, Sample
from modelzoo.data import find_images
from modelzoo.errors import UserError
from modelzoo.labels import image_key, read_labels
from modelzoo.manifest import Manifest, Schema, validate


def top5(scores: np.ndarray) -> list[int]:
    """The five best classes, best first."""
    best = np.argpartition(-scores, 5)[:5] if scores.size > 5 else np.arange(scores.size)
    return [int(i) for i in best[np.argsort(-scores[best], kind="stable")]]


class ClassificationSpec(Schema):
    kind: Literal["classification"]
    num_classes: PositiveInt
    images: str = "images"
    labels: str = "val_label.txt"
    label_format: str = "<image file name> <class index, 0-based>"
    output: str | None = None  # the output holding class scores; the first output when not given


@dataclass(frozen=True)
class Classification:
    num_classes: int
    images: str
    labels: str
    label_format: str
    output: str
    kind: str = "classification"
    report_keys: tuple[str, ...] = ("top1", "top5")

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> Classification:
        spec = validate(ClassificationSpec, manifest.task, manifest.path, prefix="task")
        output = spec.output or manifest.outputs[0].name
        if output not in {t.name for t in manifest.outputs}:
            raise manifest.problem("task.output", "must name one of the [[outputs]]", output)
        return cls(spec.num_classes, spec.images, spec.labels, spec.label_format, output)

    def load_dataset(self, directory: Path, labels: Path | None = None) -> Dataset:
        directory = Path(directory)
        image_dir = directory / self.images
        if not image_dir.is_dir():
            image_dir = directory
        images = find_images(image_dir)  # first: a folder without images needs no word on labels
        label_file = Path(labels) if labels else directory / self.labels
        if not label_file.is_file():
            raise UserError(f"label file {label_file} does not exist; pass --labels FILE "
                            f"(lines: {self.label_format})")
        classes = {image_key(name): cls for name, cls in read_labels(label_file, self.num_classes).items()}
        unlabelled = [p.name for p in images if image_key(p.name) not in classes]
        if unlabelled:
            more = f" and {len(unlabelled) - 1} more" if len(unlabelled) > 1 else ""
            raise UserError(f"image {image_dir / unlabelled[0]}{more} has no label in {label_file}; "
                            "add it to the label file or remove the image")
        samples = [Sample(image_key(p.name), p, classes[image_key(p.name)]) for p in images]
        return Dataset(directory.resolve(), samples, files={"labels": str(label_file.resolve())})

    def read_targets(self, labels: Path) -> dict[str, int]:
        """Sample key -> class, from a label file alone (for scoring result files of another tool)."""
        return {image_key(name): cls for name, cls in read_labels(labels, self.num_classes).items()}

    def postprocess(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        records = []
        for row in outputs[self.output].reshape(len(outputs[self.output]), -1):
            best = top5(row)
            records.append({"top5": best, "scores": [float(row[c]) for c in best]})
        return records

    def evaluator(self) -> TopK:
        return TopK()


class TopK:
    """Top-1 and top-5 accuracy over the records seen."""

    def __init__(self) -> None:
        self.images = self.top1_hits = self.top5_hits = 0

    def update(self, records: list[dict[str, Any]], targets: list[int]) -> None:
        for record, target in zip(records, targets, strict=True):
            self.images += 1
            self.top1_hits += record["top5"][0] == target
            self.top5_hits += target in record["top5"][:5]

    def compute(self) -> dict[str, Any]:
        n = self.images
        return {"images": n, "top1": self.top1_hits / n if n else None,
                "top5": self.top5_hits / n if n else None}
