"""torch -> ONNX -> simplified ONNX, and the parity check between the torch model and its export."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np

from modelzoo.errors import UserError
from modelzoo.manifest import Manifest, Tensor

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
        torch.onnx.export(model, args, str(path), input_names=[t.name for t in manifest.inputs],
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
    if isinstance(result, torch.Tensor):
        result = (result,)
    elif isinstance(result, dict):
        result = tuple(result[t.name] for t in manifest.outputs)
    return {t.name: r.numpy() for t, r in zip(manifest.outputs, result, strict=True)}


def agreement(manifest: Manifest, reference: list[Arrays], candidate: list[Arrays]) -> dict:
    """How far `candidate` outputs are from `reference` outputs, batch lists concatenated.

    Per output under "outputs"; at the top the worst over the outputs, so that one figure judges
    the whole model (for a single output they are that output's figures)."""
    per_output = {t.name: output_agreement(np.concatenate([b[t.name] for b in reference]),
                                           np.concatenate([b[t.name] for b in candidate]))
                  for t in manifest.outputs}
    worst: dict = {"max_abs_diff": max(f["max_abs_diff"] for f in per_output.values()),
                   "cosine": min(f["cosine"] for f in per_output.values())}
    top1 = [f["top1_agreement"] for f in per_output.values() if "top1_agreement" in f]
    equal = [f["equal"] for f in per_output.values() if "equal" in f]
    if top1:
        worst["top1_agreement"] = min(top1)
    if equal:
        worst["equal"] = min(equal)
    worst["images"] = int(len(np.concatenate([b[manifest.outputs[0].name] for b in reference])))
    worst["outputs"] = per_output
    return worst


def output_agreement(reference: np.ndarray, candidate: np.ndarray) -> dict:
    """max |Δ| and cosine; for floating-point outputs with a class axis (axis 1) the fraction of
    positions whose argmax over it agrees; for integer outputs the fraction of equal values."""
    a, b = reference.astype(np.float64).ravel(), candidate.astype(np.float64).ravel()
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) if a.any() and b.any() else 1.0
    figures = {"max_abs_diff": float(np.max(np.abs(a - b))) if a.size else 0.0, "cosine": cosine}
    if reference.dtype.kind == "f":
        if reference.ndim >= 2 and reference.shape[1] > 1:
            figures["top1_agreement"] = float(np.mean(reference.argmax(1) == candidate.argmax(1)))
    else:
        figures["equal"] = float(np.mean(reference == candidate))
    return figures


def describe_agreement(figures: dict, cosine_digits: int = 6) -> str:
    """'max|diff| 1.2e-06, cosine 0.999999, top-1 agreement 100%' from `agreement` figures."""
    text = f"max|diff| {figures['max_abs_diff']:.2e}, cosine {figures['cosine']:.{cosine_digits}f}"
    if "top1_agreement" in figures:
        text += f", top-1 agreement {figures['top1_agreement']:.0%}"
    if "equal" in figures:
        text += f", {figures['equal']:.0%} equal"
    return text
