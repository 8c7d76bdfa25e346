"""What the fake atc compiles: the ONNX graph's inputs with --input_shape applied, the gears
(batch, image size or dims), the --out_nodes cut, and the output shapes of the compiled model."""
from __future__ import annotations

import numpy as np
import onnx

from modelzoo.testing.fake_ascend.atc_errors import AtcError, invalid_value
from modelzoo.testing.fake_ascend.om import TensorInfo


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    initializers = {init.name for init in model.graph.initializer}
    return [vi for vi in model.graph.input if vi.name not in initializers]


def resolve_inputs(model: onnx.ModelProto, options: dict[str, str]) -> list[TensorInfo]:
    """Each graph input with the shape --input_shape gives it (or the ONNX one)."""
    given = _parse_input_shape(options.get("input_shape", ""))
    inputs = graph_inputs(model)
    names = {vi.name for vi in inputs}
    for name in given:
        if name not in names:
            raise AtcError("E10016", {"opname": name, "parameter": "input_shape"},
                           "[Check][InputShape]Input shape check failed.[FUNC:CheckInputShapeNode]")
    fmt = options.get("input_format", "NCHW")
    infos = []
    for vi in inputs:
        tensor_type = vi.type.tensor_type
        dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
        onnx_shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
        shape, ranges = given.get(vi.name, (onnx_shape, []))
        if len(shape) != len(onnx_shape):
            raise AtcError("E10002", {
                "value": options.get("input_shape", ""),
                "reason": f"Dimension count [{len(shape)}] of [{vi.name}] does not match "
                          f"dimension count [{len(onnx_shape)}] of the node.",
            })
        infos.append(TensorInfo(name=vi.name, dtype=dtype, shape=shape, format=fmt, ranges=ranges))
    return infos


def _parse_input_shape(text: str) -> dict[str, tuple[list[int], list[list[int]]]]:
    """'name:1,3,224,224;name2:1~8,3' -> {name: (shape with -1 for ranges, per-axis ranges)}."""
    result: dict[str, tuple[list[int], list[list[int]]]] = {}
    if not text:
        return result
    for item in text.strip().strip(";").split(";"):
        name, sep, dims_text = item.rpartition(":")  # op names may themselves hold ':'
        if not sep or not name or not dims_text:
            raise AtcError("E10002", {"value": text, "reason": f"Incorrect format of [{item}]."})
        shape, ranges, ranged = [], [], False
        for dim in dims_text.split(","):
            low, tilde, high = dim.strip().partition("~")
            try:
                lo, hi = int(low), int(high) if tilde else int(low)
            except ValueError:
                raise AtcError("E10002", {
                    "value": text, "reason": f"The shape value [{dim}] is not an integer.",
                }) from None
            if lo < -1 or (tilde and (lo < 1 or (hi != -1 and hi < lo))) or lo == 0:
                raise AtcError("E10002", {
                    "value": text, "reason": f"The shape value [{dim}] is out of range.",
                })
            ranged = ranged or bool(tilde)
            shape.append(-1 if tilde else lo)
            ranges.append([lo, hi] if tilde else [lo, lo])
        result[name] = (shape, ranges if ranged else [])
    return result


def parse_gears(options: dict[str, str], inputs: list[TensorInfo]) -> list[int]:
    text = options.get("dynamic_batch_size")
    if text is None:
        return []
    try:
        gears = [int(v) for v in text.strip().strip(",").split(",")]
    except ValueError:
        raise invalid_value(text, "--dynamic_batch_size",
                            "The value must be positive integers separated by commas.") from None
    if any(g <= 0 for g in gears):
        raise invalid_value(text, "--dynamic_batch_size", "Batch sizes must be positive.")
    if len(gears) < 2:
        raise AtcError("E10035", {"count": str(len(gears)), "minimum": "2"})
    if any(t.ranges for t in inputs):
        raise AtcError("E10040", {})
    if not any(t.shape and t.shape[0] == -1 for t in inputs):
        raise AtcError("E10031", {})
    return gears


GEAR_FLAGS = ("dynamic_batch_size", "dynamic_image_size", "dynamic_dims")
MAX_PROFILES = 100  # atc's documented range of profiles is (1, 100]
# The -1 axes --dynamic_image_size fills: height and width of a picture.
HW_AXES = {"NCHW": [2, 3], "NHWC": [1, 2]}


def input_shape_order(options: dict[str, str]) -> list[str]:
    """The input names in the order --input_shape lists them: the order dims gears follow."""
    return list(_parse_input_shape(options.get("input_shape", "")))


