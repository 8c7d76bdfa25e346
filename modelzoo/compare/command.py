"""`modelzoo compare`: the inputs, both sides, the per-tensor table, the fix search, the files."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from modelzoo.compare import fix, report
from modelzoo.compare.graph import float_tensors
from modelzoo.compare.metrics import DEFAULT_THRESHOLD, Figures, first_divergent, tensor_figures
from modelzoo.compare.sides import (
    AscendSide,
    OrtSide,
    Side,
    openvino_float,
    openvino_int8,
    ort_int8,
)
from modelzoo.errors import UserError

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 16
TARGET_COSINE = 0.999
FIX_RUNS = 60  # --fix's budget of model runs: each is a quantisation or a compile


@dataclass
class CompareOptions:
    model: str
    backend: str
    precision: str
    data: Path | None = None
    weights: Path | None = None
    batch_size: int = 1
    calibration: int = 300
    calibration_data: Path | None = None
    cache_dir: Path | None = None
    samples: int = DEFAULT_SAMPLES
    output: Path | None = None
    threshold: float = DEFAULT_THRESHOLD
    fix: bool = False
    target_cosine: float = TARGET_COSINE
    fix_runs: int = FIX_RUNS
    backend_options: dict[str, Any] = field(default_factory=dict)  # backend name -> its own options
    quiet: bool = False


def compare(opts: CompareOptions, registry) -> dict:
    """Run the comparison (and with opts.fix the search); write the files; return compare.json's dict."""
    from modelzoo.artifacts import Artifacts
    from modelzoo.cache import Cache
    from modelzoo.pipeline import DEFAULT_OUTPUT_ROOT
    from modelzoo.weights import resolve_weights

    if opts.samples < 0 or opts.batch_size < 1:
        raise UserError("--samples must be 0 or more and --bs at least 1")
    entry = registry.model(opts.model)
    backend, _ = registry.choose_backend(opts.backend, opts.precision)
    precision = backend.auto_precision() if opts.precision == "auto" else opts.precision
    if precision == "fp32":
        raise UserError("compare needs a reduced precision (bf16, fp16 or int8); fp32 is the reference")
    output = Path(opts.output or DEFAULT_OUTPUT_ROOT / entry.name / f"compare-{backend.name}-{precision}")
    cache = Cache(opts.cache_dir or DEFAULT_OUTPUT_ROOT / "cache")
    artifacts = Artifacts(entry, resolve_weights(entry.manifest, opts.weights), cache,
                          variant=backend.export_variant, quiet=opts.quiet)
    fp32_path = artifacts.onnx(opts.batch_size)
    model = onnx.load(fp32_path)
    tensors = float_tensors(model)
    names = [t.name for t in tensors]
    batches, rows = _inputs(artifacts, entry, opts)
    batches, sizes = _one_shape(batches, entry.manifest)
    make = _side_maker(backend, precision, artifacts, fp32_path, model, opts, output, sizes,
                       {name: list(array.shape) for name, array in batches[0].items()})
    other = make(names, [])
    outputs = [o.name for o in model.graph.output]
    figures, golden, got = _measure(OrtSide(model, names), other, batches, rows, outputs)
    table = [{"op": t.op, "type": t.type, "tensor": t.name, "observable": t.name in figures,
              **(figures[t.name].figures() if t.name in figures else {})} for t in tensors]
    first = first_divergent([r for r in table if r["observable"]], opts.threshold)
    result = {"model": entry.name, "backend": backend.name, "precision": precision, "threshold": opts.threshold,
              "samples": int(sum(rows)), "batch_size": opts.batch_size, "golden": "fp32 ONNX in ONNX Runtime",
              "observable": sum(r["observable"] for r in table), "tensors": len(table),
              "first_divergent": ({"op": first["op"], "type": first["type"], "tensor": first["tensor"],
                                   "cosine": first["cosine"], "max_abs": first["max_abs"],
                                   "inf": first["inf"], "nan": first["nan"], "index": table.index(first)}
                                  if first else None),
              "agreement": output_figures(entry.manifest, golden, got),
              "ops": table}
    if opts.fix:
        result.update(_fix(result, table, artifacts, outputs, golden, batches, rows, make, opts, other))
    report.write(result, output)
    result["output"] = str(output)
    return result


