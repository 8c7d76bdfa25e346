"""The benchmark's text encoder: token embeddings plus learned positions, a
torch.nn.TransformerEncoder (4 post-norm layers, d_model 256, 4 heads, feed-forward 1024, ReLU), the
mean of the real tokens' states, and a linear head.

The layers are torch.nn.TransformerEncoderLayer modules and hold all the weights, but their
attention is computed here from those weights: nn.MultiheadAttention's own forward, traced by the
TorchScript exporter that the runner uses, writes the traced sequence length into its reshapes
(torch 2.14), so its ONNX fails at any other length; the dynamo exporter needs onnxscript, which the
project does not install. The tests check this forward against nn.TransformerEncoder's own.

Padded positions are keys nobody attends to (an additive -1e9, not -inf: a row of only padding then
averages evenly instead of giving NaN) and are left out of the mean, so a text's logits do not
depend on how far its batch was padded.
"""
from __future__ import annotations

import torch

from benchmarks.plugins.textenc.task import CLASSES, MAX_TOKENS, VOCAB

WIDTH, HEADS, LAYERS, FEED_FORWARD = 256, 4, 4, 1024
HEAD = WIDTH // HEADS


class TextEncoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, WIDTH)
        self.position = torch.nn.Embedding(MAX_TOKENS, WIDTH)
        layer = torch.nn.TransformerEncoderLayer(WIDTH, HEADS, FEED_FORWARD, dropout=0.0, batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.head = torch.nn.Linear(WIDTH, CLASSES)

    def embedded(self, input_ids: torch.Tensor) -> torch.Tensor:
        # Positions from a cumulative sum: torch.arange(length) would be frozen at the traced length.
        positions = torch.cumsum(torch.ones_like(input_ids), 1) - 1
        return self.embed(input_ids) + self.position(positions)

    def pooled(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        weights = attention_mask.to(hidden.dtype).unsqueeze(-1)
        return self.head((hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.embedded(input_ids)
        bias = (1.0 - attention_mask.to(hidden.dtype))[:, None, None, :] * -1e9
        for layer in self.encoder.layers:
            hidden = encoder_layer(layer, hidden, bias)
        return self.pooled(hidden, attention_mask)


def encoder_layer(layer: torch.nn.TransformerEncoderLayer, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """What `layer` computes (post-norm, ReLU, no dropout in eval), with every length read from the
    tensors. `bias`: [batch, 1, 1, length], added to the attention scores."""
    attention = layer.self_attn
    batch = x.shape[0]
    qkv = torch.nn.functional.linear(x, attention.in_proj_weight, attention.in_proj_bias)
    q, k, v = qkv.reshape(batch, -1, 3, HEADS, HEAD).permute(2, 0, 3, 1, 4)
    scores = q @ k.transpose(-1, -2) / HEAD ** 0.5 + bias
    attended = (torch.softmax(scores, -1) @ v).transpose(1, 2).reshape(batch, -1, WIDTH)
    x = layer.norm1(x + attention.out_proj(attended))
    return layer.norm2(x + layer.linear2(torch.relu(layer.linear1(x))))


def build(variant: str) -> torch.nn.Module:
    return TextEncoder().eval()


def init_random(model: torch.nn.Module, seed: int) -> None:
    """Every parameter redrawn from `seed`: unit normals for the embeddings, normals over
    sqrt(fan-in) for the other matrices, small normals for biases, LayerNorm gains at 1."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                parameter.fill_(1.0)
            elif parameter.dim() > 1:
                scale = 1.0 if name.startswith(("embed.", "position.")) else parameter.shape[1] ** -0.5
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)
            else:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.02)
