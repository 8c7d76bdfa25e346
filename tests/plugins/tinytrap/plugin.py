"""A test plugin whose model carries two planted precision traps (see plugin.toml), built only
from the public plugin API."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from modelzoo.api import ModelEntry, hookimpl, load_manifest

MANIFEST = load_manifest(Path(__file__).with_name("plugin.toml"))
OUTLIER = 3000.0     # channel 0 of /widen/Gemm's output: fine in fp16, ruinous for per-tensor int8
BLOWUP = 3.0e4       # /blowup/Gemm's weights are scaled up by this, /shrink/Gemm's down by BLOWUP / HEADROOM
# and /head/Gemm's down by HEADROOM. NNCF widens a weight range under 8e-5 (a "zero filter") to 8e-5:
# shrink's weights scaled by 1 / BLOWUP alone (about 1e-5) would share that floor and use under half
# of int8's levels, an int8 trap besides the fp16 one.
HEADROOM = 30.0


class TinyTrap(torch.nn.Module):
    def __init__(self):
        super().__init__()
        # The pixels into a wide Linear: int8 handles its long sums well, so the traps stand out.
        self.features = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 16), torch.nn.ReLU())
        self.widen = torch.nn.Linear(16, 16)
        self.mix = torch.nn.Linear(16, 16)
        self.blowup = torch.nn.Linear(16, 16)
        self.shrink = torch.nn.Linear(16, 16)
        self.head = torch.nn.Linear(16, 10)

    def forward(self, x):
        x = torch.relu(self.mix(self.widen(self.features(x))))
        return self.head(torch.relu(self.shrink(self.blowup(x))))


def build(variant: str) -> torch.nn.Module:
    return TinyTrap().eval()


@torch.no_grad()
def init_random(model: torch.nn.Module, seed: int) -> None:
    """He-initialised weights, then the traps: a constant channel 0 of OUTLIER out of widen that
    mix ignores (its weights on it are zero), and a pair of layers scaled by BLOWUP and
    HEADROOM / BLOWUP, head scaled by 1 / HEADROOM to give the same scores."""
    generator = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        scale = (2 / p[0].numel()) ** 0.5 if p.dim() > 1 else 0.0  # zero biases
        p.copy_(torch.randn(p.shape, generator=generator) * scale)
    model.widen.weight[0] = 0.0
    model.widen.bias[0] = OUTLIER
    model.mix.weight[:, 0] = 0.0
    model.blowup.weight *= BLOWUP
    model.blowup.bias *= BLOWUP
    model.shrink.weight *= HEADROOM / BLOWUP
    model.head.weight /= HEADROOM


def preprocess(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        rgb = image.convert("RGB").resize((32, 32), Image.Resampling.BILINEAR)
    return ((np.asarray(rgb, dtype=np.float32) / 255 - 0.5) / 0.25).transpose(2, 0, 1).copy()


def example_inputs(batch: int, seed: int) -> dict[str, np.ndarray]:
    """Pixels well inside preprocess's range [-2, 2]: the parity inputs then stay inside the int8 scales
    calibrated on pictures, so that only the planted outlier ruins int8."""
    rng = np.random.default_rng(seed)
    return {"pixels": rng.uniform(-1, 1, (batch, 3, 32, 32)).astype(np.float32)}


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=build, init_random=init_random, preprocess=preprocess,
                            example_inputs=example_inputs))
