"""Numerical parity of the built-in LV-ViT-S with upstream TokenLabeling.

Skipped unless MODELZOO_UPSTREAM_TOKENLABELING names a checkout of
zihangJiang/TokenLabeling. Upstream's ``tlt/models/lvvit.py`` is imported from
that checkout (nothing of it lives in this project) and ``LV_ViT`` is built
directly with the ``lvvit_s`` arguments: ``timm.create_model('lvvit_s')`` does
not work on timm 1.x, which passes config kwargs the old constructor rejects.

The second case applies ``patches/LV_Vit.patch`` to a temporary copy of the
upstream files and checks the patched model still matches.
"""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import types
import uuid
import warnings
from pathlib import Path

import pytest
import torch

from modelzoo_lvvit.model import build_lvvit_s
from tests.conftest import spread_random_weights

UPSTREAM_ENV = "MODELZOO_UPSTREAM_TOKENLABELING"
PATCH = Path(__file__).resolve().parents[1] / "patches" / "LV_Vit.patch"
UPSTREAM_FILES = ("tlt/models/layers.py", "tlt/models/lvvit.py")

pytestmark = pytest.mark.skipif(
    not os.environ.get(UPSTREAM_ENV), reason=f"set {UPSTREAM_ENV} to a TokenLabeling checkout"
)


def _import_upstream_lvvit(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> types.ModuleType:
    """Import ``models_dir/lvvit.py`` (with its sibling layers.py) as a private package."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm 1.x: "Importing from timm.models.registry is deprecated"
        import timm.models.registry

    # Keep upstream's @register_model from adding lvvit_* / vit to timm's global registry.
    monkeypatch.setattr(timm.models.registry, "register_model", lambda fn: fn)
    name = f"_upstream_tokenlabeling_{uuid.uuid4().hex}"
    package = types.ModuleType(name)
    package.__path__ = [str(models_dir)]  # bypasses tlt/__init__.py and its data/loss imports
    sys.modules[name] = package
    # Drop the package and its submodules afterwards, so each case imports afresh.
    request.addfinalizer(lambda: [sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] == name])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm 1.x deprecation notices for the old import paths
        return importlib.import_module(f"{name}.lvvit")


def _upstream_models_dir(variant: str, tmp_path: Path) -> Path:
    root = Path(os.environ[UPSTREAM_ENV])
    if not all((root / f).is_file() for f in UPSTREAM_FILES):
        pytest.fail(f"{UPSTREAM_ENV}={root} is not a TokenLabeling checkout")
    if variant == "original":
        return root / "tlt" / "models"
    git = shutil.which("git")
    if git is None:
        pytest.skip("git is needed to apply the patch")
    for f in UPSTREAM_FILES:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / f, tmp_path / f)
    subprocess.run([git, "apply", str(PATCH)], cwd=tmp_path, check=True)
    patched = (tmp_path / "tlt/models/layers.py").read_text()
    assert "softmax(dim=1)" in patched and "attn.softmax(dim=-1)\n" not in patched
    return tmp_path / "tlt" / "models"


@pytest.mark.parametrize("variant", ["original", "patched"])
@torch.no_grad()
def test_matches_upstream(
    variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    models_dir = _upstream_models_dir(variant, tmp_path)
    upstream_mod = _import_upstream_lvvit(models_dir, monkeypatch, request)
    # upstream lvvit_s arguments (tlt/models/lvvit.py)
    upstream = upstream_mod.LV_ViT(
        patch_size=16, embed_dim=384, depth=16, num_heads=6, mlp_ratio=3.0,
        p_emb="4_2", skip_lam=2.0, return_dense=True, mix_token=True,
    ).eval()

    ours = build_lvvit_s()
    spread_random_weights(ours, seed=3)
    upstream.load_state_dict(ours.state_dict(), strict=True)

    images = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    expected = upstream(images)
    got = ours(images)

    assert got.shape == expected.shape == (4, 1000)
    assert expected.std() > 0.1  # logits spread over classes, so argmax is meaningful
    max_diff = (got - expected).abs().max().item()
    print(f"[{variant}] max |logits ours - upstream| = {max_diff:.3g}")
    assert max_diff < 1e-5
    assert torch.equal(got.argmax(dim=1), expected.argmax(dim=1))
