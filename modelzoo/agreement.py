"""How far a run's outputs are from fp32 torch, the reference every precision is judged by.

Two measurements, both stored in the cache so that a rerun reports them without torch:
- parity inputs: the seeded random inputs of the export's parity check, through the run's own
  compiled model (every run, every precision);
- run samples: the first N images of the run itself (reduced precisions), whose inputs the run
  keeps aside while it goes; torch then runs them once the run is done. Random inputs show how
  far a model drifts; only real images show how calibrated int8 behaves on data like the user's.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from modelzoo.cache import digest
from modelzoo.export import PARITY_IMAGES, PARITY_SEED, parity_figures
from modelzoo.fileio import atomic_write_json

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts
    from modelzoo.backends.base import Batch, Session

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 64
REFERENCE = "torch fp32"


def _record(artifacts: Artifacts, what: str, session: Session, **parts) -> Path:
    key = artifacts.key(artifact=what, session=session.identity, precision=session.precision, **parts)
    return artifacts.cache.root / "agreement" / f"{what}-{digest(key)}.json"


def _remembered(path: Path, compute: Callable[[], dict | None]) -> dict | None:
    if path.exists():
        return json.loads(path.read_text())
    figures = compute()
    if figures is not None:
        atomic_write_json(path, figures)
    return figures


def on_parity_inputs(artifacts: Artifacts, session: Session, batch_size: int) -> dict | None:
    """The session vs torch fp32 on the parity inputs; None for a session that only runs streams."""
    inp = artifacts.manifest.inputs[0]

    def compute() -> dict | None:
        import torch

        rng = np.random.default_rng(PARITY_SEED)
        ref, got = [], []
        for _ in range(-(-PARITY_IMAGES // batch_size)):
            x = rng.standard_normal(inp.concrete_shape(batch_size)).astype(inp.dtype)
            try:
                got.append(np.asarray(session.infer(x))[:batch_size])
            except NotImplementedError:
                return None
            with torch.inference_mode():
                ref.append(artifacts.torch_model()(torch.from_numpy(x)).numpy())
        return parity_figures(np.concatenate(ref), np.concatenate(got))

    return _remembered(_record(artifacts, "parity-inputs", session, batch=batch_size), compute)


class RunSamples:
    """The run's first `limit` images: their inputs kept aside on the way in, the session's
    outputs for them on the way out, compared with torch fp32 after the run.

    `found` holds figures from an earlier run with the same model, precision and images; then
    nothing is kept and torch is not needed.
    """

    def __init__(self, artifacts: Artifacts, session: Session, images: list[Path], limit: int) -> None:
        from modelzoo.resume import files_digest

        self.artifacts = artifacts
        self.limit = min(limit, len(images))
        self.path = _record(artifacts, "run-samples", session, samples=files_digest(images[:self.limit]),
                            count=self.limit)
        self.found = json.loads(self.path.read_text()) if self.path.exists() else None
        self.inputs: dict[str, np.ndarray] = {}
        self.outputs: dict[str, np.ndarray] = {}

    def watch(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        for batch in batches:
            for name, row in zip(batch.names, batch.data):
                if len(self.inputs) < self.limit and self.found is None:
                    self.inputs[name] = row.copy()
            yield batch

    def record(self, names: list[str], outputs: np.ndarray) -> None:
        for name, row in zip(names, outputs):
            if name in self.inputs:
                self.outputs[name] = np.array(row)

    def figures(self, batch_size: int) -> dict | None:
        """The comparison (run once, then remembered); None when no image was kept."""
        if self.found is not None:
            return self.found
        names = [n for n in self.inputs if n in self.outputs]
        if not names:
            return None
        import torch

        log.info("comparing %d of this run's images with %s", len(names), REFERENCE)
        model = self.artifacts.torch_model()
        ref = []
        with torch.inference_mode():
            for start in range(0, len(names), batch_size):
                x = np.stack([self.inputs[n] for n in names[start:start + batch_size]])
                ref.append(model(torch.from_numpy(x)).numpy())
        figures = parity_figures(np.concatenate(ref), np.stack([self.outputs[n] for n in names]))
        atomic_write_json(self.path, figures)
        return figures
