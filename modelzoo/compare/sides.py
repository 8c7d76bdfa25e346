"""Each side of a comparison: a model that, given input batches, returns the tensors asked for.

The golden side is the fp32 ONNX in ONNX Runtime. A backend side runs the backend's own reduced
form of it (quantised graph, compiled model, .om) with the same ONNX tensor names exposed where the
backend keeps them; `observable` says which it could. `keep` names the ONNX ops to keep at higher
precision, through the backend's own mechanism.
"""
from __future__ import annotations

import logging
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from modelzoo.compare.graph import with_outputs
from modelzoo.errors import UserError

if TYPE_CHECKING:
    from modelzoo.calibration import Calibration
    from modelzoo.core import Arrays

log = logging.getLogger(__name__)


class Side:
    """Runs batches; `observable` holds the tensor names it returns."""

    observable: set[str]
    mechanism = "none"  # how `keep` is applied, for the report
    unkept: tuple[str, ...] = ()  # ops of `keep` the backend was seen to compute at the reduced precision anyway

    def run(self, batches: list[Arrays]) -> dict[str, np.ndarray]:
        """Tensor name -> the tensor over all batches, concatenated along the batch axis (a scalar,
        e.g. a mean over the whole batch, becomes one value per batch)."""
        per_batch = [self.infer(b) for b in batches]
        # Each batch's array is let go once joined: every tensor of a ViT over a few dozen samples
        # fills gigabytes, and holding both copies doubled the peak.
        return {name: np.concatenate([np.atleast_1d(b.pop(name)) for b in per_batch])
                for name in list(per_batch[0])}

    def infer(self, inputs: Arrays) -> Arrays:
        raise NotImplementedError


class OrtSide(Side):
    """An ONNX model in ONNX Runtime with `names` exposed (those the graph holds)."""

    def __init__(self, model: onnx.ModelProto, names: list[str]) -> None:
        import onnxruntime as ort

        produced = {out for node in model.graph.node for out in node.output}
        self.observable = {n for n in names if n in produced} | {o.name for o in model.graph.output}
        exposed = with_outputs(model, [n for n in names if n in produced])
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(exposed.SerializeToString(), options,
                                            providers=["CPUExecutionProvider"])
        self.names = [o.name for o in self.session.get_outputs()]

    def infer(self, inputs: Arrays) -> Arrays:
        return dict(zip(self.names, self.session.run(self.names, inputs)))


def ort_int8(fp32_path: Path, names: list[str], keep: list[str]) -> OrtSide:
    """ONNX Runtime's dynamic int8 of the run (modelzoo.quantize's settings), `keep` left in float
    through quantize_dynamic's nodes_to_exclude."""
    from modelzoo.quantize import dynamic_int8

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "int8.onnx"
        dynamic_int8(fp32_path, out, keep)
        side = OrtSide(onnx.load(out), names)
    side.mechanism = "onnxruntime quantize_dynamic nodes_to_exclude"
    return side


class OpenVinoSide(Side):
    """An OpenVINO model compiled for the CPU plugin at `precision`, the ONNX tensors in `names`
    exposed: OpenVINO keeps an ONNX tensor's name on the op that now produces it; a tensor whose
    name its transformations dropped is not observable."""

    def __init__(self, model, names: list[str], precision: str, mechanism: str) -> None:
        import openvino as ov

        from modelzoo.backends.openvino import OV_HINTS

        self.mechanism = mechanism
        ports = {}
        for op in model.get_ordered_ops():
            for port in op.outputs():
                for name in port.get_names() & set(names):
                    ports.setdefault(name, port)
        self.observable = set(ports) | {o.get_any_name() for o in model.outputs}
        model.add_outputs(list(ports.values()))
        hint = OV_HINTS["fp32" if precision == "int8" else precision]
        self.compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": hint})
        self.names = [_ov_name(port, names) for port in self.compiled.outputs]

    def infer(self, inputs: Arrays) -> Arrays:
        result = self.compiled(inputs)
        return {name: result[i] for i, name in enumerate(self.names)}


