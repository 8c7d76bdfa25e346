"""Numerical parity of the built-in LV-ViT-S with upstream TokenLabeling.

Skipped unless MODELZOO_UPSTREAM_TOKENLABELING names a git checkout of
zihangJiang/TokenLabeling holding the manifest's pinned commit. Upstream's model
is built by ``modelzoo_lvvit.upstream.build_upstream`` (nothing of upstream
lives in this project).

The "original" case builds from that checkout as it is; the "patched" case first
prepares a checkout the way ModelZoo does (``prepare_source``: pinned commit plus
``patches/LV_Vit.patch``, copied from the local checkout, no network) and
compares it with the built-in model in its "ascend" layout.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import timm
import torch

from modelzoo.manifest import load_manifest
from modelzoo.source import prepare_source
from modelzoo_lvvit.model import build_lvvit_s
from modelzoo_lvvit.plugin import MANIFEST_PATH
from modelzoo_lvvit.upstream import build_upstream
from tests.conftest import spread_random_weights
from tests.margins import assert_logits_agree

UPSTREAM_ENV = "MODELZOO_UPSTREAM_TOKENLABELING"

pytestmark = pytest.mark.skipif(
    not os.environ.get(UPSTREAM_ENV), reason=f"set {UPSTREAM_ENV} to a TokenLabeling checkout"
)


def _upstream_checkout(variant: str, tmp_path: Path) -> Path:
    root = Path(os.environ[UPSTREAM_ENV])
    if variant == "original":
        return root
    if shutil.which("git") is None:
        pytest.skip("git is needed to prepare the patched checkout")
    dest = prepare_source(load_manifest(MANIFEST_PATH), tmp_path / "TokenLabeling", from_dir=root)
    patched = (dest / "tlt/models/layers.py").read_text()
    assert "softmax(dim=1)" in patched and "attn.softmax(dim=-1)\n" not in patched
    return dest


@pytest.mark.parametrize("variant, layout", [("original", "standard"), ("patched", "ascend")])
@torch.no_grad()
def test_matches_upstream(variant: str, layout: str, tmp_path: Path) -> None:
    upstream = build_upstream(_upstream_checkout(variant, tmp_path), layout)
    assert not upstream.training
    assert not timm.list_models("lvvit*")  # upstream's @register_model was kept out of timm

    ours = build_lvvit_s(softmax_layout=layout)
    spread_random_weights(ours, seed=3)
    upstream.load_state_dict(ours.state_dict(), strict=True)

    images = torch.randn(4, 3, 224, 224, generator=torch.Generator().manual_seed(4))
    expected = upstream(images)
    got = ours(images)

    assert got.shape == expected.shape == (4, 1000)
    assert expected.std() > 0.1  # logits spread over classes, so argmax is meaningful
    max_diff = (got - expected).abs().max().item()
    print(f"[{variant}] max |logits ours - upstream| = {max_diff:.3g}")
    # Top-1 only where upstream's margin exceeds twice the measured diff: a near tie may flip.
    assert assert_logits_agree(expected.numpy(), got.numpy(), atol=1e-5).any()
