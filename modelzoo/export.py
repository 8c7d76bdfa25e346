"""torch -> ONNX -> simplified ONNX, and the parity check between the torch model and its export."""
from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from modelzoo.core import Arrays
from modelzoo.errors import UserError
from modelzoo.manifest import Manifest, Tensor
from modelzoo.parity import agreement

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PARITY_SAMPLES = 4
PARITY_SEED = 1234

# A size check fails when an output is further than this from torch, relative to the output's
# largest magnitude: fp32 ONNX Runtime stays orders of magnitude closer, a size baked into the
# graph lands far outside it.
SIZE_TOLERANCE = 1e-3

Sizes = dict[str, int]  # dynamic axis name -> size
# (batch size, seed, dynamic axis sizes or None for the examples) -> input name -> array
ExampleInputs = Callable[[int, int, "Sizes | None"], Arrays]


def example_inputs(manifest: Manifest, batch: int, seed: int, sizes: Sizes | None = None) -> Arrays:
    """Seeded inputs of the manifest's shapes and dtypes, dynamic axes at `sizes` (default: each
    axis's example): standard normals for floating-point inputs, integers drawn from the input's
    `range` (token ids, masks) for the others."""
    rng = np.random.default_rng(seed)
    sizes = manifest.example_sizes(**(sizes or {}))
    return {t.name: _example(t, batch, sizes, rng) for t in manifest.inputs}


def parity_sizes(manifest: Manifest) -> list[Sizes]:
    """The dynamic axis sizes parity checks: every axis at its example, then each axis in turn at
    its max (its min where the max is the example), so that a size baked into the graph shows."""
    base = manifest.example_sizes()
    checks = [base]
    for name, axis in manifest.axes.items():
        other = axis.max if axis.max != axis.example else axis.min
        if other != axis.example:
            checks.append({**base, name: other})
    return checks


def _example(tensor: Tensor, batch: int, sizes: Sizes, rng: np.random.Generator) -> np.ndarray:
    shape = tensor.concrete_shape(batch, sizes)
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
    The declared dynamic axes stay dynamic always; `batch_size` None makes the batch axis dynamic too.
    """
    import torch

    dynamic_axes = {t.name: t.symbolic_axes if batch_size is None else t.dynamic_axes
                    for t in (*manifest.inputs, *manifest.outputs)}
    args = tuple(torch.from_numpy(example[t.name]) for t in manifest.inputs)
    log.info("exporting %s to ONNX opset %d (%s batch)", manifest.name, manifest.export["opset"],
             "dynamic" if batch_size is None else f"static {batch_size}")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer chatter
        with flat_outputs(model, manifest) as flat:
            torch.onnx.export(flat, args, str(path), input_names=[t.name for t in manifest.inputs],
                              output_names=[t.name for t in manifest.outputs],
                              dynamic_axes={name: axes for name, axes in dynamic_axes.items() if axes} or None,
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
    """onnxsim with the run's batch size fixed on every input (static batch), or as is (dynamic).

    The declared dynamic axes are given as -1, which onnxsim leaves symbolic: it must not freeze them."""
    import onnx
    import onnxsim

    model = onnx.load(str(src))
    shapes = None
    if batch_size is not None:
        shapes = {t.name: [batch_size, *(-1 if isinstance(d, str) else d for d in t.shape[1:])]
                  for t in manifest.inputs}
    log.info("simplifying %s with onnxsim %s", src.name, onnxsim.__version__)
    simplified, ok = onnxsim.simplify(model, overwrite_input_shapes=shapes)
    if not ok:
        raise UserError(f"onnxsim could not validate the simplified form of {src}; "
                        "rerun with --no-simplify and report the model")
    onnx.save(simplified, str(dst))


def measure_parity(model: torch.nn.Module, onnx_path: Path, manifest: Manifest, batch_size: int | None,
                   examples: ExampleInputs) -> dict:
    """Torch vs ONNX Runtime on a few seeded example inputs, per output (see `agreement`), at the
    dynamic axes' examples; with dynamic axes also at the other `parity_sizes`, under "sizes"
    (a size other than the traced one where the export differs from torch is a UserError: see
    `check_size`)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    batch = batch_size or PARITY_SAMPLES
    names = [t.name for t in manifest.outputs]
    checked = {}
    for n, sizes in enumerate(parity_sizes(manifest)):
        ref, got = [], []
        for i in range(-(-PARITY_SAMPLES // batch)):
            feeds = examples(batch, PARITY_SEED + i, sizes if manifest.axes else None)
            ref.append(torch_outputs(model, manifest, feeds))
            # At the traced sizes the manifest's tolerances judge the figures; elsewhere a size
            # baked into the graph is what shows.
            got.append(check_size(manifest, session, feeds, ref[-1], sizes) if n else
                       dict(zip(names, session.run(None, feeds))))
        checked[describe_sizes(sizes)] = agreement(manifest, ref, got)
    figures = next(iter(checked.values()))
    if manifest.axes:
        figures["sizes"] = {name: {k: f[k] for k in ("max_abs_diff", "cosine")} for name, f in checked.items()}
    return figures


def describe_sizes(sizes: Sizes) -> str:
    """'seq=16, width=32'"""
    return ", ".join(f"{name}={size}" for name, size in sizes.items())


def check_size(manifest: Manifest, session, feeds: Arrays, reference: Arrays, sizes: Sizes) -> Arrays:
    """The ONNX outputs for `feeds`, which must run and match torch's shapes and values: a graph
    that baked a traced size into a constant (a classic torch.onnx trap) fails here, in one line,
    rather than running wrong at the sizes it was not traced at."""
    at = describe_sizes(sizes)
    axes = ", ".join(manifest.axes)
    fix = ("the export baked a size into the graph: compute sizes from tensor.shape / tensor.size() "
           "without int() or Python constants, or declare the axis fixed in the manifest")
    traced = describe_sizes(manifest.example_sizes())
    try:
        outputs = dict(zip([t.name for t in manifest.outputs], session.run(None, feeds)))
    except Exception as exc:  # noqa: BLE001 - ONNX Runtime's errors have no common type
        first = str(exc).strip().splitlines()[0][:160]
        raise UserError(f"dynamic axes {axes}: the ONNX traced at {traced} fails at {at} ({first}); {fix}") from None
    for name, want in reference.items():
        have = outputs[name]
        if have.shape != want.shape:
            raise UserError(f"dynamic axes {axes}: the ONNX traced at {traced} gives output '{name}' of shape "
                            f"{list(have.shape)} at {at}, torch {list(want.shape)}; {fix}")
        scale = max(float(np.max(np.abs(want))), 1e-6) if want.size else 1.0
        off = float(np.max(np.abs(have.astype(np.float64) - want))) / scale if want.size else 0.0
        if off > SIZE_TOLERANCE:
            raise UserError(f"dynamic axes {axes}: the ONNX traced at {traced} differs from torch at {at} "
                            f"(output '{name}' off by {off:.1%} of its largest value); {fix}")
    return outputs


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


@contextmanager
def flat_outputs(model: torch.nn.Module, manifest: Manifest) -> Iterator[torch.nn.Module]:
    """The model returning the manifest's outputs as a flat tuple in its order, for the exporter
    (which would otherwise name a dict's values in the dict's own order). A forward hook, not a
    wrapping module, so that the ONNX node names stay the model's own (`/blocks.0/attn/MatMul`):
    `modelzoo compare`, atc `--keep_dtype` and NNCF's ignored scope name ops by them."""
    handle = model.register_forward_hook(lambda module, inputs, result: flatten_outputs(result, manifest))
    try:
        yield model
    finally:
        handle.remove()
