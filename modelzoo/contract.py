"""The contract a registered ModelEntry keeps, checked the same way by the registry (cheap checks,
at start-up) and by the mock runner and zoo CI (those plus running every piece once)."""
from __future__ import annotations

import json
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from modelzoo.manifest import Manifest

if TYPE_CHECKING:
    from modelzoo.core import ModelEntry


class ContractError(AssertionError):
    """A plugin's registration does not keep the contract documented in modelzoo.registry.ModelEntry."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise ContractError(message)


def check_backend(backend: Any) -> None:
    """A registered backend is a Backend with a name."""
    from modelzoo.backends.base import Backend

    expect(isinstance(backend, Backend), f"register() got {type(backend).__name__}, not a Backend")
    expect(bool(getattr(backend, "name", "")), "a registered backend needs a name (Backend.name)")


def check_entry(entry: Any) -> None:
    """What can be checked without running plugin code: types, callables, picklability, the task."""
    from modelzoo.core import ModelEntry

    expect(isinstance(entry, ModelEntry), f"register() got {type(entry).__name__}, not a ModelEntry")
    expect(isinstance(entry.manifest, Manifest), "ModelEntry.manifest must come from modelzoo.api.load_manifest()")
    for name in ("build", "init_random", "preprocess"):
        expect(callable(getattr(entry, name)), f"ModelEntry.{name} must be callable")
    for name in ("collate", "example_inputs", "export", "build_upstream"):
        value = getattr(entry, name)
        expect(value is None or callable(value), f"ModelEntry.{name} must be callable or None")
    try:
        pickle.dumps(entry.preprocess)
    except Exception as exc:  # noqa: BLE001 - any pickling failure breaks worker processes
        raise ContractError(f"preprocess is not picklable ({exc}); use a module-level function") from None
    if entry.task is not None:
        for name in ("load_dataset", "postprocess", "evaluator"):
            expect(callable(getattr(entry.task, name, None)), f"the task has no {name}() method")
        expect(isinstance(getattr(entry.task, "report_keys", ()), tuple), "task.report_keys must be a tuple")
    if entry.demo_data is not None:
        expect(Path(entry.demo_data).is_dir(), f"demo_data {entry.demo_data} is not a directory")


def check_inputs(arrays: Any, manifest: Manifest, batch: int | None, what: str) -> None:
    """`arrays` holds every declared input with its dtype and shape (with `batch` rows, or none)."""
    expect(isinstance(arrays, dict), f"{what} must give a dict of input name -> array, got {type(arrays).__name__}")
    expect(sorted(arrays) == sorted(t.name for t in manifest.inputs),
           f"{what} gave inputs {sorted(arrays)}, the manifest declares {sorted(t.name for t in manifest.inputs)}")
    for tensor in manifest.inputs:
        array = arrays[tensor.name]
        declared = tensor.shape if batch is not None else tensor.shape[1:]
        shape = (batch, *declared[1:]) if batch is not None else declared
        fits = isinstance(array, np.ndarray) and array.ndim == len(shape) and all(
            isinstance(d, str) or d == n for d, n in zip(shape, array.shape))
        expect(fits and array.dtype == np.dtype(tensor.dtype),
               f"{what}: input '{tensor.name}' must be a {tensor.dtype} array of shape {list(shape)}, got "
               f"{getattr(array, 'dtype', type(array).__name__)} {list(getattr(array, 'shape', []))}")


def check_model(entry: ModelEntry, batch_size: int = 2) -> None:
    """Every promise of a ModelEntry, checked on the real objects by running each piece once:
    build and random init, preprocess and collate of demo samples, the model on them, the task's
    postprocess and evaluator. Raises ContractError naming the broken part."""
    import torch

    from modelzoo.export import example_inputs, torch_outputs

    check_entry(entry)
    manifest, task = entry.manifest, entry.task
    model = entry.build("standard")
    expect(isinstance(model, torch.nn.Module), "build() must return a torch.nn.Module")
    expect(not model.training, "build() must return the model in eval mode")
    other = entry.build("no-such-variant")
    expect(isinstance(other, torch.nn.Module) and other.state_dict().keys() == model.state_dict().keys(),
           "build() must give the standard model for a variant it does not know")
    entry.init_random(model, 7)
    entry.init_random(other, 7)
    same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), other.state_dict().values()))
    expect(same, "init_random() with the same seed must give identical weights")

    examples = (entry.example_inputs or (lambda b, s: example_inputs(manifest, b, s)))(batch_size, 0)
    check_inputs(examples, manifest, batch_size, "example_inputs()")
    outputs = torch_outputs(model, manifest, examples)
    for tensor in manifest.outputs:
        got = outputs[tensor.name]
        expect(str(got.dtype) == tensor.dtype, f"output '{tensor.name}' dtype {got.dtype} is not {tensor.dtype}")
        expect(len(got.shape) == len(tensor.shape) and got.shape[0] == batch_size and all(
            isinstance(d, str) or d == n for d, n in zip(tensor.shape, got.shape)),
            f"output '{tensor.name}' shape {list(got.shape)} differs from the manifest's {list(tensor.shape)}")

    if entry.demo_data is not None and task is not None:
        _check_demo_samples(entry, model, batch_size)


def _check_demo_samples(entry: ModelEntry, model: Any, batch_size: int) -> None:
    """Demo samples through preprocess (inputs and metas), collate, the model, postprocess and evaluator."""
    from modelzoo.export import torch_outputs
    from modelzoo.metas import postprocessor, split
    from modelzoo.stream import as_inputs, stack

    manifest, task = entry.manifest, entry.task
    samples = task.load_dataset(entry.demo_data).samples
    expect(len(samples) > 0, "the demo data holds no samples")
    loaded = [split(entry.preprocess(s.source)) for s in samples[:batch_size]]
    rows = [as_inputs(inputs, [t.name for t in manifest.inputs]) for inputs, _ in loaded]
    if entry.collate is None:  # with a collate, samples may differ in shape until it pads them
        for row in rows:
            check_inputs(row, manifest, None, "preprocess()")
    batch = (entry.collate or stack)(rows)
    check_inputs(batch, manifest, len(rows), "collate()")
    metas = _checked_metas(entry, samples, [meta for _, meta in loaded])
    records = postprocessor(task)(torch_outputs(model, manifest, batch), metas)
    expect(isinstance(records, list) and len(records) == len(rows),
           f"postprocess() must give one record per sample ({len(rows)}), got {type(records).__name__} "
           f"of {len(records) if isinstance(records, list) else '?'}")
    try:
        json.dumps(records)
    except TypeError as exc:
        raise ContractError(f"postprocess() records must be JSON-serialisable: {exc}") from None
    evaluator = task.evaluator()
    evaluator.update(records, [s.target for s in samples[:len(rows)]])
    metrics = evaluator.compute()
    expect(isinstance(metrics, dict) and metrics, "evaluator.compute() must give a dict of metrics")


def _checked_metas(entry: ModelEntry, samples: list, metas: list) -> list:
    """The metas as postprocess gets them after results.jsonl or metas.jsonl (through JSON), once
    each is storable and the task's postprocess takes them."""
    from modelzoo.metas import problem, takes_metas

    for sample, meta in zip(samples, metas):
        if meta is not None:
            found = problem(meta)
            expect(found is None, f"preprocess() of sample {sample.key} returned {found}")
            expect(takes_metas(entry.task.postprocess),
                   f"preprocess() of sample {sample.key} returns a meta that postprocess(outputs) never gets: "
                   "accept postprocess(outputs, metas), or return bare inputs")
    return json.loads(json.dumps(metas))
