"""Keeping chosen ONNX ops out of OpenVINO's reduced float precision (bf16 or fp16 on the CPU).

OpenVINO's per-op mark is the `DisablePrecisionConversion` runtime attribute ("dynamic:f16": no
conversion to f16, from any type), which its IR reader restores from a layer's rt_info. Its Python
API cannot create the attribute (a string set in a node's rt_info is not it), so `keep_float`
passes the model through IR once with the mark written into the XML. What the CPU plugin does with
it is read back from the compiled model (`reduced_ops`), never assumed: measured with OpenVINO
2026.4.1 on a CPU with AMX and AVX512-FP16, a marked FullyConnected runs f32 between converts at
fp16, and stays bf16 at bf16, which the plugin lowers without looking at the mark.
"""
from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from modelzoo.quantize import openvino_ops

MARK = "DisablePrecisionConversion"
OV_TYPES = {"bf16": "bf16", "fp16": "f16"}
# Exec-graph nodes that only move data between precisions: they run in whatever precision their
# neighbours need and say nothing about whether an op was kept.
MOVERS = {"Convert", "Reorder", "Input", "Output", "Const"}


def keep_float(model, keep: list[str] | tuple[str, ...], precision: str):
    """`model` (an ov.Model) with the OpenVINO ops made from the ONNX ops `keep` marked to stay
    out of `precision` (bf16 or fp16)."""
    import openvino as ov

    kept = set(openvino_ops(model, keep))
    with tempfile.TemporaryDirectory() as tmp:
        xml_path = Path(tmp) / "model.xml"
        ov.save_model(model, str(xml_path), compress_to_fp16=False)
        tree = ET.parse(xml_path)
        for layer in tree.getroot().iter("layer"):
            if layer.get("name") in kept:
                rt_info = layer.find("rt_info")
                if rt_info is None:
                    rt_info = ET.SubElement(layer, "rt_info")
                ET.SubElement(rt_info, "attribute",
                              {"name": MARK, "version": "0", "value": f"dynamic:{OV_TYPES[precision]}"})
        tree.write(xml_path)
        return ov.Core().read_model(str(xml_path))


def reduced_ops(compiled, keep: list[str] | tuple[str, ...]) -> list[str]:
    """The ONNX ops of `keep` that `compiled` still computes below f32: an op counts as kept only
    where every exec-graph node made from it (fused ones included) runs f32."""
    reduced = set()
    for node in compiled.get_runtime_model().get_ordered_ops():
        rt_info = node.get_rt_info()
        if str(rt_info["layerType"].astype(str)) in MOVERS:
            continue
        if str(rt_info["runtimePrecision"].astype(str)) != "f32":
            origins = str(rt_info["originalLayersNames"].astype(str)).split(",")
            reduced.update(op for op in keep if any(o == op or o.startswith(op + "/") for o in origins))
    return [op for op in keep if op in reduced]
