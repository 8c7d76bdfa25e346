"""The console summary of a run."""
from __future__ import annotations

import re

from modelzoo.export import describe_agreement


def metric_label(name: str) -> str:
    """How a metric's name reads on the console: top1 -> top-1, labels_without_result -> labels without result."""
    return re.sub(r"^top(\d+)$", r"top-\1", name).replace("_", " ")


def metric_value(value) -> str:
    return format(value, ".4f") if isinstance(value, float) else str(value)


def _fmt(value, pattern: str) -> str:
    return "n/a" if value is None else format(value, pattern)


def print_report(report: dict) -> None:
    parity = report.get("parity") or {}
    rows = [
        ("model", report["model"]),
        ("backend", f"{report['backend']} (batch size {report['batch_size']})"),
        ("images", f"{report['images']}" + (f" ({len(report['skipped'])} skipped)" if report["skipped"] else "")),
        *((metric_label(name), metric_value(value)) for name, value in report["metrics"].items() if name != "images"),
        ("throughput", f"{_fmt(report['throughput_fps'], '.2f')} img/s (pure inference)"),
        ("end to end", f"{_fmt(report['e2e_fps'], '.2f')} img/s (JPEG to prediction)"),
    ]
    if parity:
        rows.append(("parity", f"{describe_agreement(parity)} (torch vs fp32 ONNX)"))
    if report.get("int8_agreement"):
        rows.append(("int8", f"{describe_agreement(report['int8_agreement'])} (int8 vs fp32)"))
    if report["weights"]["random"]:
        rows.append(("weights", "RANDOM (no checkpoint): accuracy is meaningless"))
    else:
        rows.append(("weights", report["weights"]["path"]))
    cluster = report.get("cluster")
    if cluster:
        rows.append(("cluster", f"{len(cluster['nodes'])} nodes, {cluster['actors']} sessions; "
                                f"{cluster['lost_actors']} lost, {cluster['rerun_batches']} batches run again"))
        for node in cluster["nodes"]:
            rows.append((f"  {node['node']}", f"{node['images']} images, {node['actors']} sessions, "
                                              f"{_fmt(node['throughput_fps'], '.2f')} img/s pure, "
                                              f"{_fmt(node['e2e_fps'], '.2f')} img/s end to end"))
    if report["data"]["demo"]:
        rows.append(("data", "demo set (generated pictures, arbitrary labels)"))
    rows.append(("report", report["report_path"]))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
