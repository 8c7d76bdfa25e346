"""The task interface and the plain records a dataset is made of."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class Sample:
    key: str            # unique in its dataset: names the sample in results.jsonl, reports, .bin files
    source: Any         # what the plugin's preprocess reads: a file path, or plain values (picklable)
    target: Any = None  # what the evaluator scores against (JSON-serialisable)


@dataclass(frozen=True)
class Dataset:
    root: Path
    samples: list[Sample]
    demo: bool = False
    files: dict[str, str] = field(default_factory=dict)  # what else it was read from, for the report

    def to_report(self) -> dict[str, Any]:
        return {"path": str(self.root), **self.files, "demo": self.demo}


class Evaluator(Protocol):
    def update(self, records: list[Any], targets: list[Any]) -> None:
        """Take one batch of records and the targets of the same samples, in the same order."""

    def compute(self) -> dict[str, Any]:
        """The metrics over everything seen so far: JSON-serialisable, metric name -> value."""


class Task(Protocol):
    """What a plugin (or a built-in task the manifest names) supplies after inference."""

    kind: str
    # Metrics also written at the top level of report.json (classification: top1, top5).
    report_keys: tuple[str, ...]

    def load_dataset(self, directory: Path, labels: Path | None = None) -> Dataset:
        """Samples with their targets, in a stable order; UserError naming the file on bad data."""

    def postprocess(self, outputs: dict[str, np.ndarray]) -> list[Any]:
        """One JSON-serialisable record per row of a batch of outputs (output name -> array).

        Declared with a second parameter, ``postprocess(outputs, metas)``, it also gets the metas
        the batch's samples' preprocess returned (one per row, in order; None where a sample has
        none): the runner inspects the signature once per run and calls it either way."""

    def evaluator(self) -> Evaluator:
        """A fresh evaluator."""


def samples_digest(samples: list[Sample]) -> str:
    """A fingerprint of what a run evaluates: keys, targets, and each source file's name and size
    (cheap for 50,000 files) or value. Resume refuses to mix results of other data."""
    h = hashlib.sha256()
    for sample in samples:
        source = sample.source
        if isinstance(source, Path):
            try:
                source = f"{source.name}\0{source.stat().st_size}"
            except OSError:  # a dangling link: reading it will fail loudly, not here
                source = f"{source.name}\0missing"
        h.update(json.dumps([sample.key, source, sample.target], default=str).encode() + b"\n")
    return h.hexdigest()[:16]