def openvino_int8(artifacts, calibration: Calibration | None, names: list[str], keep: list[str],
                  shapes: dict[str, list[int]]) -> OpenVinoSide:
    """The int8 model `run` runs: the dynamic-batch ONNX quantised by NNCF on the run's calibration
    samples (one a batch, whatever --bs is), `keep` in its ignored_scope; cached as `run` caches it.
    It is fixed to the compared inputs' `shapes` before tensors are exposed: with a dynamic batch,
    OpenVINO 2026.4's CPU plugin computes a quantised conv stem wrong once its inner tensors are
    outputs (measured on LV-ViT: zeros after the second conv, the logits moved too)."""
    import openvino as ov

    from modelzoo.quantize import nncf_int8

    if calibration is None:
        raise UserError("int8 on openvino needs calibration images; pass --data or --calibration-data")
    model = ov.Core().read_model(str(nncf_int8(artifacts, calibration, tuple(keep)) / "model.xml"))
    model.reshape(shapes)
    return OpenVinoSide(model, names, "int8", "NNCF ignored_scope")


def openvino_float(fp32_path: Path, names: list[str], precision: str, keep: list[str],
                   shapes: dict[str, list[int]]) -> OpenVinoSide:
    """The fp32 ONNX at bf16/fp16, fixed to the compared inputs' `shapes` (as openvino_int8), `keep`
    marked to stay in f32 (modelzoo.openvino_precision); `unkept` lists those the compiled model
    still computes at `precision`."""
    import openvino as ov

    from modelzoo.openvino_precision import keep_float, reduced_ops

    model = ov.Core().read_model(str(fp32_path))
    model.reshape(shapes)
    if keep:
        model = keep_float(model, keep, precision)
    side = OpenVinoSide(model, names, precision, "OpenVINO DisablePrecisionConversion rt_info")
    side.unkept = tuple(reduced_ops(side.compiled, keep)) if keep else ()
    return side


def _ov_name(port, wanted: list[str]) -> str:
    found = port.get_names() & set(wanted)
    return min(found) if found else port.get_any_name()


class AscendSide(Side):
    """An .om compiled by atc with every tensor's node in --out_nodes, so that the chip hands
    them back like outputs (a debug build: --out_nodes can stop atc fusing those ops, which a
    release build would), `keep` through --keep_dtype, run with ais_bench's InferSession."""

    mechanism = "atc --keep_dtype"

    def __init__(self, model: onnx.ModelProto, names: list[str], atc_command: list[str], keep: list[str],
                 workdir: Path) -> None:
        from modelzoo.backends.ascend.ais_session import infer_session_class

        producer = {out: (node.name, i) for node in model.graph.node for i, out in enumerate(node.output)}
        finals = [o.name for o in model.graph.output]
        wanted = [n for n in names if n in producer and n not in finals] + finals
        workdir = workdir.resolve()  # atc runs inside it
        workdir.mkdir(parents=True, exist_ok=True)
        cmd = [*atc_command, f"--output={workdir / 'compare'}",
               "--out_nodes=" + ";".join(f"{producer[n][0]}:{producer[n][1]}" for n in wanted)]
        if keep:
            (workdir / "keep_dtype.cfg").write_text("".join(f"{op}\n" for op in keep))
            cmd.append(f"--keep_dtype={workdir / 'keep_dtype.cfg'}")
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=workdir, check=False)
        if result.returncode != 0:
            from modelzoo.backends.ascend.atc import atc_failure

            raise UserError(atc_failure(result.stdout + "\n" + result.stderr, result.returncode))
        om = next(workdir.glob("compare*.om"))
        self.session = infer_session_class()(0, str(om))
        self.names = wanted
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.observable = set(wanted)

    def infer(self, inputs: Arrays) -> Arrays:
        return dict(zip(self.names, self.session.infer([inputs[n] for n in self.input_names])))
