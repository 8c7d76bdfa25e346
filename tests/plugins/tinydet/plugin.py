"""A tiny detector used by the tests, built only from the public plugin API.

For each of 3 classes it finds the pixels of the letterbox where that colour outweighs the others
and proposes their bounding box, plus two lower-scored near-duplicates that NMS must remove:
9 candidates of fixed size, boxes [B, 9, 4] and per-class scores [B, 9, 3]. Its only weights are
a per-class confidence and threshold, so random weights still find the rectangles. The plugin
brings its own task (task.py): COCO annotations, letterbox meta, NMS and mAP.
"""
from __future__ import annotations

import torch

from modelzoo.api import ModelEntry, hookimpl
from tests.plugins.tinydet.task import CLASSES, HERE, MANIFEST, SIZE, Detection, example_inputs, preprocess


class Rectangles(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.confidence = torch.nn.Parameter(torch.full((CLASSES,), 0.9))
        self.threshold = torch.nn.Parameter(torch.full((CLASSES,), 0.4))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        others = torch.stack([image.roll(1, dims=1), image.roll(2, dims=1)]).amax(0)
        mask = (image - others) > self.threshold[None, :, None, None]          # [B, C, H, W]
        positions = torch.arange(SIZE, dtype=image.dtype)
        boxes = []
        for along in (2, 3):  # columns (over rows), then rows (over columns)
            hit = mask.any(dim=along)                                              # [B, C, SIZE]
            first = torch.where(hit, positions, torch.full_like(positions, SIZE)).amin(-1)
            last = torch.where(hit, positions + 1, torch.zeros_like(positions)).amax(-1)
            boxes.append((first, last))
        (x0, x1), (y0, y1) = boxes
        exact = torch.stack([x0, y0, x1, y1], dim=-1)                              # [B, C, 4]
        present = mask.flatten(2).any(-1).to(image.dtype) * self.confidence         # [B, C]
        shifted = exact + torch.tensor([2.0, 1.0, 2.0, 1.0])
        shrunk = exact + torch.tensor([1.0, 1.0, -1.0, -1.0])
        candidates = torch.cat([exact, shifted, shrunk], dim=1)                     # [B, 9, 4]
        eye = torch.eye(CLASSES, dtype=image.dtype)
        scores = torch.cat([present[:, :, None] * eye * w for w in (1.0, 0.6, 0.5)], dim=1)  # [B, 9, C]
        return candidates, scores


def build(variant: str) -> torch.nn.Module:
    return Rectangles().eval()


def init_random(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.confidence.copy_(0.7 + 0.3 * torch.rand(CLASSES, generator=generator))
        model.threshold.copy_(0.3 + 0.2 * torch.rand(CLASSES, generator=generator))


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=build, init_random=init_random, preprocess=preprocess,
                        task=Detection(), example_inputs=example_inputs, demo_data=HERE / "demo"))
