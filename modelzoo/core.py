"""The runner's data types: what plugins hand over and what moves between the stages.

Plain records and protocols only. This module imports none of the runner's services, so any
module may use these types without an import circle.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Protocol

import numpy as np

from modelzoo.manifest import Manifest

if TYPE_CHECKING:
    import torch

Arrays = dict[str, np.ndarray]  # tensor name -> array, batch on axis 0


@dataclass(frozen=True)
class Sample:
    """One item of a dataset, made by a task's `load_dataset`.

    key: unique in its dataset; names the sample in results.jsonl, predictions.json, reports and
        .bin files (for files: the name before its first '.').
    source: what the plugin's preprocess reads (a file path, or plain picklable values); it crosses
        to worker processes.
    target: what the evaluator scores the sample's record against (JSON-serialisable; None when
        unknown).
    """

    key: str            # unique in its dataset: names the sample in results.jsonl, reports, .bin files
    source: Any         # what the plugin's preprocess reads: a file path, or plain values (picklable)
    target: Any = None  # what the evaluator scores against (JSON-serialisable)


@dataclass(frozen=True)
class Dataset:
    """What a task's `load_dataset` returns.

    root: the data folder it was read from (reported).
    samples: the samples in a stable order (the run's order, and what resume and --limit count).
    demo: True for the plugin's demo data (the runner sets it; a task leaves the default).
    files: what else it was read from, name -> path (a label or target file), for the report.
    """

    root: Path
    samples: list[Sample]
    demo: bool = False
    files: dict[str, str] = field(default_factory=dict)  # what else it was read from, for the report

    def to_report(self) -> dict[str, Any]:
        return {"path": str(self.root), **self.files, "demo": self.demo}


class Evaluator(Protocol):
    """Accumulates records and targets batch by batch; `Task.evaluator()` makes a fresh one per run."""

    def update(self, records: list[Any], targets: list[Any]) -> None:
        """Take one batch of records and the targets of the same samples, in the same order."""

    def compute(self) -> dict[str, Any]:
        """The metrics over everything seen so far: JSON-serialisable, metric name -> value."""


class Task(Protocol):
    """What a plugin (or a built-in task the manifest names) supplies around inference.

    kind: the task's name, as the manifest's `[task] kind` gives it (reported).
    report_keys: metrics also written at the top level of report.json (classification: top1, top5).
    A task's own settings come from the rest of the manifest's `[task]` table (`Manifest.task`),
    which the task reads and checks itself.
    """

    kind: str
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


@dataclass
class Batch:
    keys: list[str]   # sample keys, in the order of the rows of every input
    inputs: Arrays    # input name -> [len(keys), ...] in the manifest's dtype


@dataclass(frozen=True)
class ModelEntry:
    """The pieces of one model that only its plugin knows.

    manifest: the model's plugin.toml, loaded with ``load_manifest`` (names the model).
    build: ``build(variant)`` returns the model in eval mode with random weights; ``variant`` is the
        chosen backend's ``export_variant`` ("standard", or e.g. "ascend" for a graph laid out for
        that chip), and an unknown variant must give the standard model.
    init_random: ``init_random(model, seed)`` re-initialises it deterministically; used when no
        checkpoint exists, so that throughput can still be measured.
    preprocess: ``preprocess(source)`` turns one sample's ``source`` (see modelzoo.tasks.Sample:
        an image path for classification) into a dict of input name -> array of that input's
        dtype and shape without the batch axis; a single-input model may return the bare array.
        It may also return ``(inputs, meta)``, ``meta`` a dict of JSON values that its task's
        postprocess needs (letterbox scale, true length): kept beside the sample, stored in
        results.jsonl and handed to ``postprocess(outputs, metas)`` (see modelzoo.metas).
        It runs in worker processes (or threads, below), so it must be picklable (a module-level
        function or a functools.partial of one). Each worker process imports the module that
        defines it: keeping torch out of that module saves every worker its start-up (a tip).
    preprocess_in_threads: True when preprocess spends its time in code that releases the GIL
        (Pillow decoding and resizing, numpy) and is thread-safe: its workers are then threads of
        the main process, which start at once and hand arrays over without pickling them through
        a pipe. False (a pure-Python tokenizer, say): worker processes, so that it runs in parallel.
    task: what the outputs mean (dataset loader, postprocess, evaluator), see modelzoo.tasks.Task;
        None: the built-in task named by the manifest's ``[task] kind``.
    collate: ``collate(rows)`` makes one batch (input name -> array with the batch axis) from the
        preprocessed samples, e.g. padding sequences; None stacks each input.
    example_inputs: ``example_inputs(batch, seed)`` gives seeded, valid inputs for export, parity
        and benchmarks; None draws them from the manifest (normals, or integers in an input's range).
    export: ``export(model, manifest, path, batch_size, example)`` writes the ONNX file (dynamic
        symbolic axes when ``batch_size`` is None), replacing the runner's TorchScript export.
    demo_data: a directory in the task's dataset layout, used when no --data is given.
    build_upstream: ``build_upstream(checkout, variant)`` builds the model from upstream's own code
        in a checkout made by ``modelzoo source`` (random weights, eval mode); None when the plugin
        has no upstream route.
    """

    manifest: Manifest
    build: Callable[[str], torch.nn.Module]
    init_random: Callable[[torch.nn.Module, int], None]
    preprocess: Callable[[Any], Arrays | np.ndarray | tuple[Arrays | np.ndarray, dict[str, Any]]]
    preprocess_in_threads: bool = False
    task: Task | None = None
    collate: Callable[[list[Arrays]], Arrays] | None = None
    example_inputs: Callable[[int, int], Arrays] | None = None
    export: Callable[..., None] | None = None
    demo_data: Path | None = None
    build_upstream: Callable[[Path, str], torch.nn.Module] | None = None

    @property
    def name(self) -> str:
        return self.manifest.name