def parse_profiles(options: dict[str, str], inputs: list[TensorInfo], order: list[str],
                   flag: str) -> list[list[int]]:
    """--dynamic_image_size 'h,w;h,w' or --dynamic_dims 'v,..;v,..' checked against --input_shape."""
    text = options.get(flag)
    if text is None:
        return []
    given = [f for f in GEAR_FLAGS if f in options]
    if len(given) > 1:
        raise invalid_value(text, f"--{flag}", f"[--{given[0]}] and [--{given[1]}] are mutually "
                                               "exclusive; set only one of them.")
    try:
        profiles = [[int(v) for v in gear.split(",")] for gear in text.strip().strip(";").split(";")]
    except ValueError:
        raise invalid_value(text, f"--{flag}", "The value must be positive integers: profiles "
                                               "separated by ';', values by ','.") from None
    if any(v <= 0 for gear in profiles for v in gear):
        raise invalid_value(text, f"--{flag}", "The values must be positive.")
    if len(profiles) < 2:
        raise AtcError("E10035", {"count": str(len(profiles)), "minimum": "2"})
    if len(profiles) > MAX_PROFILES:
        raise invalid_value(text, f"--{flag}", f"At most {MAX_PROFILES} profiles are supported.")
    by_name = {t.name: t for t in inputs}
    if any(t.ranges for t in inputs) or not any(-1 in t.shape for t in inputs):
        raise AtcError("E10040", {})
    if flag == "dynamic_dims":
        count = sum(by_name[n].shape.count(-1) for n in order if n in by_name)
        for gear in profiles:
            if len(gear) != count:
                raise invalid_value(text, "--dynamic_dims", f"The profile [{','.join(map(str, gear))}] has "
                                    f"{len(gear)} values but --input_shape has {count} -1 placeholders.")
        return profiles
    axes = HW_AXES.get(options.get("input_format", "NCHW"))
    for t in inputs:
        if -1 in t.shape and (axes is None or [i for i, d in enumerate(t.shape) if d == -1] != axes):
            raise invalid_value(options.get("input_shape", ""), "--input_shape",
                                f"With --dynamic_image_size only the height and width of an NCHW "
                                f"or NHWC input may be -1 ([{t.name}]).")
    if any(len(gear) != 2 for gear in profiles):
        raise invalid_value(text, "--dynamic_image_size", "Each profile must be 'height,width'.")
    return profiles


def cut_at_out_nodes(model: onnx.ModelProto, text: str) -> tuple[onnx.ModelProto, bytes]:
    """Make the named node outputs ('node:index;...') the graph outputs, as --out_nodes does."""
    nodes = {node.name: node for node in model.graph.node}
    wanted = []
    for item in text.strip().strip(";").split(";"):
        name, _, index = item.rpartition(":")
        node = nodes.get(name)
        if node is None or not index.isdigit() or int(index) >= len(node.output):
            raise AtcError("E10016", {"opname": name or item, "parameter": "out_nodes"})
        wanted.append(node.output[int(index)])
    cut = onnx.ModelProto()
    cut.CopyFrom(model)
    known = {vi.name: vi for vi in [*model.graph.value_info, *model.graph.output]}
    del cut.graph.output[:]
    for tensor in wanted:
        cut.graph.output.append(known.get(tensor) or onnx.ValueInfoProto(name=tensor))
    return cut, cut.SerializeToString()


def output_infos(model: onnx.ModelProto, inputs: list[TensorInfo],
                  largest: dict[str, list[int]] | None) -> list[TensorInfo]:
    """Output shapes for the largest profile: -1 where the shape stays dynamic."""
    feed_shapes = largest or {t.name: list(t.shape) for t in inputs}
    inferred = _infer_shapes(model, feed_shapes)
    if any(-1 in shape for shape, _ in inferred) and not any(
            -1 in s for s in feed_shapes.values()):
        inferred = _run_for_shapes(model, inputs, feed_shapes)
    return [TensorInfo(name=out.name, dtype=dtype, shape=shape, format="ND")
            for out, (shape, dtype) in zip(model.graph.output, inferred)]


def _infer_shapes(model: onnx.ModelProto,
                  feed_shapes: dict[str, list[int]]) -> list[tuple[list[int], str]]:
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    for vi in fixed.graph.input:
        if vi.name in feed_shapes:
            for dim, size in zip(vi.type.tensor_type.shape.dim, feed_shapes[vi.name]):
                if size == -1:
                    dim.dim_param = "dynamic"
                else:
                    dim.dim_value = size
    # Shapes the exporter stored describe the ONNX input shapes, not the compiled ones.
    del fixed.graph.value_info[:]
    for out in fixed.graph.output:
        out.type.tensor_type.ClearField("shape")
    try:
        fixed = onnx.shape_inference.infer_shapes(fixed)
    except Exception:  # noqa: BLE001 - fall back to what the graph already states
        pass
    known = {vi.name: vi for vi in [*fixed.graph.value_info, *fixed.graph.output]}
    result = []
    for out in fixed.graph.output:
        tensor_type = known.get(out.name, out).type.tensor_type
        if not tensor_type.elem_type:
            tensor_type = out.type.tensor_type
        dtype = (onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type).name
                 if tensor_type.elem_type else "float32")
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in tensor_type.shape.dim]
        result.append((shape if tensor_type.HasField("shape") else [-1], dtype))
    return result


def _run_for_shapes(model: onnx.ModelProto, inputs: list[TensorInfo],
                    feed_shapes: dict[str, list[int]]) -> list[tuple[list[int], str]]:
    """Shape inference could not tell: run the model once on zeros, as the compiler would know."""
    import onnxruntime as ort

    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feeds = {t.name: np.zeros(feed_shapes[t.name], dtype=t.dtype) for t in inputs}
    outputs = session.run(None, feeds)
    return [(list(out.shape), out.dtype.name) for out in outputs]
