"""The checks `modelzoo ci` runs on each discovered model, each timed and recorded, none raising."""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Callable

from modelzoo.cache import Cache
from modelzoo.core import ModelEntry
from modelzoo.manifest import load_manifest
from modelzoo.registry import Registry
from modelzoo.testing.mock import MockRunner
from modelzoo.weights import resolve_weights
from modelzoo.zoo_ci.records import (
    CHECKS,
    CI_BATCH,
    SMOKE_IMAGES,
    Check,
    CheckFailed,
    ModelResult,
    Skipped,
    one_line,
    safe_name,
)
from modelzoo.zoo_ci.reports import print_check

log = logging.getLogger(__name__)


def check_model(result: ModelResult, registry: Registry | str, output: Path, cache: Cache, quiet: bool,
                precision: str = "auto") -> None:
    """Run the checks that discovery left to run, each timed and recorded, none raising."""
    if not result.passed or result.entry is None:  # failed in discovery: nothing more can run
        failed = next((c for c in CHECKS if result.checks[c].status == "fail"), "contract")
        for check in CHECKS:
            if result.checks[check].status == "skip":
                result.checks[check].message = f"not run: the {failed} check failed"
        for check in CHECKS:
            print_check(result, check, quiet)
        return
    entry = result.entry
    result.weights = resolve_weights(entry.manifest, None)
    steps: dict[str, Callable[[], str]] = {
        "manifest": lambda: _check_manifest(entry),
        "contract": lambda: _check_contract(result),
        "export": lambda: _check_export(result, cache),
        "smoke": lambda: _check_smoke(result, registry, output, cache, precision),
    }
    for check, step in steps.items():
        if result.checks[check].status == "skip":  # the manifest of a tree model is already checked
            _run_check(result, check, step)
        print_check(result, check, quiet)


def _run_check(result: ModelResult, check: str, step: Callable[[], str]) -> None:
    log.info("%s: %s check", result.name, check)
    started = time.perf_counter()
    try:
        status, message = "pass", step()
    except Skipped as exc:
        status, message = "skip", str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever a plugin raises is that check's failure
        log.debug("%s: %s check failed", result.name, check, exc_info=True)
        status, message = "fail", one_line(exc)
    result.checks[check] = Check(status, time.perf_counter() - started, message)


def _check_manifest(entry: ModelEntry) -> str:
    load_manifest(entry.manifest.path)  # the file on disk, as the plugin registered it
    return "valid"


def _check_contract(result: ModelResult) -> str:
    # The plugin alone, as its author's tests would see it: no other plugin can mask a fault.
    MockRunner(result.plugin).check_model(result.entry.name)
    return "hooks keep the contract"


def _check_export(result: ModelResult, cache: Cache) -> str:
    """Export with parity judged by the manifest's per-output tolerances (a shortfall raises);
    parity inputs that left an output constant fail too: they proved nothing."""
    from modelzoo.artifacts import (
        Artifacts,  # imports torch: only when a model gets this far
    )
    from modelzoo.parity import ParityError, degenerate_outputs, describe

    artifacts = Artifacts(result.entry, result.weights, cache, quiet=True)
    try:
        artifacts.onnx(CI_BATCH)
    except ParityError as exc:
        raise CheckFailed(f"{exc.shortfall}; fix the export or the output's tolerances in "
                          f"[[outputs]] of {result.entry.manifest.path}") from None
    finally:
        result.parity = artifacts.parity
    if result.parity["degenerate"]:
        raise CheckFailed(f"ONNX bs{CI_BATCH}: output(s) {', '.join(degenerate_outputs(result.parity))} did not "
                          f"vary across the parity inputs, so parity proved nothing; give integer inputs a "
                          f"range (half-open [low, high)) that draws more than one value")
    return f"ONNX bs{CI_BATCH}: {describe(result.parity)}"


def _check_smoke(result: ModelResult, registry: Registry | str, output: Path, cache: Cache,
                 precision: str = "auto") -> str:
    from modelzoo.pipeline import RunOptions, run

    if result.entry.demo_data is None:
        raise Skipped("the plugin ships no demo data")
    if result.checks["export"].status != "pass":
        raise Skipped("not run: the export check failed")
    if isinstance(registry, str):
        raise CheckFailed(registry)
    report = run(registry, RunOptions(
        model=result.entry.name, backend="auto", batch_size=CI_BATCH, limit=SMOKE_IMAGES,
        output=output / safe_name(result.name) / "smoke", cache_dir=cache.root, quiet=True,
        workers=0, fresh=True, precision=precision))  # workers=0: a few images; picklability is the contract check's
    result.backend = report["backend"]
    result.smoke = {k: report[k] for k in ("images", "skipped", "metrics", "throughput_fps", "precision",
                                           "agreement", "report_path")}
    if report["images"] == 0 or report["skipped"]:
        raise CheckFailed(f"{report['backend']}: {report['images']} images scored, "
                          f"{len(report['skipped'])} skipped")
    return f"{report['backend']} {report['precision']}: {report['images']} demo images inferred"
