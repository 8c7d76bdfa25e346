"""The console summary of a run."""
from __future__ import annotations

import re

from modelzoo.parity import describe, describe_check
from modelzoo.text import plural


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
        ("precision", f"{report.get('precision') or 'n/a'} (asked: {report['precision_requested']}; "
                      f"{report.get('precision_note') or 'nothing run'})"),
        ("images", f"{report['images']}" + (f" ({len(report['skipped'])} skipped)" if report["skipped"] else "")),
        *((metric_label(name), metric_value(value)) for name, value in report["metrics"].items() if name != "images"),
        ("throughput", f"{_fmt(report['throughput_fps'], '.2f')} img/s (inference while preprocessing "
                       "shares the CPUs; `modelzoo bench` for inference alone)"),
        ("end to end", f"{_fmt(report['e2e_fps'], '.2f')} img/s (JPEG to prediction)"),
    ]
    if parity:
        rows.append(("parity", f"{describe(parity)} (torch vs fp32 ONNX){describe_check(parity)}"))
    agreement = report.get("agreement") or {}
    for key, where in (("run_samples", "of this run's samples"), ("parity_inputs", "random parity inputs")):
        figures = agreement.get(key)
        if figures:
            rows.append(("vs fp32", f"{report['precision']} against {agreement['reference']} on {figures['images']} "
                                    f"{where}: {describe(figures)}"))
    if report.get("kept_ops"):
        rows.append(("precision fix", f"kept at higher precision: {', '.join(report['kept_ops'])}"))
    if report.get("precision_warning"):
        rows.append(("WARNING", report["precision_warning"]))
    if report.get("calibration"):
        cal = report["calibration"]
        reused = ", cached" if cal.get("reused") else ""
        rows.append(("calibration", f"{plural(cal['images'], 'image')} from {cal['source']} ({cal['path']}{reused})"))
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
    if report.get("figures_from_earlier_run"):
        print(f"nothing left to do: every sample was done before; the figures below (throughput, latency, "
              f"agreement) are from the run of {report['figures_from_earlier_run']}")
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
