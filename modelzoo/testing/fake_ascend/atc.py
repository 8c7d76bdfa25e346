"""The fake `atc`: checks an ONNX conversion like ATC does and writes a fake .om.

The .om (see ais_bench/om_file.py) carries the ONNX bytes, so the fake ais_bench can run the model
with ONNX Runtime and produce real outputs. Console lines, E-codes, exit status and the output
file name (`<output>.om`, or `<output>_linux_<arch>.om` for dynamic shapes) follow real ATC.
"""
from __future__ import annotations

import os
import platform
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import onnx

from modelzoo.testing.fake_ascend.atc_errors import FAILED_LINE, AtcError, invalid_value
from modelzoo.testing.fake_ascend.atc_graph import (
    cut_at_out_nodes,
    graph_inputs,
    input_shape_order,
    output_infos,
    parse_gears,
    parse_profiles,
    resolve_inputs,
)
from modelzoo.testing.fake_ascend.fp16 import FP16_MODES, as_fp16_chip, read_keep_dtype
from modelzoo.testing.fake_ascend.om import OmManifest, write_om

START_LINE = "ATC start working now, please wait for a moment."
SUCCESS_LINE = "ATC run success, welcome to the next use."
FAIL_ENV = "MODELZOO_FAKE_ATC_FAIL"
PID_PREFIX_ENV = "MODELZOO_FAKE_ATC_PID_PREFIX"

FLAGS = {
    "model", "weight", "framework", "output", "input_format", "input_shape", "dynamic_batch_size",
    "dynamic_image_size", "dynamic_dims",
    "soc_version", "log", "precision_mode", "op_select_implmode", "optypelist_for_implmode",
    "enable_small_channel", "fusion_switch_file", "out_nodes", "insert_op_conf", "keep_dtype",
    "input_fp16_nodes", "output_type", "buffer_optimize", "disable_reuse_memory",
    "host_env_os", "host_env_cpu", "auto_tune_mode", "modify_mixlist", "customize_dtypes",
}
FRAMEWORKS = {"0": "Caffe", "1": "MindSpore", "3": "TensorFlow", "5": "ONNX"}
LOG_LEVELS = {"debug", "info", "warning", "error", "null"}
INPUT_FORMATS = {"NCHW", "NHWC", "ND", "NCDHW", "NDHWC"}
PRECISION_MODES = {
    "force_fp16", "force_fp32", "cube_fp16in_fp32out", "allow_mix_precision",
    "allow_fp32_to_fp16", "must_keep_origin_dtype", "allow_mix_precision_fp16",
    "allow_mix_precision_bf16", "allow_fp32_to_bf16",
}
IMPL_MODES = {"high_precision", "high_performance", "high_precision_for_all",
              "high_performance_for_all"}
USAGE = """usage: atc <args>
generate offline model example:
atc --model=./alexnet.prototxt --weight=./alexnet.caffemodel --framework=0 --output=./domi
    --soc_version=<soc_version>
arguments explain:
  --model             Model file
  --framework         Framework type. 0:Caffe; 1:MindSpore; 3:Tensorflow; 5:Onnx
  --output            Output file path&name(needn't suffix, will add .om automatically).
  --soc_version       The soc version.
  --input_format      Format of input data. E.g.: "NCHW"
  --input_shape       Shape of input data. E.g.: "input_name1:n1,c1,h1,w1;input_name2:n2,c2,h2,w2"
  --dynamic_batch_size Set dynamic batch size. E.g.: "batchsize1,batchsize2,batchsize3"
  --dynamic_image_size Set dynamic image size. E.g.: "imagesize1_height,imagesize1_width;..."
  --dynamic_dims      Set dynamic dims. E.g.: "dims1_n1,dims1_n2;dims2_n1,dims2_n2"
  --log               Generate log with level. Support debug, info, warning, error, null
  --precision_mode    precision mode, support force_fp16(default), force_fp32, ...
  --op_select_implmode Set op select implmode. Support high_precision, high_performance.
  --optypelist_for_implmode Appoint which op to select implmode, cooperated with op_select_implmode.
  --enable_small_channel Set enable small channel. 0(default): disable; 1: enable
  --fusion_switch_file Set fusion switch file path
  --out_nodes         Output nodes designated by users. E.g.: "node_name1:0;node_name1:1"
  --insert_op_conf    Config file to insert new op
  --keep_dtype        Retains the precision of certain operators in inference scenarios
"""


class CommandLineError(Exception):
    """A gflags error: reported before ATC itself starts."""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help", "-help") for a in argv):
        print(USAGE, end="")
        return 0
    try:
        options = parse_flags(argv)
    except CommandLineError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    print(START_LINE, flush=True)
    try:
        plan = check(options)
        print("...", flush=True)  # the progress dots ATC prints while it compiles
        forced = os.environ.get(FAIL_ENV, "").strip()
        if forced:
            raise forced_error(forced, options, plan.model)
        write_om(plan.om_path, plan.manifest(["atc", *argv], options), plan.onnx_bytes)
    except AtcError as exc:
        print(FAILED_LINE)
        print(exc.block(with_pid_prefix=os.environ.get(PID_PREFIX_ENV) == "1"), flush=True)
        return 255  # ATC returns -1
    print(SUCCESS_LINE, flush=True)
    return 0


