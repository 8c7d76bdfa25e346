"""The ONNX graph's float tensors in topological order, and the graph with all of them as outputs."""
from __future__ import annotations

from dataclasses import dataclass

import onnx

FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
               onnx.TensorProto.DOUBLE}


@dataclass(frozen=True)
class Tensor:
    """One op's float output: the op's name and type, and the tensor's name."""

    op: str
    type: str
    name: str


def float_tensors(model: onnx.ModelProto) -> list[Tensor]:
    """Every op output of a float type, in the graph's (topological) node order; shape inference
    tells the types of the tensors the exporter left untyped. Constant nodes are left out: they
    compute nothing, and a backend folds them into their consumers, whose rows show any rounding."""
    typed = onnx.shape_inference.infer_shapes(model)
    types = {vi.name: vi.type.tensor_type.elem_type
             for vi in [*typed.graph.value_info, *typed.graph.output]}
    return [Tensor(node.name or f"{node.op_type}_{i}", node.op_type, name)
            for i, node in enumerate(model.graph.node) for name in node.output
            if node.op_type != "Constant" and types.get(name) in FLOAT_TYPES]


def with_outputs(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of `model` whose graph outputs are its own plus `names`, typed by shape inference."""
    out = onnx.shape_inference.infer_shapes(model)
    known = {vi.name: vi for vi in out.graph.value_info}
    present = {o.name for o in out.graph.output}
    out.graph.output.extend(known.get(n, onnx.ValueInfoProto(name=n)) for n in names if n not in present)
    return out


def op_names(model: onnx.ModelProto) -> dict[str, str]:
    """Op name -> op type."""
    return {node.name: node.op_type for node in model.graph.node}
