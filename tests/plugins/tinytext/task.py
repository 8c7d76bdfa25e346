"""tinytext's task, without torch (preprocess runs in worker processes): a JSONL dataset, a
word-hashing tokenizer (preprocess), padding to the batch's longest text (collate), the predicted
label (postprocess), and accuracy and macro-F1 (evaluator).
"""
from __future__ import annotations

import json
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modelzoo.api import Dataset, Sample, UserError, load_manifest

HERE = Path(__file__).resolve().parent
MANIFEST = load_manifest(HERE / "plugin.toml")
SEQ = MANIFEST.axes["seq"]
VOCAB = MANIFEST.inputs[0].range[1]
CLASSES = MANIFEST.outputs[0].shape[1]
SAMPLES_FILE = "samples.jsonl"
# Sample ids name .bin files, and ais_bench cuts result names at the first '.'.
SAFE_ID = re.compile(r"[A-Za-z0-9_-]+")


def tokenize(text: str) -> list[int]:
    """Lower-case words hashed into 1..VOCAB-1 (0 is padding); crc32, so every process agrees."""
    return [1 + zlib.crc32(word.encode()) % (VOCAB - 1) for word in re.findall(r"[a-z0-9]+", text.lower())]


def preprocess(text: str) -> dict[str, np.ndarray]:
    """The text's token ids, at most the model's longest (the `seq` axis's max)."""
    return {"input_ids": np.array(tokenize(text)[:SEQ.max], dtype=np.int64)}


def collate(rows: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Token ids padded with 0 to the batch's longest text (at least the axis's min), and the mask
    that tells the model which positions are real."""
    length = max(SEQ.min, *(len(row["input_ids"]) for row in rows))
    ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for i, row in enumerate(rows):
        tokens = row["input_ids"]
        ids[i, :len(tokens)] = tokens
        mask[i, :len(tokens)] = 1
    return {"input_ids": ids, "attention_mask": mask}


@dataclass(frozen=True)
class TextClassification:
    """DIR/samples.jsonl: one {"id": ..., "text": ..., "label": <class>} object per line."""

    num_classes: int
    kind: str = "text-classification"
    report_keys: tuple[str, ...] = ()

    def load_dataset(self, directory: Path, labels: Path | None = None) -> Dataset:
        """The samples of DIR/samples.jsonl, or of the file given as --labels."""
        path = Path(labels) if labels else Path(directory) / SAMPLES_FILE
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}; pass --data DIR holding {SAMPLES_FILE}") from None
        samples: list[Sample] = []
        seen: set[str] = set()
        for number, line in enumerate(lines, start=1):
            if line.strip():
                sample = self._sample(line, f"{path} line {number}")
                if sample.key in seen:
                    raise UserError(f"{path} line {number}: id {sample.key!r} appears twice; ids must be unique")
                seen.add(sample.key)
                samples.append(sample)
        return Dataset(Path(directory).resolve(), samples, files={"samples": str(path.resolve())})

    def _sample(self, line: str, where: str) -> Sample:
        expected = (f'a JSON object {{"id": <letters, digits, _ or ->, "text": <string>, '
                    f'"label": <0..{self.num_classes - 1}>}}')
        try:
            item = json.loads(line)
        except ValueError:
            item = None
        if not (isinstance(item, dict) and isinstance(item.get("id"), str) and SAFE_ID.fullmatch(item["id"])
                and isinstance(item.get("text"), str) and type(item.get("label")) is int
                and 0 <= item["label"] < self.num_classes):
            raise UserError(f"{where} is not {expected}; fix that line")
        return Sample(item["id"], item["text"], item["label"])

    def postprocess(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        logits = outputs["logits"].astype(np.float64)
        probabilities = np.exp(logits - logits.max(1, keepdims=True))
        probabilities /= probabilities.sum(1, keepdims=True)
        best = logits.argmax(1)
        return [{"label": int(c), "score": float(p[c])} for c, p in zip(best, probabilities)]

    def evaluator(self) -> AccuracyF1:
        return AccuracyF1(self.num_classes)


class AccuracyF1:
    """Accuracy and macro-F1 (the mean F1 of the classes that occur as a target or a prediction)."""

    def __init__(self, num_classes: int) -> None:
        self.confusion = np.zeros((num_classes, num_classes), dtype=np.int64)  # [target, predicted]

    def update(self, records: list[dict[str, Any]], targets: list[int]) -> None:
        for record, target in zip(records, targets, strict=True):
            self.confusion[target, record["label"]] += 1

    def compute(self) -> dict[str, Any]:
        total = int(self.confusion.sum())
        if not total:
            return {"samples": 0, "accuracy": None, "macro_f1": None}
        hits = np.diag(self.confusion)
        wrong = self.confusion.sum(0) - hits + self.confusion.sum(1) - hits  # false positives + negatives
        seen = hits + wrong > 0
        f1 = 2 * hits[seen] / (2 * hits[seen] + wrong[seen])
        return {"samples": total, "accuracy": float(hits.sum() / total), "macro_f1": float(f1.mean())}
