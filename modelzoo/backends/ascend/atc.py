"""ATC: the simplified ONNX -> an .om for one chip, cached like every other artifact.

The command line comes from the manifest's [atc] table and the run:
    atc --model=<onnx> --framework=5 --output=<prefix> --input_format=NCHW
        --input_shape=image:4,3,224,224 --soc_version=Ascend310P3 --log=error <extra_flags>
and, for a dynamic batch, `--input_shape=image:-1,3,224,224 --dynamic_batch_size=1,4,8`; for
declared dynamic axes with two or more gears, -1 on those axes and `--dynamic_dims` or
`--dynamic_image_size` (see gears.py); with one gear, that gear's sizes.
`--precision fp32|fp16` adds `--precision_mode=force_fp32|force_fp16`; auto adds nothing, so atc
compiles as ModelZoo's commands do (its default force_fp16, or the manifest's own flag).
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from modelzoo.backends.ascend import gears as gearing
from modelzoo.backends.ascend.gears import Gear
from modelzoo.backends.ascend.paths import FILE_MODE
from modelzoo.backends.ascend.tools import run_tool
from modelzoo.cache import digest
from modelzoo.errors import UserError
from modelzoo.manifest import Manifest

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts

log = logging.getLogger(__name__)

ATC_TIMEOUT_S = 3 * 3600.0  # large models take many minutes; a hang must still end
ATC_HINT = "source the CANN toolkit's set_env.sh (e.g. /usr/local/Ascend/ascend-toolkit/set_env.sh)"

# An ATC error code opens a line, possibly after newer CANN's "[PID: n] <timestamp> " (which
# also appears right after the code): E10001, E19999, EZ3003, ...
_CODE_LINE = re.compile(r"^(?:\[PID: \d+\] \S+ )?(E[0-9A-Z][0-9]{4}):\s*(.*)$")
_PID_PREFIX = re.compile(r"\[PID: \d+\] [0-9]{4}-[0-9]{2}-[0-9]{2}-[0-9:.]+ ")


def input_shape_arg(manifest: Manifest, batch: int | None, axis_gears: list[Gear] | None = None) -> str:
    """`name:n,c,h,w;name2:...` in the model's input order, the batch axis (a named axis) as -1
    when batch is None, and the declared dynamic axes as -1 when they have gears (two or more),
    else at their one gear, else at their largest size (see Manifest.largest_sizes)."""
    if axis_gears and len(axis_gears) > 1:
        sizes = {name: -1 for name in manifest.axes}
    else:
        sizes = axis_gears[0] if axis_gears else manifest.largest_sizes()
    parts = []
    for tensor in manifest.inputs:
        shape = tensor.concrete_shape(-1 if batch is None else batch, sizes)
        dims = [str(d) for d in shape]
        parts.append(f"{tensor.name}:{','.join(dims)}")
    return ";".join(parts)


PRECISION_MODES = {"fp32": "force_fp32", "fp16": "force_fp16"}


def precision_mode(manifest: Manifest, precision: str) -> str:
    """The --precision_mode atc compiles with: the run's explicit choice, else the manifest's
    extra flag, else atc's default."""
    if precision in PRECISION_MODES:
        return PRECISION_MODES[precision]
    for flag in manifest.atc.get("extra_flags", []):
        if str(flag).startswith("--precision_mode="):
            return str(flag).split("=", 1)[1]
    return "force_fp16"


def atc_command(manifest: Manifest, onnx_path: Path, output_prefix: Path, soc_version: str,
                batch_size: int, dynamic_batch: tuple[int, ...] | None = None,
                precision: str = "auto", axis_gears: list[Gear] | None = None) -> list[str]:
    conf = manifest.atc
    cmd = ["atc", f"--model={onnx_path}", f"--framework={conf['framework']}",
           f"--output={output_prefix}", f"--input_format={conf['input_format']}"]
    if dynamic_batch:
        cmd += [f"--input_shape={input_shape_arg(manifest, None)}",
                f"--dynamic_batch_size={','.join(str(b) for b in dynamic_batch)}"]
    else:
        cmd.append(f"--input_shape={input_shape_arg(manifest, batch_size, axis_gears)}")
        if axis_gears and len(axis_gears) > 1:
            cmd.append(gearing.atc_flag(manifest, axis_gears))
    cmd += [f"--soc_version={soc_version}", f"--log={conf.get('log', 'error')}"]
    flags = [str(flag) for flag in conf.get("extra_flags", [])]
    if precision in PRECISION_MODES:
        flags = [f for f in flags if not f.startswith("--precision_mode=")]
        flags.append(f"--precision_mode={PRECISION_MODES[precision]}")
    return cmd + flags