def _inputs(artifacts, entry, opts: CompareOptions) -> tuple[list[dict], list[int]]:
    """Batches of the parity inputs and the first --samples samples; the real rows in each."""
    from modelzoo.backends.base import pad_batch
    from modelzoo.export import PARITY_SAMPLES, PARITY_SEED
    from modelzoo.pipeline import load_dataset
    from modelzoo.stream import as_inputs, stack

    bs = opts.batch_size
    batches = [artifacts.example_inputs(bs, PARITY_SEED + i) for i in range(-(-PARITY_SAMPLES // bs))]
    rows = [bs] * len(batches)
    if opts.samples:
        names = [t.name for t in entry.manifest.inputs]
        samples = load_dataset(entry, opts.data, None, opts.samples).samples
        for i in range(0, len(samples), bs):
            chunk = [as_inputs(entry.preprocess(s.source), names) for s in samples[i:i + bs]]
            batches.append(pad_batch((entry.collate or stack)(chunk), len(chunk), bs))
            rows.append(len(chunk))
    return batches, rows


def _one_shape(batches: list[dict], manifest) -> tuple[list[dict], dict[str, int] | None]:
    """A model with dynamic axes: every batch padded (with each axis's `pad`) to the largest size of
    each axis among them, so that a tensor is one array over all samples and a compiled side is
    built for one shape; the sizes, or None for a model without dynamic axes."""
    from modelzoo.backends.base import FixedAxes, axis_sizes

    if not manifest.axes:
        return batches, None
    sizes = {name: max(axis_sizes(b, manifest)[name] for b in batches) for name in manifest.axes}
    return [FixedAxes(manifest, sizes).pad(b)[0] for b in batches], sizes


def _measure(golden_side: Side, other: Side, batches: list[dict], rows: list[int], outputs: list[str]
             ) -> tuple[dict[str, Figures], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Both sides batch by batch: the figures of each tensor both return, accumulated so that only
    one batch of every tensor is held (a ViT's tensors over a few dozen samples fill gigabytes), and
    the model's outputs over all samples, fp32's and the backend's."""
    figures: dict[str, Figures] = {}
    finals: tuple[dict, dict] = ({name: [] for name in outputs}, {name: [] for name in outputs})
    bs = max(rows)
    for batch, real in zip(batches, rows):
        ref, got = golden_side.infer(batch), other.infer(batch)
        for name in outputs:
            finals[0][name].append(_real_rows(ref[name], real, bs))
            finals[1][name].append(_real_rows(got[name], real, bs))
        for name in [n for n in got if n in ref]:
            figures.setdefault(name, Figures()).add(_real_rows(ref.pop(name), real, bs),
                                                    _real_rows(got.pop(name), real, bs))
    golden, other_outputs = ({name: np.concatenate(arrays) for name, arrays in side.items()} for side in finals)
    return figures, golden, other_outputs


def _real_rows(array: np.ndarray, real: int, bs: int) -> np.ndarray:
    """A batch's tensor without the padding rows of a short batch (a tensor whose first axis is the batch)."""
    array = np.asarray(array)
    return array[:real] if array.ndim and array.shape[0] == bs else array


def _trim(tensors: dict[str, np.ndarray], rows: list[int]) -> dict[str, np.ndarray]:
    """Drop the padding rows of short batches (tensors whose first axis is the batch)."""
    bs, total = max(rows), len(rows) * max(rows)
    if sum(rows) == total:
        return tensors  # no padding: indexing would copy every tensor for nothing
    keep = np.concatenate([np.arange(i * bs, i * bs + r) for i, r in enumerate(rows)])
    return {name: (a[keep] if a.ndim and a.shape[0] == total else a) for name, a in tensors.items()}


def _side_maker(backend, precision: str, artifacts, fp32_path: Path, model, opts: CompareOptions, output: Path,
                sizes: dict[str, int] | None, shapes: dict[str, list[int]]):
    """(tensor names, ops to keep) -> a Side of this backend at this precision; an .om is compiled
    for the dynamic axes at `sizes`; an OpenVINO model is fixed to the batches' `shapes` (every batch
    has the same)."""
    if backend.name == "onnxruntime" and precision == "int8":
        return lambda names, keep: ort_int8(fp32_path, names, keep)
    if backend.name == "openvino" and precision == "int8":
        calibration = _calibration(artifacts.entry, opts)
        return lambda names, keep: openvino_int8(artifacts, calibration, names, keep, shapes)
    if backend.name == "openvino":
        return lambda names, keep: openvino_float(fp32_path, names, precision, keep, shapes)
    if backend.name == "ascend":
        from modelzoo.backends.ascend.atc import atc_command

        soc = backend.soc_version(opts.backend_options.get(backend.name), [0])
        base = [a for a in atc_command(artifacts.manifest, fp32_path.resolve(), output, soc, opts.batch_size,
                                       precision=precision, axis_gears=[sizes] if sizes else None)
                if not a.startswith("--output=")]
        count = iter(range(1_000_000))
        return lambda names, keep: AscendSide(model, names, base, keep, output / "om" / str(next(count)))
    raise UserError(f"compare does not know how to look inside backend '{backend.name}' at {precision}; "
                    "it compares onnxruntime int8, openvino bf16/fp16/int8 and ascend fp16")


def _calibration(entry, opts: CompareOptions):
    from modelzoo.calibration import choose_calibration
    from modelzoo.pipeline import load_dataset

    everything = load_dataset(entry, opts.data, None) if opts.calibration_data is None else None
    return choose_calibration(entry, opts.calibration, opts.calibration_data, everything)


def output_figures(manifest, golden: dict, got: dict) -> dict:
    """Cosine (None when inf/nan make it meaningless), max |diff| and, for class scores, top-1
    agreement of the model's outputs with the fp32 ONNX's; the worst over the outputs."""
    cosines, diffs, top1 = [], [], []
    for tensor in manifest.outputs:
        figures = tensor_figures(golden[tensor.name], got[tensor.name])
        cosines.append(figures["cosine"])
        diffs.append(figures["max_abs"])
        ref, out = golden[tensor.name], got[tensor.name]
        if ref.dtype.kind == "f" and ref.ndim >= 2 and ref.shape[1] > 1:
            top1.append(float(np.mean(ref.argmax(1) == out.argmax(1))))
    figures = {"cosine": None if None in cosines else min(cosines),
               "max_abs": None if None in diffs else max(diffs)}
    if top1:
        figures["top1_agreement"] = min(top1)
    return figures


def _fix(result, table, artifacts, outputs, golden, batches, rows, make, opts: CompareOptions,
         before_side: Side):
    """The ops to keep, and output agreement before and after, each measured."""
    manifest = artifacts.manifest
    before = result["agreement"]
    parity_top1 = (artifacts.parity or {}).get("top1_agreement", 1.0)

    def passes(figures: dict) -> bool:
        return (figures["cosine"] is not None and figures["cosine"] >= opts.target_cosine
                and figures.get("top1_agreement", 1.0) >= parity_top1)

    unkept: list[str] = []

    def evaluate(keep: list[str]) -> dict:
        side = make([], keep)
        unkept[:] = side.unkept
        return output_figures(manifest, golden, _trim(side.run(batches), rows))

    target = {"cosine": opts.target_cosine, "top1_agreement": parity_top1}
    if passes(before) or result["first_divergent"] is None:
        return {"fix": [], "fix_mechanism": before_side.mechanism, "fix_runs": 0, "fix_minimal": True, "target": target,
                "agreement_before": before, "agreement_after": before}
    start = result["first_divergent"]["index"]
    ops = list(dict.fromkeys(row["op"] for row in table))
    # From the first divergence on; then, should those not suffice, the earlier ops nearest it first
    # (an op whose error a cosine hides, e.g. beside a huge channel, can still matter downstream).
    first = ops.index(table[start]["op"])
    candidates = ops[first:] + ops[:first][::-1]
    found = fix.search(candidates, evaluate, passes, opts.fix_runs)
    if found is None:
        after = evaluate(candidates)
        log.warning("compare --fix: keeping every op does not reach the target%s", (
            f"; {opts.backend} still computed {len(unkept)} of the {len(candidates)} kept ops at {opts.precision}: "
            f"it does not honour {before_side.mechanism} there" if unkept else ""))
        return {"fix": None, "fix_mechanism": before_side.mechanism, "fix_runs": 2, "fix_minimal": None, "target": target,
                "fix_unkept": list(unkept), "agreement_before": before, "agreement_after": after}
    return {"fix": found.kept, "fix_mechanism": before_side.mechanism, "fix_runs": found.runs,
            "fix_minimal": found.minimal, "target": target,
            "agreement_before": before, "agreement_after": found.figures}
