"""Numeric precisions a run may ask for, and how a request becomes what a backend runs.

`auto` is the backend's native fast floating-point precision on this host (OpenVINO: bf16 where
the CPU has bf16 dot products, fp32 otherwise; Ascend: atc's default fp16). `fp32` is exact.
`int8` is quantised: static, calibrated on images, where the backend can (OpenVINO with NNCF), or
dynamic (ONNX Runtime). Every reduced precision is compared with fp32 torch on each run.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from modelzoo.errors import UserError

if TYPE_CHECKING:
    from modelzoo.backends.base import Backend
    from modelzoo.manifest import Manifest

PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
REDUCED = ("bf16", "fp16", "int8")


def kept_ops(manifest: Manifest, section: str, given: tuple[str, ...]) -> tuple[str, ...]:
    """The ONNX ops a precision fix keeps at higher precision: the manifest's (`[atc] keep_dtype`
    for atc, `[int8] ignored` for int8 quantisation) and --keep-fp32's, in that order."""
    listed = manifest.atc.get("keep_dtype", []) if section == "atc" else manifest.int8.get("ignored", [])
    return tuple(dict.fromkeys([*listed, *given]))


def parse_precisions(text: str) -> tuple[str, ...]:
    """`fp32,bf16,int8` or `all` (for bench); each one of PRECISIONS."""
    if text == "all":
        return PRECISIONS[1:]
    chosen = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [p for p in chosen if p not in PRECISIONS]
    if unknown or not chosen:
        raise UserError(f"unknown precision {', '.join(unknown) or repr(text)}; "
                        f"use {', '.join(PRECISIONS)} (comma-separated), or all")
    return chosen


def runnable_here(backend: Backend) -> tuple[str, ...]:
    """The precisions `backend` can run on this host, auto first."""
    return tuple(p for p in PRECISIONS if backend.precision_problem(p) is None)


def unsupported(backend: Backend, precision: str, backends: list[Backend]) -> UserError:
    """The one-line error for a precision a backend cannot run, naming those that can."""
    capable = [b.name for b in backends if b is not backend and b.unavailable_reason() is None
               and b.precision_problem(precision) is None]
    where = f"use --backend {' or '.join(capable)}" if capable else f"no other backend here runs {precision}"
    return UserError(f"backend '{backend.name}' cannot run {precision} here: "
                     f"{backend.precision_problem(precision)}; {where}, or pick --precision "
                     f"{' or '.join(p for p in runnable_here(backend))}")
