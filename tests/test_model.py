"""Tests for the built-in LV-ViT-S (modelzoo_lvvit.model).

The expected state_dict layout is written out from the upstream facts
(TokenLabeling ``lvvit_s``: 204 entries, 26,151,824 parameters) rather than
derived from the model, so a wrong key or shape in the model fails here.
"""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from modelzoo_lvvit.model import (
    LVViT,
    build_lvvit_s,
    init_random_weights,
    set_softmax_layout,
)
from tests.conftest import spread_random_weights

EMBED, HIDDEN, DEPTH, HEADS, CLASSES, STEM = 384, 1152, 16, 6, 1000, 64


def expected_state_dict_shapes() -> dict[str, tuple[int, ...]]:
    """Upstream lvvit_s state_dict: key -> shape (num_batches_tracked are 0-d)."""
    shapes: dict[str, tuple[int, ...]] = {"cls_token": (1, 1, EMBED), "pos_embed": (1, 197, EMBED)}
    for i, (c_in, k) in enumerate([(3, 7), (STEM, 3), (STEM, 3)], start=1):
        shapes[f"patch_embed.conv{i}.weight"] = (STEM, c_in, k, k)
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"patch_embed.bn{i}.{name}"] = (STEM,)
        shapes[f"patch_embed.bn{i}.num_batches_tracked"] = ()
    shapes["patch_embed.proj.weight"] = (EMBED, STEM, 8, 8)
    shapes["patch_embed.proj.bias"] = (EMBED,)
    for b in range(DEPTH):
        p = f"blocks.{b}."
        shapes.update({
            p + "norm1.weight": (EMBED,), p + "norm1.bias": (EMBED,),
            p + "attn.qkv.weight": (3 * EMBED, EMBED),
            p + "attn.proj.weight": (EMBED, EMBED), p + "attn.proj.bias": (EMBED,),
            p + "norm2.weight": (EMBED,), p + "norm2.bias": (EMBED,),
            p + "mlp.fc1.weight": (HIDDEN, EMBED), p + "mlp.fc1.bias": (HIDDEN,),
            p + "mlp.fc2.weight": (EMBED, HIDDEN), p + "mlp.fc2.bias": (EMBED,),
        })
    shapes.update({"norm.weight": (EMBED,), "norm.bias": (EMBED,)})
    for head in ("head", "aux_head"):
        shapes.update({f"{head}.weight": (CLASSES, EMBED), f"{head}.bias": (CLASSES,)})
    return shapes


@pytest.fixture(scope="module")
def model() -> LVViT:
    m = build_lvvit_s()
    spread_random_weights(m, seed=0)
    return m


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))


def test_state_dict_keys_shapes_and_dtypes(model: LVViT) -> None:
    expected = expected_state_dict_shapes()
    assert len(expected) == 204
    sd = model.state_dict()
    assert sorted(sd) == sorted(expected)
    for key, tensor in sd.items():
        assert tuple(tensor.shape) == expected[key], key
        want = torch.int64 if key.endswith("num_batches_tracked") else torch.float32
        assert tensor.dtype == want, key


def test_parameter_count(model: LVViT) -> None:
    assert sum(p.numel() for p in model.parameters()) == 26_151_824


def test_build_is_eval_with_upstream_style_init() -> None:
    m = build_lvvit_s()
    assert not m.training and all(not sub.training for sub in m.modules())
    linears = [mod for mod in m.modules() if isinstance(mod, nn.Linear)]
    assert len(linears) == 4 * DEPTH + 2
    for lin in linears:
        assert lin.weight.abs().max() <= 2.0  # truncated at +-2 (timm/upstream bounds)
        assert abs(lin.weight.std().item() - 0.02) < 0.002
        if lin.bias is not None:
            assert torch.count_nonzero(lin.bias) == 0
    for ln in (mod for mod in m.modules() if isinstance(mod, nn.LayerNorm)):
        assert ln.eps == 1e-5
        assert torch.all(ln.weight == 1) and torch.all(ln.bias == 0)
    for t in (m.pos_embed, m.cls_token):
        assert abs(t.std().item() - 0.02) < 0.005


