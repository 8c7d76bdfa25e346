"""int8 forms of a model for the CPU, each built once and cached.

- OpenVINO: NNCF static post-training quantisation, calibrated on images (modelzoo.calibration),
  each activation's range the least and greatest value over all calibration samples; with VNNI
  (or AMX) its int8 kernels run at up to 4x the fp32 rate. Cached by the model and a digest of the
  calibration images.
- ONNX Runtime: dynamic quantisation of MatMul/Gemm only: on AVX2 CPUs without VNNI that is the
  one int8 form measured faster than fp32 (about 1.4x on LV-ViT-S); quantising Conv too
  (ConvInteger) halves the speed. Weights QInt8 per tensor; activations quantised per batch.
The accuracy cost depends on the weights and data, so each run measures it (modelzoo.agreement).
"""
from __future__ import annotations

import logging
import os
import re
import time
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from modelzoo.cache import digest
from modelzoo.fileio import atomic_write_json
from modelzoo.host import cpu, has_int8_dot_products

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts
    from modelzoo.calibration import Calibration

log = logging.getLogger(__name__)

# Part of the cache key: changing any of these builds a new int8 file.
SETTINGS = {"method": "dynamic", "op_types": ["MatMul", "Gemm"], "weight_type": "QInt8",
            "per_channel": False, "reduce_range": False}
NNCF_SETTINGS = {"method": "static", "preset": "default for the model type", "fast_bias_correction": True,
                 "activation_ranges": "min and max over the calibration samples"}


def nncf_overflow_fix(flags: frozenset[str]) -> str:
    """NNCF's overflow fix for a CPU with these flags: "enable" (7-bit weights in every layer) where
    int8 has no dot-product instructions, "first_layer_only" (NNCF's default) elsewhere.

    Without VNNI or AMX, OpenVINO's int8 kernels multiply u8 by s8 pairwise into saturating
    16-bit sums (vpmaddubsw), so full-range weights overflow: measured on an AVX2-only host,
    tinytext's int8 outputs fell to cosine 0.78 against fp32 with NNCF's default and were back
    above 0.9 with the fix in every layer.
    """
    return "first_layer_only" if has_int8_dot_products(flags) else "enable"


def dynamic_int8(fp32: Path, out: Path, keep: tuple[str, ...] | list[str] = ()) -> None:
    """ONNX Runtime's dynamic int8 of `fp32` with SETTINGS, the ONNX ops in `keep` left in float."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # Its advice to pre-process first is moot here: onnxsim has already inferred the shapes. Its
    # info lines name every tensor it leaves in float by design (an attention MatMul of two
    # activations): a hundred lines on LV-ViT, burying the run's own.
    quiet = _DropMessage("pre-processing before quantization")
    logging.getLogger().addFilter(quiet)
    logging.getLogger().addFilter(_quantiser_info)
    try:
        quantize_dynamic(fp32, out, op_types_to_quantize=SETTINGS["op_types"],
                         weight_type=getattr(QuantType, SETTINGS["weight_type"]),
                         per_channel=SETTINGS["per_channel"], reduce_range=SETTINGS["reduce_range"],
                         # The quantiser first splits a Gemm into <name>_MatMul and <name>_Add.
                         nodes_to_exclude=[n for op in keep for n in (op, f"{op}_MatMul")])
    finally:
        logging.getLogger().removeFilter(quiet)
        logging.getLogger().removeFilter(_quantiser_info)


def int8_onnx(artifacts: Artifacts, batch_size: int, keep: tuple[str, ...] = ()) -> Path:
    """The int8 form of the run's fp32 ONNX (static batch), `keep` left in float; built once, cached."""
    import onnxruntime

    fp32 = artifacts.onnx(batch_size)

    def build(tmp: Path) -> None:
        log.info("quantising %s to int8 (%s)%s", fp32.name, ", ".join(SETTINGS["op_types"]),
                 f", keeping {', '.join(keep)} in float" if keep else "")
        dynamic_int8(fp32, tmp, keep)

    key = artifacts.key(artifact="int8", source=fp32.name, batch=batch_size,
                        onnxruntime=onnxruntime.__version__, quantization=SETTINGS,
                        **({"kept": list(keep)} if keep else {}))
    tag = f"-keep{digest({'kept': list(keep)})[:8]}" if keep else ""
    return artifacts.cache.artifact(f"{fp32.stem}-int8{tag}", ".onnx", key, build, "int8 ONNX")