def parse_flags(argv: list[str]) -> dict[str, str]:
    """gflags syntax: -flag=value, --flag=value, -flag value or --flag value."""
    options: dict[str, str] = {}
    i = 0
    while i < len(argv):
        arg = argv[i]
        if not arg.startswith("-"):
            i += 1  # gflags leaves positional words alone; ATC ignores them
            continue
        name, sep, value = arg.lstrip("-").partition("=")
        if name not in FLAGS:
            raise CommandLineError(f"unknown command line flag '{name}'")
        if not sep:
            if i + 1 >= len(argv):
                raise CommandLineError(f"flag '{arg}' is missing its argument")
            i += 1
            value = argv[i]
        options[name] = value
        i += 1
    return options


@dataclass
class Plan:
    """A checked conversion: the model, what the .om records about it and where the .om goes."""

    model: onnx.ModelProto
    onnx_bytes: bytes
    om_path: Path
    compiled: OmManifest  # inputs, outputs, gears; the command line is added when written
    onnx_path: Path

    def manifest(self, argv: list[str], options: dict[str, str]) -> OmManifest:
        return replace(self.compiled, argv=argv, options=options, onnx_path=str(self.onnx_path.resolve()))


def check(options: dict[str, str]) -> Plan:
    for required in ("model", "framework", "output", "soc_version"):
        if not options.get(required):
            raise AtcError("E10054", {"parameter": f"--{required}"},
                           "[Check][Param]Parameter check failed.[FUNC:CheckFlags]"
                           "[FILE:main_impl.cc]")
    framework = options["framework"]
    if framework not in FRAMEWORKS:
        raise invalid_value(framework, "--framework", "The value must be 0 (Caffe), "
                            "1 (MindSpore), 3 (TensorFlow) or 5 (ONNX).")
    model_path = Path(options["model"])
    if not model_path.is_file():
        raise invalid_value(options["model"], "--model",
                            "The file does not exist or is not readable.")
    _check_choice(options, "log", LOG_LEVELS)
    _check_choice(options, "input_format", INPUT_FORMATS)
    _check_choice(options, "precision_mode", PRECISION_MODES)
    _check_choice(options, "op_select_implmode", IMPL_MODES)
    _check_choice(options, "enable_small_channel", {"0", "1"})
    for flag in ("fusion_switch_file", "insert_op_conf"):
        if flag in options and not Path(options[flag]).is_file():
            raise invalid_value(options[flag], f"--{flag}", "The file does not exist.")
    if "keep_dtype" in options and not Path(options["keep_dtype"]).is_file():
        raise AtcError("E10410", {"path": options["keep_dtype"]})
    soc = options["soc_version"]
    if not soc.startswith("Ascend") or len(soc) <= len("Ascend"):
        raise invalid_value(soc, "--soc_version", "The soc version is not supported.")

    onnx_bytes = model_path.read_bytes()
    try:
        if framework != "5":
            raise ValueError("the fake atc converts ONNX models only")
        model = onnx.load_from_string(onnx_bytes)
    except Exception:  # noqa: BLE001 - any parse failure is ATC's E10041
        raise AtcError("E10041", {"path": options["model"]},
                       "ATC model parse ret fail.[FUNC:ParseGraph][FILE:omg.cc]") from None

    inputs = resolve_inputs(model, options)
    order = input_shape_order(options)
    compiled = OmManifest(soc, inputs, [], input_shape_order=order,
                          dynamic_image_size=parse_profiles(options, inputs, order, "dynamic_image_size"),
                          dynamic_dims=parse_profiles(options, inputs, order, "dynamic_dims"))
    compiled.dynamic_batch_sizes = parse_gears(options, inputs)
    geared = bool(compiled.profiles())
    dynamic = geared or any(-1 in t.shape for t in inputs)
    if "out_nodes" in options:
        model, onnx_bytes = cut_at_out_nodes(model, options["out_nodes"])
    compiled.outputs = output_infos(model, inputs, compiled.largest_profile())
    if options.get("precision_mode", "force_fp16") in FP16_MODES:
        keep = read_keep_dtype(Path(options["keep_dtype"])) if "keep_dtype" in options else (set(), set())
        onnx_bytes = as_fp16_chip(model, *keep).SerializeToString()

    output = options["output"]
    suffix = f"_linux_{platform.machine()}.om" if dynamic else ".om"
    compiled.dynamic_shape = dynamic and not geared
    return Plan(model, onnx_bytes, Path(output + suffix), compiled, model_path)


def _check_choice(options: dict[str, str], flag: str, allowed: set[str]) -> None:
    value = options.get(flag)
    if value is None or value in allowed:
        return
    if flag == "log":
        raise AtcError("E10010", {"value": value})
    raise invalid_value(value, f"--{flag}", f"The value must be one of {sorted(allowed)}.")


def forced_error(code: str, options: dict[str, str], model: onnx.ModelProto) -> AtcError:
    """The failure MODELZOO_FAKE_ATC_FAIL asks for, worded with this conversion's own names."""
    first_input = graph_inputs(model)[0].name if graph_inputs(model) else "input"
    node = model.graph.node[0] if model.graph.node else onnx.NodeProto(name="op", op_type="Op")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    args = {
        "E10001": {"value": options.get("soc_version", ""), "parameter": "--soc_version",
                   "reason": "The soc version is not supported by the installed CANN package."},
        "E10002": {"value": options.get("input_shape", ""),
                   "reason": "Incorrect format of the value."},
        "E10016": {"opname": first_input, "parameter": "input_shape"},
        "E10054": {"parameter": "--model"},
        "E19010": {"opname": node.name, "optype": f"ai.onnx::{opset}::{node.op_type}"},
        "EZ3003": {"opname": node.name, "optype": node.op_type},
    }.get(code, {})
    return AtcError(code, args, "Forced by MODELZOO_FAKE_ATC_FAIL.[FUNC:main][FILE:fake_atc]")


if __name__ == "__main__":
    sys.exit(main())
