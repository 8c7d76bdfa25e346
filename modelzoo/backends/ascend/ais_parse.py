"""What ais_bench reports: console lines, the `*_summary.json` file, InferSession timings.

Formats (ascend-tools.md):
    [INFO] NPU_compute_time (ms): min = 13.38, max = 13.64, mean = 13.47, median = 13.47, percentile(99%) = 13.55
    [INFO] NPU_compute_time (ms): mean = 13.47                       (multi-thread mode)
    [INFO] throughput 1000*batchsize.mean(64)/NPU_compute_time.mean(13.47): 4749.03
    [INFO] summary throughput:9498.06                                (multi-device)
    [ACL ERROR] EE1001: ... supported socVersion=Ascend910B2, but the model socVersion=Ascend910B
    usage: __main__.py [-h] --model MODEL ...                       (a refused argument, exit 2:
    __main__.py: error: argument --output/-o: output path:... is illegal. Please check.   stderr)
Every parser here returns what it found or raises a one-line UserError; nothing else escapes.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelzoo.errors import UserError

# ASCII digits only (\d would match other scripts' digits, which float() also accepts).
_NUM = r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?|[-+]?(?:nan|inf)"
_STAT = re.compile(rf"(min|max|mean|median|percentile\([0-9.]+%\))\s*=\s*({_NUM})")
_COMPUTE = re.compile(r"NPU_compute_time \(ms\):(.*)")
_THROUGHPUT = re.compile(
    rf"throughput 1000\*batchsize\.mean\(({_NUM})\)/NPU_compute_time\.mean\(({_NUM})\):\s*({_NUM})")
_SUMMARY_THROUGHPUT = re.compile(rf"summary throughput:\s*({_NUM})")
_SOC_MISMATCH = re.compile(r"supported socVersion=([A-Za-z0-9_]+).*?model socVersion=([A-Za-z0-9_]+)")
_ERROR = re.compile(r"^\s*\[(?:ERROR|ACL ERROR)\]\s*(.+)$")
_USAGE_ERROR = re.compile(r"^\S+: error: (.+)$")  # argparse's last line, after its usage text


@dataclass
class ConsoleReport:
    """The figures of one ais_bench run's console; None / empty where a line was missing."""

    compute_ms: list[dict[str, float]] = field(default_factory=list)  # one per device block
    throughput: list[float] = field(default_factory=list)  # one per device block
    batchsize: float | None = None
    summary_throughput: float | None = None  # multi-device total
    soc_mismatch: tuple[str, str] | None = None  # (chip's soc, model's soc)
    errors: list[str] = field(default_factory=list)  # [ERROR] / [ACL ERROR] messages
    refused: str | None = None  # argparse's message when an argument was refused (exit 2)

    @property
    def fps(self) -> float | None:
        """The run's throughput: the multi-device total, else the sum over device blocks."""
        if self.summary_throughput is not None:
            return self.summary_throughput
        return sum(self.throughput) if self.throughput else None


def parse_console(text: str) -> ConsoleReport:
    """Scan ais_bench's stdout/stderr; unknown lines are skipped, so this never raises."""
    report = ConsoleReport()
    usage = False
    for line in text.splitlines():
        usage = usage or line.startswith("usage: ")
        if usage and (m := _USAGE_ERROR.match(line)) is not None:
            report.refused = m.group(1).strip()
        if (m := _COMPUTE.search(line)) is not None:
            stats = {_stat_key(k): float(v) for k, v in _STAT.findall(m.group(1))}
            if "mean" in stats:
                report.compute_ms.append(stats)
        elif (m := _THROUGHPUT.search(line)) is not None:
            report.batchsize = float(m.group(1))
            report.throughput.append(float(m.group(3)))
        elif (m := _SUMMARY_THROUGHPUT.search(line)) is not None:
            report.summary_throughput = float(m.group(1))
        if (m := _SOC_MISMATCH.search(line)) is not None:
            report.soc_mismatch = (m.group(1), m.group(2))
        if (m := _ERROR.match(line)) is not None:
            report.errors.append(m.group(1).strip())
    return report


def _stat_key(name: str) -> str:
    return "p99" if name.startswith("percentile") else name


def parse_summary_json(text: str, source: Path | str = "summary JSON") -> dict[str, Any]:
    """`{"throughput": fps, "compute_ms": {...}, "count": n}` from ais_bench's `*_summary.json`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise _bad_summary(source, "not JSON") from None
    if not isinstance(data, dict):
        raise _bad_summary(source, "not a JSON object")
    throughput = _number(data.get("throughput"))
    if throughput is None:
        raise _bad_summary(source, "no numeric 'throughput'")
    compute = data.get("NPU_compute_time")
    stats: dict[str, float] = {}
    if isinstance(compute, dict):
        for key, value in compute.items():
            number = _number(value)
            if number is not None and isinstance(key, str) and key != "count":
                stats[_stat_key(key)] = number
        count = _number(compute.get("count"))
    else:
        count = None
    return {"throughput": throughput, "compute_ms": stats,
            "count": int(count) if count is not None and math.isfinite(count) else None}


def _number(value: Any) -> float | None:
    # bool is an int subclass; ais_bench never writes one for a figure
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _bad_summary(source: Path | str, why: str) -> UserError:
    return UserError(f"{source} is not an ais_bench summary ({why}); delete it and rerun")


def find_summary(output_root: Path, dirname: str) -> Path | None:
    """Where ais_bench put the summary of `--output output_root --output_dirname dirname`.

    It is `<root>/<dirname>_summary.json` (a sibling of the result folder), or inside the
    folder as `_summary.json` when the dirname ended in '/'; other versions differ, so any
    `*_summary.json` inside the folder is accepted too.
    """
    candidates = [output_root / f"{dirname}_summary.json", output_root / dirname / "_summary.json"]
    candidates += sorted((output_root / dirname).glob("**/*_summary.json"))
    return next((p for p in candidates if p.is_file()), None)


def execution_times_ms(summary: Any) -> list[float]:
    """Per-execution NPU times from InferSession's summary, old API or new.

    New: `summary().exec_time_list` holds (start_ms, end_ms) pairs. Old: `sumary()` is a list
    of durations in ms. Both shapes are accepted wherever they come from.
    """
    items = getattr(summary, "exec_time_list", summary)
    times: list[float] = []
    try:
        for item in items:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                times.append(float(item[1]) - float(item[0]))
            else:
                times.append(float(item))
    except (TypeError, ValueError):
        raise UserError(f"cannot read InferSession's timings ({type(summary).__name__}); "
                        "this ais_bench version is not supported, use --io files") from None
    return times
