"""torch -> ONNX -> simplified ONNX, and the parity check between the torch model and its export."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from modelzoo.errors import UserError
from modelzoo.manifest import Manifest, Tensor
from modelzoo.parity import agreement

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PARITY_SAMPLES = 4
PARITY_SEED = 1234

Arrays = dict[str, np.ndarray]
ExampleInputs = Callable[[int, int], Arrays]  # (batch size, seed) -> input name -> array


def example_inputs(manifest: Manifest, batch: int, seed: int) -> Arrays:
    """Seeded inputs of the manifest's shapes and dtypes: standard normals for floating-point inputs,
    integers drawn from the input's `range` (token ids, masks) for the others."""
    rng = np.random.default_rng(seed)
    return {t.name: _example(t, batch, rng) for t in manifest.inputs}


def _example(tensor: Tensor, batch: int, rng: np.random.Generator) -> np.ndarray:
    shape = tensor.concrete_shape(batch)
    dtype = np.dtype(tensor.dtype)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(dtype)
    low, high = tensor.range or (0, 2 if dtype.kind == "i" else 256)
    return rng.integers(low, high, shape).astype(dtype)


def export_onnx(model: torch.nn.Module, manifest: Manifest, path: Path, batch_size: int | None,
                example: Arrays) -> None:
    """Export with the TorchScript-based exporter, which honours the opset and dynamic axes.

    The newer dynamo exporter ignores opset 13 and bakes the dummy's batch size into the graph.
    `batch_size` None makes every symbolic axis of every input and output dynamic.
    """
    import torch

    dynamic_axes = None
    if batch_size is None:
        dynamic_axes = {t.name: t.symbolic_axes for t in (*manifest.inputs, *manifest.outputs)}
    args = tuple(torch.from_numpy(example[t.name]) for t in manifest.inputs)
    log.info("exporting %s to ONNX opset %d (%s batch)", manifest.name, manifest.export["opset"],
             "dynamic" if batch_size is None else f"static {batch_size}")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer chatter
        torch.onnx.export(flat_model(model, manifest), args, str(path),
                          input_names=[t.name for t in manifest.inputs],
                          output_names=[t.name for t in manifest.outputs], dynamic_axes=dynamic_axes,
                          opset_version=manifest.export["opset"], do_constant_folding=True, dynamo=False)


def check_onnx(path: Path, manifest: Manifest) -> None:
    """The exported file is valid ONNX and has the manifest's inputs and outputs, by name."""
    import onnx

    onnx.checker.check_model(str(path), full_check=True)
    graph = onnx.load(str(path), load_external_data=False).graph
    for kind, declared, found in (("inputs", manifest.inputs, graph.input), ("outputs", manifest.outputs, graph.output)):
        names = [v.name for v in found]
        if [t.name for t in declared] != names:
            raise UserError(f"the exported ONNX has {kind} {names}, but {manifest.path} declares "
                            f"{[t.name for t in declared]}; make the plugin's export match the manifest")


def simplify_onnx(src: Path, dst: Path, manifest: Manifest, batch_size: int | None) -> None:
    """onnxsim with the run's batch size fixed on every input (static batch), or as is (dynamic)."""
    import onnx
    import onnxsim

    model = onnx.load(str(src))
    shapes = None
    if batch_size is not None:
        shapes = {t.name: list(t.concrete_shape(batch_size)) for t in manifest.inputs}
    log.info("simplifying %s with onnxsim %s", src.name, onnxsim.__version__)
    simplified, ok = onnxsim.simplify(model, overwrite_input_shapes=shapes)
    if not ok:
        raise UserError(f"onnxsim could not validate the simplified form of {src}; "
                        "rerun with --no-simplify and report the model")
    onnx.save(simplified, str(dst))


def measure_parity(model: torch.nn.Module, onnx_path: Path, manifest: Manifest, batch_size: int | None,
                   examples: ExampleInputs) -> dict:
    """Torch vs ONNX Runtime on a few seeded example inputs, per output (see `agreement`)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    batch = batch_size or PARITY_SAMPLES
    ref, got = [], []
    for i in range(-(-PARITY_SAMPLES // batch)):
        feeds = examples(batch, PARITY_SEED + i)
        ref.append(torch_outputs(model, manifest, feeds))
        got.append(dict(zip([t.name for t in manifest.outputs], session.run(None, feeds))))
    return agreement(manifest, ref, got)


def torch_outputs(model: torch.nn.Module, manifest: Manifest, inputs: Arrays) -> Arrays:
    """The torch model's outputs as output name -> array, in the manifest's order."""
    import torch

    with torch.inference_mode():
        result = model(*(torch.from_numpy(inputs[t.name]) for t in manifest.inputs))
    return {t.name: r.numpy() for t, r in zip(manifest.outputs, flatten_outputs(result, manifest))}


def flatten_outputs(result: Any, manifest: Manifest) -> tuple[torch.Tensor, ...]:
    """A model's return value (a tensor, or tuples, lists and dicts of them, nested) as the tuple of
    the manifest's outputs, in its order.

    Leaves are taken depth first, dicts in their own order; when every leaf came from a dict whose
    keys are exactly the manifest's output names, they are put in the manifest's order by name.
    """
    leaves: list[tuple[str | None, torch.Tensor]] = []
    _leaves(result, None, leaves)
    names = [t.name for t in manifest.outputs]
    keys = [key for key, _ in leaves]
    if None not in keys and sorted(keys) == sorted(names):
        by_name = dict(leaves)
        return tuple(by_name[name] for name in names)
    if len(leaves) != len(names):
        raise UserError(f"the model returns {len(leaves)} tensors ({', '.join(k or '?' for k in keys)}), "
                        f"but {manifest.path} declares {len(names)} outputs {names}; declare one "
                        "[[outputs]] per returned tensor, in the order the model returns them")
    return tuple(tensor for _, tensor in leaves)


def _leaves(value: Any, key: str | None, into: list) -> None:
    import torch

    if isinstance(value, torch.Tensor):
        into.append((key, value))
    elif isinstance(value, dict):
        for name, item in value.items():
            _leaves(item, str(name), into)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _leaves(item, None, into)
    else:
        raise UserError(f"the model returns a {type(value).__name__} among its outputs; return tensors, "
                        "or tuples, lists and dicts of them")


def flat_model(model: torch.nn.Module, manifest: Manifest) -> torch.nn.Module:
    """The model returning the manifest's outputs as a flat tuple in its order, for the exporter
    (which would otherwise name a dict's values in the dict's own order)."""
    import torch

    class FlatOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return flatten_outputs(self.model(*inputs), manifest)

    return FlatOutputs().eval()