def atc_failure(output: str, returncode: int) -> str:
    """ATC's error block as one readable message, its first line `atc failed (E10001): ...`."""
    lines = [line.rstrip() for line in output.splitlines()]
    for i, line in enumerate(lines):
        match = _CODE_LINE.match(line.strip())
        if match is None:
            continue
        code, message = match.groups()
        message = _PID_PREFIX.sub("", message)
        rest = [_PID_PREFIX.sub("", ln) for ln in lines[i + 1:] if ln.strip()]
        return "\n".join([f"atc failed ({code}): {message}", *rest])
    tail = [ln.strip() for ln in lines if ln.strip()][-1:] or ["no output"]
    return (f"atc failed (exit {returncode}, no error code): {tail[0]}; "
            "see the ATC log under ~/ascend/log")


def compile_om(artifacts: Artifacts, batch_size: int, soc_version: str,
               dynamic_batch: tuple[int, ...] | None = None, precision: str = "auto",
               keep: tuple[str, ...] = (), axis_gears: list[Gear] | None = None) -> Path:
    """The cached .om for this model, batch (or batch gears), axis gears and chip; atc runs on a
    miss. `keep` names ONNX ops atc keeps in their own precision (--keep_dtype)."""
    manifest = artifacts.manifest
    onnx_path = artifacts.onnx(None if dynamic_batch else batch_size)
    conf = manifest.atc
    batch_tag = "dyn" + "_".join(str(b) for b in dynamic_batch) if dynamic_batch else f"bs{batch_size}"
    key = artifacts.key(
        artifact="om", onnx=onnx_path.name, soc_version=soc_version,
        batch=None if dynamic_batch else batch_size,
        dynamic_batch=list(dynamic_batch) if dynamic_batch else None,
        atc={k: conf.get(k) for k in ("framework", "input_format", "log", "extra_flags")},
        **({"precision": precision} if precision in PRECISION_MODES else {}),
        **({"keep_dtype": list(keep)} if keep else {}),
        **({"axis_gears": axis_gears} if axis_gears else {}))

    def build(tmp: Path) -> None:
        # ATC writes fusion_result.json and kernel_meta/ into its working directory, and names
        # its output <prefix>.om or, for dynamic shapes, <prefix>_linux_<arch>.om: run it in a
        # scratch folder beside the cache and take whatever `<prefix>*.om` it made.
        scratch = Path(tempfile.mkdtemp(prefix=".atc-", dir=tmp.parent)).resolve()
        try:
            prefix = scratch / "model"
            cmd = atc_command(manifest, onnx_path.resolve(), prefix, soc_version, batch_size,
                              dynamic_batch, precision, axis_gears)
            if keep:  # atc's config file: one op name per line
                (scratch / "keep_dtype.cfg").write_text("".join(f"{op}\n" for op in keep))
                cmd.append(f"--keep_dtype={scratch / 'keep_dtype.cfg'}")
            result = run_tool(cmd, "atc", ATC_TIMEOUT_S, cwd=scratch, hint=ATC_HINT)
            found = sorted(scratch.glob("model*.om"))
            if result.returncode != 0:
                raise UserError(atc_failure(result.stdout + "\n" + result.stderr, result.returncode))
            if not found:
                raise UserError(f"atc reported success but wrote no {prefix}*.om; rerun with "
                                "--debug and check the ATC log under ~/ascend/log")
            os.replace(found[0], tmp)
            tmp.chmod(FILE_MODE)  # ais_bench refuses a group-writable .om (umask 002)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    tag = f"-{precision}" if precision in PRECISION_MODES else ""
    tag += f"-keep{digest({'kept': list(keep)})[:8]}" if keep else ""
    tag += f"-{gearing.gears_tag(axis_gears)}" if axis_gears else ""
    return artifacts.cache.artifact(f"{manifest.name}-{artifacts.variant}-{soc_version}-{batch_tag}{tag}",
                                    ".om", key, build, f"Ascend .om ({soc_version})")
