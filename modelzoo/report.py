"""The console summary of a run."""
from __future__ import annotations


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
        ("top-1", _fmt(report["top1"], ".4f")),
        ("top-5", _fmt(report["top5"], ".4f")),
        ("throughput", f"{_fmt(report['throughput_fps'], '.2f')} img/s (inference while preprocessing "
                       "shares the CPUs; `modelzoo bench` for inference alone)"),
        ("end to end", f"{_fmt(report['e2e_fps'], '.2f')} img/s (JPEG to prediction)"),
    ]
    if parity:
        rows.append(("parity", f"max|diff| {parity['max_abs_diff']:.2e}, cosine {parity['cosine']:.6f}, "
                               f"top-1 agreement {parity['top1_agreement']:.0%} (torch vs fp32 ONNX)"))
    agreement = report.get("agreement") or {}
    for key, where in (("run_samples", "of this run's images"), ("parity_inputs", "random parity inputs")):
        figures = agreement.get(key)
        if figures:
            rows.append(("vs fp32", f"{report['precision']} agrees with {agreement['reference']} on "
                                    f"{figures['top1_agreement']:.0%} of top-1 over {figures['images']} {where} "
                                    f"(cosine {figures['cosine']:.6f}, max|diff| {figures['max_abs_diff']:.2e})"))
    if report.get("calibration"):
        cal = report["calibration"]
        reused = ", cached" if cal.get("reused") else ""
        rows.append(("calibration", f"{cal['images']} images from {cal['source']} ({cal['path']}{reused})"))
    if report["weights"]["random"]:
        rows.append(("weights", "RANDOM (no checkpoint): accuracy is meaningless"))
    else:
        rows.append(("weights", report["weights"]["path"]))
    if report["data"]["demo"]:
        rows.append(("data", "demo set (generated pictures, arbitrary labels)"))
    rows.append(("report", report["report_path"]))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
