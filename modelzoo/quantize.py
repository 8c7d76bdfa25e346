"""int8 ONNX for the CPU: ONNX Runtime dynamic quantisation, and how far it drifts from fp32.

Only MatMul/Gemm are quantised: on AVX2 CPUs without VNNI that is the one int8 form measured
faster than fp32 (about 1.4x on LV-ViT-S); quantising Conv too (ConvInteger) halves the speed.
Weights are QInt8 per tensor; activations are quantised at run time, per batch. The accuracy cost
depends on the weights, so it is measured (`int8_agreement`), never assumed.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from modelzoo.export import PARITY_SEED, agreement, describe_agreement
from modelzoo.fileio import atomic_write_json

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts

log = logging.getLogger(__name__)

# Part of the cache key: changing any of these builds a new int8 file.
SETTINGS = {"method": "dynamic", "op_types": ["MatMul", "Gemm"], "weight_type": "QInt8",
            "per_channel": False, "reduce_range": False}
AGREEMENT_IMAGES = 8


def int8_onnx(artifacts: Artifacts, batch_size: int) -> Path:
    """The int8 form of the run's fp32 ONNX (static batch), built once and cached."""
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = artifacts.onnx(batch_size)

    def build(tmp: Path) -> None:
        log.info("quantising %s to int8 (%s)", fp32.name, ", ".join(SETTINGS["op_types"]))
        # Its advice to pre-process first is moot here: onnxsim has already inferred the shapes.
        quiet = _DropMessage("pre-processing before quantization")
        logging.getLogger().addFilter(quiet)
        try:
            quantize_dynamic(fp32, tmp, op_types_to_quantize=SETTINGS["op_types"],
                             weight_type=getattr(QuantType, SETTINGS["weight_type"]),
                             per_channel=SETTINGS["per_channel"], reduce_range=SETTINGS["reduce_range"])
        finally:
            logging.getLogger().removeFilter(quiet)

    key = artifacts.key(artifact="int8", source=fp32.name, batch=batch_size,
                        onnxruntime=onnxruntime.__version__, quantization=SETTINGS)
    return artifacts.cache.artifact(f"{fp32.stem}-int8", ".onnx", key, build, "int8 ONNX")


def int8_agreement(artifacts: Artifacts, batch_size: int) -> dict[str, float]:
    """int8 vs fp32 ONNX Runtime outputs on seeded random inputs: max |Δ|, cosine, top-1 agreement.

    The figures are stored beside the int8 file, so that a rerun reports them without measuring
    again. Random inputs are not the data set: they show how far this model's int8 form drifts,
    not its accuracy on real images (that needs the real checkpoint and ImageNet val).
    """
    fp32, int8 = artifacts.onnx(batch_size), int8_onnx(artifacts, batch_size)
    record = int8.with_name(int8.name + ".agreement.json")
    if record.exists():
        return json.loads(record.read_text())
    import onnxruntime as ort

    names = [t.name for t in artifacts.manifest.outputs]
    sessions = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, int8)]
    ref, got = [], []
    for i in range(-(-AGREEMENT_IMAGES // batch_size)):
        feeds = artifacts.example_inputs(batch_size, PARITY_SEED + i)
        ref.append(dict(zip(names, sessions[0].run(names, feeds))))
        got.append(dict(zip(names, sessions[1].run(names, feeds))))
    figures = agreement(artifacts.manifest, ref, got)
    log.info("int8 vs fp32 ONNX: %s on %d random inputs", describe_agreement(figures), figures["images"])
    atomic_write_json(record, figures)
    return figures


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()
