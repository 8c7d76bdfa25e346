"""The host CPU: its model and the instruction-set flags that decide which precision runs fast.

Read from /proc/cpuinfo; OpenVINO's own view (OPTIMIZATION_CAPABILITIES) is added where OpenVINO
is installed. Used by the precision choice, by `modelzoo bench` and by every run's report.
"""
from __future__ import annotations

import functools
import os
import platform
from pathlib import Path

# The flags that matter for inference speed, in /proc/cpuinfo's spelling.
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def native_float_precision(flags: set[str] | frozenset[str]) -> str:
    """The fastest floating-point precision a CPU with these flags computes natively.

    bf16 needs bf16 dot products (AVX512_BF16, or AMX tiles); without them a bf16 request runs
    fp32 kernels at best, so fp32 is the honest choice (an AVX2-only host).
    """
    return "bf16" if {"avx512_bf16", "amx_bf16"} & set(flags) else "fp32"


def has_int8_dot_products(flags: set[str] | frozenset[str]) -> bool:
    """VNNI (AVX512 or AVX) or AMX int8: where int8 kernels beat fp32 by more than memory traffic."""
    return bool({"avx512_vnni", "avx_vnni", "amx_int8"} & set(flags))


def parse_cpuinfo(text: str) -> tuple[str, frozenset[str]]:
    """(model name, flags) of the first processor listed."""
    model, flags = "", frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
            model = value.strip()
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return model, flags


@functools.lru_cache(maxsize=1)
def cpu() -> tuple[str, frozenset[str]]:
    try:
        model, flags = parse_cpuinfo(Path("/proc/cpuinfo").read_text())
    except OSError:  # not Linux: no flags known, which means fp32
        model, flags = "", frozenset()
    return model or platform.processor() or platform.machine(), flags


@functools.lru_cache(maxsize=1)
def openvino_capabilities() -> tuple[str, ...] | None:
    """What OpenVINO's CPU plugin says it can do here (BF16, INT8, FP16, ...); None without OpenVINO."""
    try:
        import openvino as ov
    except ImportError:
        return None
    return tuple(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))


def host_description() -> dict:
    """The host for reports: CPU model, CPU count, OS, and the speed-deciding ISA flags."""
    model, flags = cpu()
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cpus": cpus or 1, "system": f"{platform.system()} {platform.release()}",
            "isa": {flag: flag in flags for flag in ISA_FLAGS},
            "openvino_capabilities": list(openvino_capabilities() or [])}


def isa_line(host: dict) -> str:
    """`avx2 avx512f avx512_vnni avx512_bf16 (no amx_bf16, amx_int8)`: one line for tables."""
    have = [f for f, on in host["isa"].items() if on]
    lack = [f for f, on in host["isa"].items() if not on]
    return " ".join(have) + (f" (no {', '.join(lack)})" if lack else "")
