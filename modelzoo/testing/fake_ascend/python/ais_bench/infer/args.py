"""ais_bench's command line: the same flags, short forms, defaults, types and checks.

argparse keeps its defaults, so unambiguous prefixes (`--out` is not one, `--outfmt` is) work as
in the real tool, and a bad value ends with argparse's usage error (exit 2). The path arguments
go through the current front end's path rules (path_check.py) while they are parsed, so a refused
path is such an error too, after the `[ERROR]` line that names the rule. Limits on integers are
checked after parsing, as a ValueError (exit 1 with a traceback), as the real __main__ does.
"""
from __future__ import annotations

import argparse
import re

from ais_bench import console
from ais_bench.infer.path_check import (
    ACL_JSON_MAX_SIZE,
    OM_MAX_SIZE,
    READ,
    WRITE,
    OpenException,
    PathInfo,
)

LOOP_MAX = 100000
# What the real __main__ allows after parsing (utils.IntArgsMax).
INT_ARGS_MAX = {"threads": 64, "warmup_count": 10000, "batchsize": 4096, "dym_batch": 4096,
                "output_batchsize_axis": 8}
_FLAGS = {"dym_batch": "dymBatch"}


def str2bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    if value.lower() in ("yes", "true", "t", "y", "1"):
        return True
    if value.lower() in ("no", "false", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(
        "Boolean value expected true, 1, false, 0 with case insensitive.")


def positive_int(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value} contains special characters other than numbers.")
    if int(value) <= 0:
        raise argparse.ArgumentTypeError(f"{value} is an invalid positive int value")
    return int(value)


def nonnegative_int(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value} contains special characters other than numbers.")
    return int(value)


def device_ids(value: str) -> int | list[int]:
    """'0' -> 0; '0,1' -> [0, 1] (multi-device run)."""
    try:
        ids = [int(v) for v in value.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"Argument npu-id invalid input value: {value}. Please provide a valid integer or a "
            "comma-separated list of integers.") from None
    for device in ids:
        if not 0 <= device <= 255:
            raise argparse.ArgumentTypeError(
                f"device:{device} is invalid. valid value range is [0, 255]")
    return ids if "," in value else ids[0]


def loop_size(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value} contains special characters other than numbers.")
    if not 0 < int(value) <= LOOP_MAX:
        raise argparse.ArgumentTypeError(f"{value} is an invalid loop size value")
    return int(value)


def _info(value: str, what: str) -> PathInfo:
    try:
        return PathInfo(value)
    except OpenException:
        raise argparse.ArgumentTypeError(f"{what} path string is illegal. Please check.") from None


def om_path(value: str) -> str:
    info = _info(value, "om")
    if not (info.legal(READ) and info.has_suffix("om") and info.size_within(OM_MAX_SIZE)):
        raise argparse.ArgumentTypeError(f"om path:{value} is illegal. Please check.")
    return value


def input_paths(value: str) -> str:
    for path in value.split(","):
        if not _info(path, "input").legal(READ):
            raise argparse.ArgumentTypeError(f"input path:{path} is illegal. Please check.")
    return value


def output_path(value: str) -> str:
    """--output, and --output_dirname too: that one is checked against the working folder."""
    info = _info(value, "output")
    if info.exists and not info.is_dir:
        raise argparse.ArgumentTypeError("output path is not a directory")
    if not info.legal(WRITE):
        raise argparse.ArgumentTypeError(f"output path:{value} is illegal. Please check.")
    return value


def acl_json_path(value: str) -> str:
    info = _info(value, "acl json")
    if not (info.legal(READ) and info.has_suffix("json") and info.size_within(ACL_JSON_MAX_SIZE)):
        raise argparse.ArgumentTypeError(f"acl json path:{value} is illegal. Please check.")
    return value


def dym_string(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.:;,/\-]+", value):
        raise argparse.ArgumentTypeError(f"dym string \"{value}\" is not a legal string")
    return value


def number_list(value: str) -> str:
    if re.search(r"[^0-9,]", value):
        raise argparse.ArgumentTypeError("number list is contain illegal char!")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    add = p.add_argument
    add("--model", "-m", type=om_path, required=True, help="The path of the om model")
    add("--input", "-i", type=input_paths, default=None, help="Input file or dir")
    add("--output", "-o", type=output_path, default=None, help="Inference data output path")
    add("--output_dirname", type=output_path, default=None, help="Actual output directory name")
    add("--outfmt", default="BIN", choices=["NPY", "BIN", "TXT"], help="Output file format")
    add("--loop", "-l", type=loop_size, default=1, help="The round of the PureInfer.")
    add("--debug", type=str2bool, default=False, help="Debug switch,print model information")
    add("--device", "-d", type=device_ids, default=0, help="The NPU device ID to use")
    add("--dymBatch", dest="dym_batch", type=positive_int, default=0, help="Dynamic batch size")
    add("--dymHW", dest="dym_hw", type=dym_string, default=None, help="Dynamic image size")
    add("--dymDims", dest="dym_dims", type=dym_string, default=None, help="Dynamic dims")
    add("--dymShape", dest="dym_shape", type=dym_string, default=None, help="Dynamic shape")
    add("--outputSize", dest="output_size", type=number_list, default=None, help="Output size")
    add("--auto_set_dymshape_mode", type=str2bool, default=False)
    add("--auto_set_dymdims_mode", type=str2bool, default=False)
    add("--batchsize", type=positive_int, default=None, help="Batch size of input tensor")
    add("--pure_data_type", default="zero", choices=["zero", "random"])
    add("--profiler", type=str2bool, default=False)
    add("--dump", type=str2bool, default=False)
    add("--acl_json_path", type=acl_json_path, default=None)
    add("--output_batchsize_axis", type=nonnegative_int, default=0)
    add("--run_mode", default="array", choices=["array", "files", "tensor", "full"])
    add("--display_all_summary", type=str2bool, default=False)
    add("--warmup_count", type=nonnegative_int, default=1)
    add("--dymShape_range", dest="dym_shape_range", default=None)
    add("--aipp_config", default=None)
    add("--energy_consumption", type=str2bool, default=False)
    add("--npu_id", type=device_ids, default=0)
    add("--backend", default=None, choices=["trtexec"])
    add("--perf", type=str2bool, default=False)
    add("--pipeline", type=str2bool, default=False)
    add("--profiler_rename", type=str2bool, default=True)
    add("--dump_npy", type=str2bool, default=False)
    add("--divide_input", type=str2bool, default=False)
    add("--threads", type=positive_int, default=1)
    return p


def check_int_limits(args: argparse.Namespace) -> None:
    for name, limit in INT_ARGS_MAX.items():
        value = getattr(args, name)
        if value is not None and value > limit:
            raise ValueError(f"--{_FLAGS.get(name, name)}: {value} is over {limit}")


def check_rules(args: argparse.Namespace) -> None:
    """The cross-argument rules ais_bench applies after parsing (args_rules)."""
    if args.profiler and args.dump:
        console.error("parameter --profiler cannot be true at the same time as parameter --dump, "
                      "please check them!\n")
        raise RuntimeError("error bad parameters --profiler and --dump")
    if args.output_dirname and args.output_dirname.startswith("/"):
        raise ValueError("--output_dirname do not support abs path!")
    if (args.profiler or args.dump) and args.output is None:
        console.error("when dump or profiler, miss output path, please check them!")
        raise RuntimeError("miss output parameter!")
    if args.output is None and args.output_dirname is not None:
        console.error("parameter --output_dirname cann't be used alone. Please use it together "
                      "with the parameter --output!\n")
        raise RuntimeError("error bad parameters --output_dirname")
    if args.threads > 1 and not args.pipeline:
        console.info("need to set --pipeline when setting threads number to be more than one.")
        args.threads = 1
    args.no_combine_tensor_mode = bool(args.auto_set_dymshape_mode or args.auto_set_dymdims_mode)
