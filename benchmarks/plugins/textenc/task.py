"""The benchmark's texts and task, without torch (preprocess runs in worker processes): generated
texts in a JSONL file, a word-hashing tokenizer, the two ways of batching them (each batch padded to
its longest text, or every text padded to the model's 512 tokens), the predicted class, accuracy.
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from modelzoo.api import Dataset, Sample, UserError

VOCAB, CLASSES = 1000, 3
MIN_TOKENS, MAX_TOKENS = 8, 512
SAMPLES_FILE = "texts.jsonl"


def tokenize(text: str) -> np.ndarray:
    """Each word hashed into 1..VOCAB-1 (0 is padding), at most MAX_TOKENS; crc32, so every
    process agrees."""
    words = text.split()[:MAX_TOKENS]
    return np.array([1 + zlib.crc32(word.encode()) % (VOCAB - 1) for word in words], dtype=np.int64)


def write_texts(directory: Path, count: int, seed: int = 0) -> list[int]:
    """`count` texts of MIN_TOKENS..MAX_TOKENS words (lengths uniform over that range, both ends
    included) with arbitrary labels, as DIR/texts.jsonl; returns their lengths in tokens."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(MIN_TOKENS, MAX_TOKENS + 1, count)
    lines = []
    for i, length in enumerate(lengths):
        text = " ".join(f"w{n}" for n in rng.integers(0, 20_000, length))
        lines.append(json.dumps({"id": f"t{i:05d}", "text": text, "label": int(rng.integers(0, CLASSES))}))
    directory.mkdir(parents=True, exist_ok=True)
    (directory / SAMPLES_FILE).write_text("\n".join(lines) + "\n")
    return [int(n) for n in lengths]


def preprocess_tokens(text: str) -> dict[str, np.ndarray]:
    """The dynamic model's sample: its token ids, unpadded (collate pads the batch)."""
    return {"input_ids": tokenize(text)}


def collate_to_longest(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Token ids padded with 0 to the batch's longest text, and the mask of the real positions."""
    return padded([row["input_ids"] for row in rows], max(MIN_TOKENS, *(len(row["input_ids"]) for row in rows)))


def preprocess_padded(text: str) -> dict[str, np.ndarray]:
    """The fixed model's sample: its token ids and mask already padded to MAX_TOKENS."""
    return {name: array[0] for name, array in padded([tokenize(text)], MAX_TOKENS).items()}


def padded(token_rows: list[np.ndarray], length: int) -> dict[str, np.ndarray]:
    ids = np.zeros((len(token_rows), length), dtype=np.int64)
    mask = np.zeros((len(token_rows), length), dtype=np.int64)
    for i, tokens in enumerate(token_rows):
        ids[i, :len(tokens)] = tokens
        mask[i, :len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class TextTask:
    """DIR/texts.jsonl: one {"id": ..., "text": ..., "label": <class>} object per line."""

    kind = "text-classification"
    report_keys: tuple[str, ...] = ()

    def load_dataset(self, directory: Path, labels: Path | None = None) -> Dataset:
        path = Path(labels) if labels else Path(directory) / SAMPLES_FILE
        try:
            lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}; pass --data DIR holding {SAMPLES_FILE} "
                            "(benchmarks/text_bucketing.py writes one)") from None
        samples = []
        for number, line in enumerate(lines, start=1):
            try:
                item = json.loads(line)
                samples.append(Sample(item["id"], item["text"], int(item["label"])))
            except (ValueError, KeyError, TypeError):
                raise UserError(f"{path} line {number} is not a JSON object with id, text and label; "
                                "fix that line") from None
        return Dataset(Path(directory).resolve(), samples, files={"samples": str(path.resolve())})

    def postprocess(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        return [{"label": int(np.argmax(row)), "logits": [float(v) for v in row]} for row in outputs["logits"]]

    def evaluator(self) -> Accuracy:
        return Accuracy()


class Accuracy:
    """The share of texts whose predicted class is their label (arbitrary labels: a check that the
    run scored every text, not a quality figure)."""

    def __init__(self) -> None:
        self.hits = self.total = 0

    def update(self, records: list[dict[str, Any]], targets: list[int]) -> None:
        self.hits += sum(record["label"] == target for record, target in zip(records, targets, strict=True))
        self.total += len(records)

    def compute(self) -> dict[str, Any]:
        return {"samples": self.total, "accuracy": self.hits / self.total if self.total else None}
