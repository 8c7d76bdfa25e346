"""Shared fixtures: real images, a checkpoint with spread-out predictions, an isolated environment."""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

FAKE_ASCEND_PLUGIN = "modelzoo.testing.fake_ascend.fixture"
# The fake Ascend toolchain's `fake_ascend` fixture, opted in as a plugin author's suite does.
pytest_plugins = [FAKE_ASCEND_PLUGIN]


def loopback_only() -> bool:
    """Inside a network namespace whose only interface is loopback (`unshare -n`)?"""
    import socket

    return [name for _, name in socket.if_nameindex()] == ["lo"]  # asks the kernel of this namespace


def pytest_collection_modifyitems(config, items):
    """Ray binds to the host's own address even when told 127.0.0.1: its tests run only where that
    address is loopback, so that no test server is reachable from the network."""
    if loopback_only():
        return
    skip = pytest.mark.skip(reason="Ray tests run only in a loopback-only network namespace: "
                                   "unshare -n sh -c 'ip link set lo up && exec pytest -m ray' (as root; .ci/run does)")
    for item in items:
        if item.get_closest_marker("ray"):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory, monkeypatch):
    """No test may find weights in the user's real ~/.cache/modelzoo."""
    monkeypatch.setenv("MODELZOO_HOME", str(tmp_path_factory.getbasetemp() / "modelzoo-home"))


def write_photo(path: Path, size: tuple[int, int], seed: int, mode: str = "RGB") -> Path:
    """A real encoded image: a random tint, stripes of random period and direction, and noise,
    so that pictures differ enough for a model to tell them apart and resizing has work to do."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    tint = rng.uniform(40, 215, 3)
    angle, period = rng.uniform(0, np.pi), rng.uniform(4, 60)
    stripes = np.sin((x * np.cos(angle) + y * np.sin(angle)) / period)
    base = tint + stripes[..., None] * rng.uniform(20, 90, 3)
    pixels = (base + rng.normal(0, 12, base.shape)).clip(0, 255).astype(np.uint8)
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


@torch.no_grad()
def spread_random_weights(model: torch.nn.Module, seed: int) -> None:
    """Re-init so logits spread over classes: with upstream init LV-ViT predicts one class for
    any input, and agreement between backends on such outputs proves nothing. Linear weights
    N(0, 1/fan_in), small random biases, norm affines and BN statistics."""
    from modelzoo_lvvit.model import init_random_weights

    init_random_weights(model, seed)
    g = torch.Generator().manual_seed(seed + 1)

    def rand(t: torch.Tensor, std: float, mean: float = 0.0) -> torch.Tensor:
        return torch.randn(t.shape, generator=g) * std + mean

    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            m.weight.copy_(rand(m.weight, 1.0 / math.sqrt(m.in_features)))
            if m.bias is not None:
                m.bias.copy_(rand(m.bias, 0.02))
        elif isinstance(m, torch.nn.LayerNorm):
            m.weight.copy_(rand(m.weight, 0.1, 1.0))
            m.bias.copy_(rand(m.bias, 0.02))
        elif isinstance(m, torch.nn.BatchNorm2d):
            m.weight.copy_(rand(m.weight, 0.1, 1.0))
            m.bias.copy_(rand(m.bias, 0.1))
            m.running_mean.copy_(rand(m.running_mean, 0.1))
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture(scope="session")
def spread_checkpoint(tmp_path_factory) -> Path:
    """An LV-ViT-S checkpoint whose predictions differ from image to image."""
    import torch

    from modelzoo_lvvit.model import build_lvvit_s

    model = build_lvvit_s()
    spread_random_weights(model, seed=0)
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


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """`modelzoo ...` in a subprocess, as a user runs it."""
    import subprocess
    import sys

    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "modelzoo", *args], capture_output=True, text=True,
                          cwd=cwd, env=full_env, timeout=timeout)


REPO = Path(__file__).resolve().parents[1]


def install_plugin(site: Path, dist: str, entry: str) -> dict[str, str]:
    """One more plugin installed: a dist-info in `site` whose entry point is `entry`; the environment
    that sees it (the repository too, so that plugins may build on the test plugins)."""
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[modelzoo]\n{entry}\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")])}


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """The tiny test plugin's layout: DIR/pictures/*.png and DIR/classes.txt, seven pictures."""
    data = tmp_path_factory.mktemp("tiny-data")
    (data / "pictures").mkdir()
    for i in range(7):
        write_photo(data / "pictures" / f"pic{i}.png", (40 + 3 * i, 50), seed=i)
    (data / "classes.txt").write_text("".join(f"pic{i}.png {i % 10}\n" for i in range(7)))
    return data


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """tinycnn weights whose predictions differ between the tiny pictures."""
    import tests.plugins.tinycnn.plugin as tiny_plugin

    model = tiny_plugin.build("standard")
    tiny_plugin.init_random(model, 4)
    path = tmp_path_factory.mktemp("tiny-weights") / "tiny.pth"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="session")
def tiny_registry():
    """Built-in backends plus the tiny plugin, and nothing installed."""
    import tests.plugins.tinycnn.plugin as tiny_plugin
    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tiny_plugin)
    return Registry(pm)


def predicted_classes(output: Path) -> dict[str, list[int]]:
    """Sample key -> top-5 classes from a classification run's predictions.json (scores left out:
    backends agree on classes, not on the last bits of every score)."""
    import json

    return {key: record["top5"] for key, record in json.loads((output / "predictions.json").read_text()).items()}


def registering(entry):
    """A plugin object whose hook registers `entry` (a ModelEntry made or changed by a test)."""
    from modelzoo.hookspecs import hookimpl

    class Plugin:
        @hookimpl
        def modelzoo_register_models(self, register):
            register(entry)

    return Plugin()


def registry_with(*plugins):
    """The built-in backends plus `plugins`, and nothing installed."""
    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry

    pm = get_plugin_manager(load_entrypoints=False)
    for plugin in plugins:
        pm.register(plugin)
    return Registry(pm)
