"""The Ascend backend's own settings and the flags of `modelzoo run` and `bench` that fill them."""
from __future__ import annotations

import argparse
from dataclasses import dataclass

from modelzoo.argtypes import batch_list
from modelzoo.backends.ascend.tools import parse_devices
from modelzoo.errors import UserError


@dataclass(frozen=True)
class AscendOptions:
    device: str = "0"                             # NPU ids, e.g. "0" or "0,1"
    soc_version: str | None = None                # chip to compile for; None: from npu-smi
    dynamic_batch: tuple[int, ...] | None = None  # compile once for these batch sizes
    io: str = "auto"                              # "files", "stream", or auto: stream when importable
    keep_files: bool = False                      # keep the input .bin files of --io files


def add_options(group: argparse._ArgumentGroup, command: str) -> None:
    """run: every flag; bench: --device and --soc-version; compare (one chip): --soc-version."""
    group.add_argument("--soc-version", help="chip to compile for, e.g. Ascend310P3 (default: from npu-smi)")
    if command in ("run", "bench"):
        group.add_argument("--device", type=_device_ids, default="0", help="NPU id(s), e.g. 0 or 0,1 (default 0)")
    if command != "run":
        return
    group.add_argument("--dynamic-batch", type=batch_list, metavar="1,4,8",
                       help="compile once for these batch sizes (atc --dynamic_batch_size)")
    group.add_argument("--io", choices=("auto", "files", "stream"), default="auto",
                       help="files: .bin files through 'python3 -m ais_bench'; stream: in-process "
                            "InferSession (default when importable)")
    group.add_argument("--keep-bin", action="store_true", help="keep the input .bin files of --io files")


def options_from(args: argparse.Namespace) -> AscendOptions:
    """The options of the flags parsed (those a command lacks keep their defaults)."""
    return AscendOptions(device=getattr(args, "device", "0"), soc_version=args.soc_version,
                         dynamic_batch=getattr(args, "dynamic_batch", None), io=getattr(args, "io", "auto"),
                         keep_files=getattr(args, "keep_bin", False))


def _device_ids(text: str) -> str:
    """An argparse type: NPU ids like 0 or 0,1 (kept as written)."""
    try:
        parse_devices(text)
    except UserError:
        raise argparse.ArgumentTypeError(f"expected distinct device ids (0..255) like 0 or 0,1, "
                                         f"got {text!r}") from None
    return text
