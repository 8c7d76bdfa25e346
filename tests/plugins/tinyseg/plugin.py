"""A tiny segmenter used by the tests, built only from the public plugin API.

Each pixel of a picture of 8x8 to 64x64 gets class scores. The plugin brings its own task (task.py):
pictures with PNG masks, run-length masks as records, mean IoU and pixel accuracy.
"""
from __future__ import annotations

import torch

from modelzoo.api import ModelEntry, hookimpl
from tests.plugins.tinyseg.task import CLASSES, HERE, MANIFEST, Segmentation, collate, preprocess


def build(variant: str) -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, CLASSES, 1)).eval()


def init_random(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_(torch.randn(p.shape, generator=generator) * (2 / fan_in) ** 0.5)


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=build, init_random=init_random, preprocess=preprocess,
                        task=Segmentation(CLASSES), collate=collate, demo_data=HERE / "demo"))
