"""A tiny model plugin used by the tests, built only from the public plugin API."""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from modelzoo.api import ModelEntry, hookimpl, load_manifest

MANIFEST = load_manifest(Path(__file__).with_name("plugin.toml"))
# Seconds each preprocess call waits: tests that stop a run in its middle set it to slow the run down.
DELAY_ENV = "MODELZOO_TINY_DELAY"


class TinyCNN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2), torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        return self.head(self.features(x))


def build(variant: str) -> torch.nn.Module:
    return TinyCNN().eval()


def init_random(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            scale = (2 / fan_in) ** 0.5 if p.dim() > 1 else 0.0  # He init, zero biases
            p.copy_(torch.randn(p.shape, generator=generator) * scale)


def preprocess(path: Path) -> np.ndarray:
    time.sleep(float(os.environ.get(DELAY_ENV, "0")))
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    return ((np.asarray(rgb, dtype=np.float32) / 255 - 0.5) / 0.25).transpose(2, 0, 1).copy()


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=build, init_random=init_random, preprocess=preprocess))
