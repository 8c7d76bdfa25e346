"""Shared fixtures: real images, a checkpoint with spread-out predictions, an isolated environment."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """No test may find weights in the user's real ~/.cache/modelzoo."""
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path_factory.getbasetemp() / "modelzoo-home"))


def write_photo(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> Path:
    """A real encoded image with smooth structure plus noise, so that resizing has work to do."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([128 + 100 * np.sin(x / rng.uniform(5, 40) + rng.uniform(0, 6)) * np.cos(y / rng.uniform(5, 40))
                     for _ in range(3)], axis=-1)
    pixels = (base + rng.normal(0, 10, base.shape)).clip(0, 255).astype(np.uint8)
    Image.fromarray(pixels).convert(mode).save(path)
    return path


@pytest.fixture(scope="session")
def dataset_dir(tmp_path_factory) -> Path:
    """The seed's layout: DIR/images/*.JPEG and DIR/val_label.txt, six real JPEG files."""
    root = tmp_path_factory.mktemp("dataset")
    (root / "images").mkdir()
    lines = []
    for i, size in enumerate([(500, 375), (375, 500), (300, 300), (640, 427), (260, 250), (333, 500)]):
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        write_photo(root / "images" / name, size, seed=i)
        lines.append(f"{name} {(i * 167) % 1000}\n")
    (root / "val_label.txt").write_text("".join(lines))
    return root


def spread_weights(model, seed: int = 0) -> None:
    """Re-init every Linear N(0, 1/fan_in): with upstream init LV-ViT predicts one class for any
    input, and agreement between backends on such outputs proves nothing."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):
                fan_in = module.weight.shape[1]
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) / fan_in ** 0.5)


@pytest.fixture(scope="session")
def spread_checkpoint(tmp_path_factory) -> Path:
    """An LV-ViT-S checkpoint whose predictions differ from image to image."""
    import torch

    from modelzoo_lvvit.model import build_lvvit_s

    model = build_lvvit_s()
    spread_weights(model)
    path = tmp_path_factory.mktemp("weights") / "spread.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One artifact cache for the whole session, so each export happens once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def no_entrypoints(monkeypatch):
    monkeypatch.setenv("MODELZOO_LOAD_ENTRYPOINTS", "0")


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None):
    """`modelzoo ...` in a subprocess, as a user runs it."""
    import subprocess
    import sys

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "modelzoo", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=600)
