"""The fake atc's model of an fp16 chip: what `--precision_mode=force_fp16` (atc's default) does to
the numbers, and what `--keep_dtype` undoes.

ONNX Runtime's CPU provider has no fp16 kernel for most ops and would run a converted graph in fp32
between casts, so instead every float tensor an fp16 op reads or writes is rounded to fp16 in
place: a Cast to float16 and back after it. Values above 65504 become inf, as on the chip's units.
An op --keep_dtype names computes in fp32 on fp32 inputs; what it hands to an fp16 op is rounded on
the way in, as atc's inserted Cast does. Not modelled: fp32 accumulation inside an fp16 op (a
MatMul here accumulates in fp32 and rounds once, as the chip's Cube unit does, so this one matches),
fused ops, and operators atc itself keeps in fp32.
"""
from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

FLOAT = TensorProto.FLOAT
# --precision_mode values under which the chip computes float ops in fp16.
FP16_MODES = {"force_fp16", "allow_fp32_to_fp16"}


def read_keep_dtype(path: Path) -> tuple[set[str], set[str]]:
    """(op names, op types) from a --keep_dtype file: one per line, `OpType::Name` for a type,
    the plain name for an op (Ascend's documented format); blank lines and `#` comments skipped."""
    names, types = set(), set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("OpType::"):
            types.add(line[len("OpType::"):])
        else:
            names.add(line)
    return names, types


def as_fp16_chip(model: onnx.ModelProto, keep_names: set[str], keep_types: set[str]) -> onnx.ModelProto:
    """The model with every fp16 op's float inputs and outputs rounded to fp16."""
    typed = onnx.shape_inference.infer_shapes(model)
    floats = {vi.name for vi in [*typed.graph.value_info, *typed.graph.input, *typed.graph.output]
              if vi.type.tensor_type.elem_type == FLOAT}
    floats |= {init.name for init in model.graph.initializer if init.data_type == FLOAT}
    out = onnx.ModelProto()
    out.CopyFrom(model)
    nodes, rounded = [], {}

    def round_input(name: str) -> str:
        if name not in rounded:
            rounded[name] = f"{name}__fp16in"
            nodes.extend(_round_trip(name, rounded[name]))
        return rounded[name]

    produced_fp16: set[str] = set()
    for node in model.graph.node:
        kept = node.name in keep_names or node.op_type in keep_types
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        if not kept:
            for i, name in enumerate(copy.input):
                if name in floats and name not in produced_fp16:
                    copy.input[i] = round_input(name)
        outputs = [name for name in copy.output if name in floats and not kept]
        for i, name in enumerate(copy.output):
            if name in outputs:
                copy.output[i] = f"{name}__fp32"
        nodes.append(copy)
        for name in outputs:
            nodes.extend(_round_trip(f"{name}__fp32", name))
            produced_fp16.add(name)
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    return out


def _round_trip(source: str, target: str) -> list[onnx.NodeProto]:
    half = f"{target}__half"
    return [helper.make_node("Cast", [source], [half], to=TensorProto.FLOAT16, name=f"{target}__tofp16"),
            helper.make_node("Cast", [half], [target], to=FLOAT, name=f"{target}__tofp32")]
