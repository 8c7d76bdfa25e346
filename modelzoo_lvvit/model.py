"""Built-in LV-ViT-S (Token Labeling, arXiv 2104.10858) for inference.

This is an independent re-implementation of the evaluation path of upstream
``lvvit_s`` (zihangJiang/TokenLabeling). It exists so the plugin does not depend
on upstream code, which targets timm 0.4.x and cannot be built through
``timm.create_model`` on timm 1.x.

Compatibility contract: ``state_dict()`` has exactly upstream's 204 keys and
shapes, so an upstream checkpoint loads with ``strict=True``, and the output is
upstream's eval output ``head(cls) + 0.5 * max_over_patches(aux_head(patches))``.
Training-only features (MixToken, dense outputs, dropout, drop-path) are left
out on purpose: they are inactive at eval time and would only add untested code.

``softmax_layout="ascend"`` reproduces the ModelZoo ``LV_Vit.patch`` trick: the
attention softmax is taken over dim 1 of a transposed tensor, which exports to
an ONNX graph that runs faster on Ascend NPUs. The values are the same as the
standard layout up to float rounding.
"""
from __future__ import annotations

import math

import torch
from timm.layers import Mlp
from torch import nn

__all__ = [
    "SOFTMAX_LAYOUTS",
    "Attention",
    "Block",
    "ConvPatchEmbed",
    "LVViT",
    "build_lvvit_s",
    "init_random_weights",
    "set_softmax_layout",
]

SOFTMAX_LAYOUTS: tuple[str, ...] = ("standard", "ascend")


def _check_layout(layout: str) -> str:
    if layout not in SOFTMAX_LAYOUTS:
        raise ValueError(f"unknown softmax_layout {layout!r}; expected one of {SOFTMAX_LAYOUTS}")
    return layout


