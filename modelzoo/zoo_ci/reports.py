"""What `modelzoo ci` writes: junit.xml, ci.json, MODEL/modelzoo_level.txt, and the console table."""
from __future__ import annotations

import datetime
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from modelzoo import __version__
from modelzoo.fileio import atomic_write_bytes, atomic_write_json
from modelzoo.manifest import Manifest
from modelzoo.zoo_ci.records import CHECKS, SMOKE_IMAGES, Check, ModelResult, safe_name

NOT_MEASURED = "NOT_MEASURED"


def statuses(result: ModelResult) -> tuple[dict[str, str], dict[str, str]]:
    """ModelZoo's level statuses, and why those not measured were not.

    PrecisionStatus and PerfStatus are claims about the real model on the real data set (top-1 on
    the full validation set against the paper, fps against a reference chip). The CI runs a few
    demo images, with seeded random weights when no checkpoint is found: a top-1 or an fps from
    that measures neither, so both are written as not measured rather than guessed.
    """
    levels = {"FuncStatus": "OK" if result.passed else "NOK",
              "PrecisionStatus": NOT_MEASURED, "PerfStatus": NOT_MEASURED}
    if result.weights is None:
        why = "the model did not get as far as running"
    elif result.weights.random:
        why = "no checkpoint found: seeded random weights"
    else:
        why = f"only {SMOKE_IMAGES} demo images were run, not the validation set"
    reasons = {"PrecisionStatus": why, "PerfStatus": why}
    if result.entry is not None and result.measured is not None:
        levels["PrecisionStatus"], reasons["PrecisionStatus"] = precision_status(
            result.entry.manifest.expected, result.measured)
    return levels, reasons


def precision_status(expected: dict[str, Any], report: dict[str, Any]) -> tuple[str, str]:
    """OK when every expected metric that has a tolerance is reached within it by a full run's
    report (real weights, the whole data set), NOK when one falls short (or, for a metric the
    manifest lists in `lower_is_better`, exceeds the value by more than the tolerance); else not
    measured."""
    if report["weights"]["random"] or report["data"]["demo"] or report["data"].get("limit") is not None:
        return NOT_MEASURED, f"{report.get('report_path', 'the report')} is not a full run with real weights"
    judged = {name: value for name, value in expected["metrics"].items() if name in expected["tolerance"]}
    if not judged:
        return NOT_MEASURED, "the manifest gives no tolerance for any expected metric"
    missed = [_miss(name, value, expected["tolerance"][name], report["metrics"].get(name),
                    name in expected.get("lower_is_better", [])) for name, value in judged.items()]
    missed = [m for m in missed if m]
    return ("NOK", "; ".join(missed)) if missed else ("OK", "within tolerance: " + ", ".join(judged))


def _miss(name: str, value: float, tolerance: float, measured: float | None, lower_is_better: bool) -> str:
    """Why a measured metric misses its expected value, or "" when it does not."""
    if lower_is_better:
        return "" if measured is not None and measured <= value + tolerance else \
            f"{name} {measured} > {value} + {tolerance}"
    return "" if measured is not None and measured >= value - tolerance else \
        f"{name} {measured} < {value} - {tolerance}"


def model_json(result: ModelResult) -> dict[str, Any]:
    levels, not_measured = statuses(result)
    manifest: Manifest | None = result.entry.manifest if result.entry else None
    return {
        "passed": result.passed,
        "manifest": str(result.manifest_path) if result.manifest_path else None,
        "plugin": getattr(result.plugin, "__name__", None) if result.plugin is not None else None,
        "checks": {c: {"status": k.status, "seconds": round(k.seconds, 3), "message": k.message}
                   for c, k in result.checks.items()},
        "backend": result.backend,
        "parity": result.parity,
        "weights": result.weights.to_report() if result.weights else None,
        "smoke": result.smoke,
        "statuses": levels,
        "not_measured_because": {k: v for k, v in not_measured.items() if levels[k] == NOT_MEASURED},
        "precision": not_measured["PrecisionStatus"] if levels["PrecisionStatus"] != NOT_MEASURED else None,
        "declared_statuses": manifest.status if manifest else None,
    }


def junit_xml(results: dict[str, ModelResult], seconds: float) -> bytes:
    """One testsuite per model, one testcase per check (JUnit XML as Jenkins and GitLab read it)."""
    checks = [(r, c, r.checks[c]) for r in results.values() for c in CHECKS]
    root = ET.Element("testsuites", name="modelzoo ci", **_counts([k for _, _, k in checks]),
                      time=f"{seconds:.3f}")
    for result in results.values():
        cases = list(result.checks.items())
        suite = ET.SubElement(root, "testsuite", name=result.name, **_counts([k for _, k in cases]),
                              time=f"{sum(k.seconds for _, k in cases):.3f}")
        properties = ET.SubElement(suite, "properties")
        for key, value in (("manifest", result.manifest_path), ("backend", result.backend),
                           ("weights", _weights_label(result))):
            ET.SubElement(properties, "property", name=key, value=str(value or ""))
        for check, outcome in cases:
            case = ET.SubElement(suite, "testcase", classname=f"modelzoo.{result.name}", name=check,
                                 time=f"{outcome.seconds:.3f}")
            if outcome.status == "fail":
                ET.SubElement(case, "failure", message=outcome.message, type="CheckFailed").text = outcome.message
            elif outcome.status == "skip":
                ET.SubElement(case, "skipped", message=outcome.message)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _counts(outcomes: list[Check]) -> dict[str, str]:
    return {"tests": str(len(outcomes)), "failures": str(sum(k.status == "fail" for k in outcomes)),
            "errors": "0", "skipped": str(sum(k.status == "skip" for k in outcomes))}


def write_results(results: dict[str, ModelResult], output: Path, paths: list[Path], seconds: float) -> None:
    atomic_write_bytes(output / "junit.xml", junit_xml(results, seconds))
    atomic_write_json(output / "ci.json", {
        "passed": all(r.passed for r in results.values()),
        "paths": [str(p) for p in paths],
        "seconds": round(seconds, 3),
        "modelzoo": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "models": {name: model_json(r) for name, r in results.items()},
    })
    for result in results.values():
        levels, _ = statuses(result)
        text = "".join(f"{key}:{value}\n" for key, value in levels.items())
        atomic_write_bytes(output / safe_name(result.name) / "modelzoo_level.txt", text.encode())


def print_summary(results: dict[str, ModelResult], output: Path) -> None:
    header = ("model", *CHECKS, "backend", "weights", "FuncStatus")
    rows = [header] + [(r.name, *(r.checks[c].status for c in CHECKS), r.backend or "-",
                        _weights_label(r) or "-", statuses(r)[0]["FuncStatus"]) for r in results.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    failed = sum(not r.passed for r in results.values())
    print(f"\n{len(results) - failed} of {len(results)} models passed; results in {output}")


def print_check(result: ModelResult, check: str, quiet: bool) -> None:
    if not quiet:
        outcome = result.checks[check]
        print(f"{outcome.status.upper():4}  {result.name}  {check}  {outcome.seconds:.1f}s  {outcome.message}")


def _weights_label(result: ModelResult) -> str | None:
    if result.weights is None:
        return None
    return "random" if result.weights.random else "real"