def nncf_quantize(model, calibration: Calibration, keep: tuple[str, ...] | list[str] = ()):
    """NNCF static int8 of an OpenVINO model, the OpenVINO ops made from the ONNX ops in `keep` in
    its ignored_scope, NNCF's overflow fix as this CPU needs it, and activation ranges that cover
    every calibration sample.

    NNCF's default range for a per-tensor activation is the mean over the calibration samples of
    each one's min and max, which clips every sample that reaches further than the average one.
    Measured on an AVX2-only host, OpenVINO's int8 outputs against the fp32 ONNX's on `compare`'s
    inputs, calibrated on the same data set (cosine, NNCF's default -> these ranges): tinytext's demo
    set 0.969 -> 0.9991 (top-1 agreement 88% -> 100%), tinycnn on 7 pictures 0.9951 -> 0.9994,
    tinytrap on 7 pictures with its outlier op kept 0.961 -> 0.9995 (82% -> 100%), LV-ViT-S (random
    weights) on its demo set 0.99820 -> 0.99822.
    """
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    from nncf.quantization.range_estimator import RangeEstimatorParametersSet

    transformer = has_attention(model)
    log.info("quantising to int8 with NNCF %s on %d calibration samples from %s%s%s", version("nncf"),
             len(calibration.samples), calibration.root,
             " (transformer: attention MatMuls found)" if transformer else "",
             f", keeping {', '.join(keep)} in float" if keep else "")
    ignored = {"ignored_scope": nncf.IgnoredScope(names=openvino_ops(model, keep), validate=False)} if keep else {}
    return nncf.quantize(model, nncf.Dataset(calibration), subset_size=len(calibration.samples),
                         model_type=nncf.ModelType.TRANSFORMER if transformer else None,
                         advanced_parameters=AdvancedQuantizationParameters(
                             overflow_fix=OverflowFix(nncf_overflow_fix(cpu()[1])),
                             activations_range_estimator_params=RangeEstimatorParametersSet.MINMAX),
                         **ignored)


def openvino_ops(model, onnx_ops: tuple[str, ...] | list[str]) -> list[str]:
    """The OpenVINO op names that OpenVINO's ONNX reader made from `onnx_ops`: it names them after
    the ONNX node (`/mix/Gemm`, `/mix/Gemm/WithoutBiases`)."""
    pattern = re.compile("|".join(f"{re.escape(op)}(/.*)?" for op in onnx_ops))
    return [op.get_friendly_name() for op in model.get_ordered_ops() if pattern.fullmatch(op.get_friendly_name())]


def nncf_int8(artifacts: Artifacts, calibration: Calibration, keep: tuple[str, ...] = ()) -> Path:
    """A directory with model.xml/.bin: the dynamic-batch ONNX quantised by NNCF (`keep` left in
    float), and calibration.json saying what it was calibrated on."""
    fp32 = artifacts.onnx(None)
    overflow_fix = nncf_overflow_fix(cpu()[1])

    def build(tmp: Path) -> None:
        import openvino as ov

        calibration.announce()
        model = ov.Core().read_model(str(fp32))
        transformer = has_attention(model)
        started = time.perf_counter()
        quantized = nncf_quantize(model, calibration, keep)
        tmp.mkdir()
        ov.save_model(quantized, str(tmp / "model.xml"))
        atomic_write_json(tmp / "calibration.json", {
            **calibration.to_report(), "transformer": transformer, "overflow_fix": overflow_fix,
            "seconds": round(time.perf_counter() - started, 1)})

    key = artifacts.key(artifact="nncf-int8", source=fp32.name, openvino=version("openvino"),
                        nncf=version("nncf"), calibration=calibration.digest(),
                        calibration_samples=len(calibration.samples),
                        quantization={**NNCF_SETTINGS, "overflow_fix": overflow_fix},
                        **({"kept": list(keep)} if keep else {}))
    tag = f"-keep{digest({'kept': list(keep)})[:8]}" if keep else ""
    return artifacts.cache.artifact(f"{fp32.stem}-nncf-int8{tag}", ".ov", key, build, "int8 OpenVINO model (NNCF)")


def has_attention(model) -> bool:
    """A MatMul of two computed tensors (no weight on either side) is attention: NNCF then keeps
    the ops that int8 hurts most in transformers (softmax inputs, layer norms) in float."""
    for op in model.get_ops():
        if op.get_type_name() != "MatMul":
            continue
        sources = [op.input_value(i).get_node() for i in range(2)]
        if all(_computed(node) for node in sources):
            return True
    return False


def _computed(node) -> bool:
    while node.get_type_name() in ("Convert", "Reshape", "Transpose"):
        node = node.input_value(0).get_node()
    return node.get_type_name() != "Constant"


def _quantiser_info(record: logging.LogRecord) -> bool:
    """False for ONNX Runtime's quantiser's info lines (it logs them through the root logger)."""
    return record.levelno >= logging.WARNING or f"onnxruntime{os.sep}quantization" not in record.pathname


class _DropMessage(logging.Filter):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()
