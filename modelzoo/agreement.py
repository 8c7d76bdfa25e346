"""How far a run's outputs are from fp32 torch, the reference every precision is judged by.

Two measurements, both stored in the cache so that a rerun reports them without torch:
- parity inputs: the seeded example inputs of the export's parity check, through the run's own
  compiled model (every run, every precision);
- run samples: the first N samples of the run itself (reduced precisions), whose inputs the run
  keeps aside while it goes; torch then runs them once the run is done. Random inputs show how
  far a model drifts; only real data show how calibrated int8 behaves on data like the user's.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from modelzoo.cache import digest
from modelzoo.core import Sample
from modelzoo.export import PARITY_SAMPLES, PARITY_SEED, torch_outputs
from modelzoo.fileio import atomic_write_json
from modelzoo.parity import agreement
from modelzoo.tasks import samples_digest

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts
    from modelzoo.backends.base import Session
    from modelzoo.core import Arrays, Batch

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
    def compute() -> dict | None:
        ref, got = [], []
        for i in range(-(-PARITY_SAMPLES // batch_size)):
            inputs = artifacts.example_inputs(batch_size, PARITY_SEED + i)
            padded, real = session.fixed_axes.pad(inputs) if session.fixed_axes else (inputs, {})
            try:
                outputs = session.infer(padded)
            except NotImplementedError:
                return None
            outputs = session.fixed_axes.trim(outputs, real) if session.fixed_axes else outputs
            got.append({name: np.asarray(a)[:batch_size] for name, a in outputs.items()})
            ref.append(torch_outputs(artifacts.torch_model(), artifacts.manifest, inputs))
        return agreement(artifacts.manifest, ref, got)

    return _remembered(_record(artifacts, "parity-inputs", session, batch=batch_size), compute)


class RunSamples:
    """The run's first batches up to `limit` samples: their inputs kept aside on the way in, the
    session's outputs for them on the way out, compared with torch fp32 after the run.

    `found` holds figures from an earlier run with the same model, precision and samples; then
    nothing is kept and torch is not needed.
    """

    def __init__(self, artifacts: Artifacts, session: Session, samples: list[Sample], limit: int) -> None:
        self.artifacts = artifacts
        self.limit = min(limit, len(samples))
        self.path = _record(artifacts, "run-samples", session, samples=samples_digest(samples[:self.limit]),
                            count=self.limit)
        self.found = json.loads(self.path.read_text()) if self.path.exists() else None
        self.kept: dict[tuple[str, ...], Arrays] = {}      # batch keys -> inputs
        self.outputs: dict[tuple[str, ...], Arrays] = {}   # batch keys -> outputs

    def watch(self, batches: Iterable[Batch]) -> Iterator[Batch]:
        """Pass batches through, keeping the inputs of the first ones."""
        count = 0
        for batch in batches:
            if self.found is None and count < self.limit:
                self.kept[tuple(batch.keys)] = {name: a.copy() for name, a in batch.inputs.items()}
                count += len(batch.keys)
            yield batch

    def record(self, outputs: Iterable[tuple[list[str], Arrays]]) -> Iterator[tuple[list[str], Arrays]]:
        """Pass results through, keeping the outputs of the batches kept on the way in."""
        for keys, batch in outputs:
            if tuple(keys) in self.kept:
                self.outputs[tuple(keys)] = {name: np.array(a) for name, a in batch.items()}
            yield keys, batch

    def figures(self) -> dict | None:
        """The comparison (run once, then remembered); None when nothing was kept."""
        if self.found is not None:
            return self.found
        done = [keys for keys in self.kept if keys in self.outputs]
        if not done:
            return None
        log.info("comparing %d of this run's samples with %s", sum(map(len, done)), REFERENCE)
        model, manifest = self.artifacts.torch_model(), self.artifacts.manifest
        ref = [torch_outputs(model, manifest, self.kept[keys]) for keys in done]
        figures = agreement(manifest, ref, [self.outputs[keys] for keys in done])
        atomic_write_json(self.path, figures)
        return figures


def collapse(agreement: dict | None, parity: dict | None, compare_command: str) -> str | None:
    """Why a reduced-precision run's agreement with fp32 has collapsed (inf/nan outputs, or top-1
    agreement under half the fp32 ONNX's), naming the command that finds the op; None when it has not."""
    parity_top1 = (parity or {}).get("top1_agreement")
    for key in ("run_samples", "parity_inputs"):
        figures = (agreement or {}).get(key)
        if not figures:
            continue
        cosine, top1 = figures.get("cosine"), figures.get("top1_agreement")
        if cosine is None or not np.isfinite(cosine):
            why = "its outputs hold inf or nan (an overflow)"
        elif top1 is not None and parity_top1 is not None and top1 < 0.5 * parity_top1:
            why = f"top-1 agreement {top1:.0%} against the fp32 ONNX's {parity_top1:.0%}"
        else:
            continue
        return (f"PRECISION COLLAPSED on the {key.replace('_', ' ')}: {why}; run `{compare_command}` to find "
                "the op where it departs and the ops to keep at higher precision")
    return None