def _reference_forward(model: LVViT, x: torch.Tensor) -> torch.Tensor:
    """Independent functional recomputation from the module's weights
    (F.* ops and scaled_dot_product_attention instead of the module's code)."""
    sd = model.state_dict()
    pe = "patch_embed."
    for i, (stride, pad) in enumerate([(2, 3), (1, 1), (1, 1)], start=1):
        x = F.conv2d(x, sd[f"{pe}conv{i}.weight"], stride=stride, padding=pad)
        x = F.batch_norm(x, sd[f"{pe}bn{i}.running_mean"], sd[f"{pe}bn{i}.running_var"],
                         sd[f"{pe}bn{i}.weight"], sd[f"{pe}bn{i}.bias"], training=False, eps=1e-5)
        x = F.relu(x)
    x = F.conv2d(x, sd[pe + "proj.weight"], sd[pe + "proj.bias"], stride=8)
    b = x.shape[0]
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([sd["cls_token"].expand(b, -1, -1), x], dim=1) + sd["pos_embed"]
    n = x.shape[1]
    for i in range(DEPTH):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (EMBED,), sd[p + "norm1.weight"], sd[p + "norm1.bias"], eps=1e-5)
        q, k, v = F.linear(h, sd[p + "attn.qkv.weight"]).view(b, n, 3, HEADS, -1).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        a = F.linear(a.transpose(1, 2).reshape(b, n, EMBED), sd[p + "attn.proj.weight"], sd[p + "attn.proj.bias"])
        x = x + a / 2.0
        h = F.layer_norm(x, (EMBED,), sd[p + "norm2.weight"], sd[p + "norm2.bias"], eps=1e-5)
        h = F.gelu(F.linear(h, sd[p + "mlp.fc1.weight"], sd[p + "mlp.fc1.bias"]), approximate="none")
        x = x + F.linear(h, sd[p + "mlp.fc2.weight"], sd[p + "mlp.fc2.bias"]) / 2.0
    x = F.layer_norm(x, (EMBED,), sd["norm.weight"], sd["norm.bias"], eps=1e-5)
    cls_logits = F.linear(x[:, 0], sd["head.weight"], sd["head.bias"])
    aux_logits = F.linear(x[:, 1:], sd["aux_head.weight"], sd["aux_head.bias"])
    return cls_logits + 0.5 * aux_logits.amax(dim=1)


@torch.no_grad()
def test_forward_shape_and_formula(model: LVViT, images: torch.Tensor) -> None:
    out = model(images)
    assert out.shape == (2, CLASSES) and out.dtype == torch.float32
    ref = _reference_forward(model, images)
    assert out.std() > 0.1  # non-degenerate, so the comparison means something
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)
    # The aux term must matter, otherwise dropping it would go unnoticed.
    tokens = model.forward_features(images)
    assert (out - model.head(tokens[:, 0])).abs().max() > 0.1


class _SoftmaxDims(TorchFunctionMode):
    """Records the ``dim`` of every softmax call made during a forward."""

    def __init__(self) -> None:
        super().__init__()
        self.dims: list[int] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.softmax, torch.softmax, F.softmax):
            self.dims.append(kwargs.get("dim", args[1] if len(args) > 1 else None))
        return func(*args, **kwargs)


@torch.no_grad()
def test_softmax_layouts_agree(model: LVViT, images: torch.Tensor) -> None:
    results, dims = {}, {}
    try:
        for layout in ("standard", "ascend"):
            set_softmax_layout(model, layout)
            assert model.softmax_layout == layout
            with _SoftmaxDims() as rec:
                results[layout] = model(images)
            dims[layout] = rec.dims
    finally:
        set_softmax_layout(model, "standard")
    # Each layout really takes its own path (16 attention softmaxes)...
    assert dims == {"standard": [-1] * DEPTH, "ascend": [1] * DEPTH}
    # ...and the two give the same numbers.
    assert results["standard"].std() > 0.1
    assert (results["standard"] - results["ascend"]).abs().max() < 1e-5


def test_softmax_layout_constructor_and_validation() -> None:
    m = LVViT(depth=1, softmax_layout="ascend")
    assert m.blocks[0].attn.softmax_layout == "ascend"
    with pytest.raises(ValueError):
        LVViT(depth=1, softmax_layout="npu")
    with pytest.raises(ValueError):
        set_softmax_layout(m, "Standard")
    with pytest.raises(ValueError):
        m.blocks[0].attn.softmax_layout = "fast"
    assert m.softmax_layout == "ascend"  # a rejected value leaves the old one


def test_seeded_init_is_deterministic() -> None:
    torch.manual_seed(1)
    a = LVViT(depth=2)
    torch.manual_seed(2)
    b = LVViT(depth=2)
    assert not torch.equal(a.pos_embed, b.pos_embed)

    before = torch.get_rng_state()
    init_random_weights(a, seed=7)
    init_random_weights(b, seed=7)
    assert torch.equal(torch.get_rng_state(), before)  # global RNG untouched

    sa, sb = a.state_dict(), b.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    init_random_weights(b, seed=8)
    assert not torch.equal(sa["patch_embed.conv1.weight"], b.state_dict()["patch_embed.conv1.weight"])
    assert not torch.equal(sa["blocks.0.attn.qkv.weight"], b.state_dict()["blocks.0.attn.qkv.weight"])
