"""A two-input text classifier used by the tests, built only from the public plugin API.

Token ids and an attention mask go in, topic logits come out. The plugin brings its own task
(task.py): a JSONL dataset, a tokenizer, padding, the predicted label, accuracy and macro-F1.
"""
from __future__ import annotations

import torch

from modelzoo.api import ModelEntry, hookimpl
from tests.plugins.tinytext.task import CLASSES, HERE, MANIFEST, VOCAB, TextClassification, collate, preprocess

WIDTH = 8


class MeanOfEmbeddings(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, WIDTH)
        self.head = torch.nn.Linear(WIDTH, CLASSES)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask.unsqueeze(-1).to(torch.float32)
        summed = (self.embed(input_ids) * mask).sum(1)
        # An empty text has no token to average: its mean is zero rather than 0/0.
        return self.head(summed / mask.sum(1).clamp(min=1.0))


def build(variant: str) -> torch.nn.Module:
    return MeanOfEmbeddings().eval()


def init_random(model: torch.nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.embed.weight.copy_(torch.randn(model.embed.weight.shape, generator=generator))
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=generator) / WIDTH ** 0.5)
        model.head.bias.copy_(torch.randn(model.head.bias.shape, generator=generator) * 0.1)


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=build, init_random=init_random, preprocess=preprocess,
                        task=TextClassification(CLASSES), collate=collate, demo_data=HERE / "demo"))
