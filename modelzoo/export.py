"""torch -> ONNX -> simplified ONNX, and the parity check between the torch model and its export."""
from __future__ import annotations

import logging
import warnings
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from modelzoo.errors import UserError
from modelzoo.manifest import Manifest

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PARITY_IMAGES = 4
PARITY_SEED = 1234


def export_onnx(model: torch.nn.Module, manifest: Manifest, path: Path, batch_size: int | None) -> None:
    """Export with the TorchScript-based exporter, which honours the opset and a dynamic batch.

    The newer dynamo exporter ignores opset 13 and bakes the dummy's batch size into the graph.
    `batch_size` None gives a dynamic batch axis on every input and output.
    """
    import onnx
    import torch

    inp, out = manifest.inputs[0], manifest.outputs[0]
    dummy = torch.zeros(inp.concrete_shape(batch_size or 2), dtype=getattr(torch, inp.dtype))
    dynamic_axes = None
    if batch_size is None:
        dynamic_axes = {t.name: {i: d for i, d in enumerate(t.shape) if isinstance(d, str)}
                        for t in (inp, out)}
    log.info("exporting %s to ONNX opset %d (%s batch)", manifest.name, manifest.export["opset"],
             "dynamic" if batch_size is None else f"static {batch_size}")
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer chatter
        torch.onnx.export(model, (dummy,), str(path), input_names=[inp.name], output_names=[out.name],
                          dynamic_axes=dynamic_axes, opset_version=manifest.export["opset"],
                          do_constant_folding=True, dynamo=False)
    onnx.checker.check_model(str(path), full_check=True)


def simplify_onnx(src: Path, dst: Path, manifest: Manifest, batch_size: int | None) -> None:
    """onnxsim with the run's input shape (static batch) or as is (dynamic batch)."""
    import onnx
    import onnxsim

    model = onnx.load(str(src))
    shapes = None
    if batch_size is not None:
        shapes = {manifest.inputs[0].name: list(manifest.inputs[0].concrete_shape(batch_size))}
    log.info("simplifying %s with onnxsim %s", src.name, onnxsim.__version__)
    simplified, ok = onnxsim.simplify(model, overwrite_input_shapes=shapes)
    if not ok:
        raise UserError(f"onnxsim could not validate the simplified form of {src}; "
                        "rerun with --no-simplify and report the model")
    onnx.save(simplified, str(dst))


def measure_parity(model: torch.nn.Module, onnx_path: Path, manifest: Manifest,
                   batch_size: int | None) -> dict[str, float]:
    """Torch vs ONNX Runtime on a few seeded random inputs: max |Δ|, cosine, top-1 agreement."""
    import onnxruntime as ort
    import torch

    inp = manifest.inputs[0]
    rng = np.random.default_rng(PARITY_SEED)
    batch = batch_size or PARITY_IMAGES
    runs = -(-PARITY_IMAGES // batch)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    ref, got = [], []
    for _ in range(runs):
        x = rng.standard_normal(inp.concrete_shape(batch)).astype(inp.dtype)
        with torch.inference_mode():
            ref.append(model(torch.from_numpy(x)).numpy())
        got.append(session.run(None, {inp.name: x})[0])
    return parity_figures(np.concatenate(ref), np.concatenate(got))


def parity_figures(reference: np.ndarray, candidate: np.ndarray) -> dict[str, float]:
    a, b = reference.astype(np.float64).ravel(), candidate.astype(np.float64).ravel()
    cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) if a.any() and b.any() else 1.0
    return {
        "max_abs_diff": float(np.max(np.abs(reference - candidate))),
        "cosine": cosine,
        "top1_agreement": float(np.mean(reference.argmax(-1) == candidate.argmax(-1))),
        "images": int(reference.shape[0]),
    }