class Attention(nn.Module):
    """Multi-head self-attention with upstream's key names (qkv without bias, proj)."""

    def __init__(self, dim: int, num_heads: int, softmax_layout: str = "standard") -> None:
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=False)
        self.proj = nn.Linear(dim, dim)
        self.softmax_layout = softmax_layout

    @property
    def softmax_layout(self) -> str:
        return self._softmax_layout

    @softmax_layout.setter
    def softmax_layout(self, layout: str) -> None:
        # Validate on assignment so a typo fails at once, not at the first forward.
        self._softmax_layout = _check_layout(layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        # [B, N, 3*C] -> [3, B, heads, N, head_dim]
        qkv = self.qkv(x).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        # Scale q before the product (as upstream does) so the float rounding matches.
        attn = (q * self.scale) @ k.transpose(-2, -1)
        if self._softmax_layout == "ascend":
            # Same maths; the transposed layout is what the Ascend patch exports.
            attn = attn.transpose(1, -1).softmax(dim=1).transpose(1, -1)
        else:
            attn = attn.softmax(dim=-1)
        x = (attn @ v).transpose(1, 2).reshape(b, n, c)
        return self.proj(x)


class Block(nn.Module):
    """Pre-norm transformer block whose residual branches are divided by ``skip_lam``."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        mlp_ratio: float,
        skip_lam: float,
        softmax_layout: str = "standard",
    ) -> None:
        super().__init__()
        self.skip_lam = skip_lam
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn = Attention(dim, num_heads, softmax_layout)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        # timm's Mlp gives upstream's fc1/fc2 keys; its default nn.GELU is the exact (erf) GELU.
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), act_layer=nn.GELU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x)) / self.skip_lam
        x = x + self.mlp(self.norm2(x)) / self.skip_lam
        return x


class ConvPatchEmbed(nn.Module):
    """Upstream's "4_2" stem: three conv-BN-ReLU layers (stride 2 overall), then a
    patch_size/2 strided projection, giving one token per patch_size x patch_size patch."""

    def __init__(self, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 384, width: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.proj = nn.Conv2d(width, embed_dim, kernel_size=patch_size // 2, stride=patch_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.relu(self.bn3(self.conv3(x)))
        return self.proj(x)  # [B, embed_dim, H/patch, W/patch]


class LVViT(nn.Module):
    """LV-ViT, inference only. Defaults are LV-ViT-S (26.15 M parameters)."""

    def __init__(
        self,
        img_size: int = 224,
        patch_size: int = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 384,
        depth: int = 16,
        num_heads: int = 6,
        mlp_ratio: float = 3.0,
        skip_lam: float = 2.0,
        softmax_layout: str = "standard",
    ) -> None:
        super().__init__()
        _check_layout(softmax_layout)
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        num_patches = (img_size // patch_size) ** 2
        self.patch_embed = ConvPatchEmbed(patch_size, in_chans, embed_dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, skip_lam, softmax_layout) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(embed_dim, eps=1e-5)
        self.head = nn.Linear(embed_dim, num_classes)
        # Token-labeling head, applied to every patch token.
        self.aux_head = nn.Linear(embed_dim, num_classes)
        _reset_parameters(self, generator=None)

    @property
    def softmax_layout(self) -> str:
        return self.blocks[0].attn.softmax_layout

    @softmax_layout.setter
    def softmax_layout(self, layout: str) -> None:
        set_softmax_layout(self, layout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Image [B, C, H, W] -> normalised tokens [B, 1 + num_patches, embed_dim]."""
        x = self.patch_embed(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Image [B, 3, 224, 224] float32 -> logits [B, num_classes]."""
        x = self.forward_features(x)
        # Upstream's eval output: class-token logits plus half the per-class max over patch logits.
        return self.head(x[:, 0]) + 0.5 * self.aux_head(x[:, 1:]).max(dim=1).values


def set_softmax_layout(model: nn.Module, layout: str) -> None:
    """Switch every Attention in ``model`` to ``layout`` ("standard" or "ascend")."""
    _check_layout(layout)
    for module in model.modules():
        if isinstance(module, Attention):
            module.softmax_layout = layout


@torch.no_grad()
def _reset_parameters(model: nn.Module, generator: torch.Generator | None) -> None:
    """Upstream-style init of every state_dict entry.

    Linear weights, pos_embed and cls_token: truncated normal std .02; Linear
    biases 0; LayerNorm 1/0 (as upstream). Convs get PyTorch's default init and
    BatchNorm its fresh state (upstream leaves both at the defaults); they are
    set explicitly here so a seeded re-init covers the whole state_dict.

    Values are drawn on the CPU with ``generator`` and then copied, so a seeded
    init gives the same numbers on any device. torch's trunc_normal_ is used
    rather than timm's because only torch's accepts a generator (same algorithm).
    """

    def fill(param: torch.Tensor, init_fn) -> None:
        values = torch.empty(param.shape, dtype=param.dtype)
        init_fn(values)
        param.copy_(values)

    def trunc_normal(t: torch.Tensor) -> None:
        nn.init.trunc_normal_(t, std=0.02, generator=generator)

    # By name, not by class, so upstream's LV_ViT (--model-source upstream) gets them too.
    for name in ("pos_embed", "cls_token"):
        if isinstance(getattr(model, name, None), nn.Parameter):
            fill(getattr(model, name), trunc_normal)
    for module in model.modules():
        if isinstance(module, nn.Linear):
            fill(module.weight, trunc_normal)
            if module.bias is not None:
                module.bias.zero_()
        elif isinstance(module, nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()
        elif isinstance(module, nn.Conv2d):
            # nn.Conv2d.reset_parameters(), but with our generator.
            fill(module.weight, lambda t: nn.init.kaiming_uniform_(t, a=math.sqrt(5), generator=generator))
            if module.bias is not None:
                fan_in = module.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)
                fill(module.bias, lambda t: nn.init.uniform_(t, -bound, bound, generator=generator))
        elif isinstance(module, nn.BatchNorm2d):
            module.reset_parameters()  # deterministic: weight 1, bias 0, running stats 0/1, count 0


def init_random_weights(model: nn.Module, seed: int) -> None:
    """Deterministically re-initialise ``model`` (upstream-style) from ``seed``.

    The same seed always gives an identical state_dict, whatever the global RNG
    state, and the global RNG state is left untouched.
    """
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    _reset_parameters(model, generator)


def build_lvvit_s(softmax_layout: str = "standard") -> LVViT:
    """LV-ViT-S (upstream ``lvvit_s``) with upstream-style random init, in eval mode."""
    return LVViT(softmax_layout=softmax_layout).eval()
