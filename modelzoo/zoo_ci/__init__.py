"""`modelzoo ci`: find every model plugin under some directories (plus the installed ones) and check it.

Per model, four checks: the manifest validates, the hooks keep the contract (the mock runner), the
model exports to ONNX with parity against torch, and a few demo images run through the best backend
here. Results: junit.xml (for CI systems), ci.json, and a ModelZoo-style modelzoo_level.txt per
model. A broken plugin fails its own model with a one-line reason; the other models still run.
"""
from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path

from modelzoo.backends.base import BackendSettings
from modelzoo.cache import Cache
from modelzoo.engines.cluster import connect
from modelzoo.errors import UserError
from modelzoo.registry import Registry
from modelzoo.zoo_ci.checks import check_model
from modelzoo.zoo_ci.discovery import MANIFEST_NAME, discover, find_manifests
from modelzoo.zoo_ci.reports import print_summary, write_results

__all__ = ["find_manifests", "run_ci"]


def read_report(path: Path) -> dict:
    try:
        report = json.loads(Path(path).read_text())
        report["model"], report["metrics"], report["weights"]["random"], report["data"]["demo"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"--measured {path} is not a report.json of 'modelzoo run' ({exc}); "
                        "pass the report of a full run") from None
    return {**report, "report_path": str(path)}

log = logging.getLogger(__name__)


def run_ci(paths: list[Path], output: Path, load_entrypoints: bool = True, quiet: bool = False,
           cache_dir: Path | None = None, measured: list[Path] = (), engine: str = "local",
           address: str | None = None, precision: str = "auto") -> int:
    """Check every model found; write junit.xml, ci.json and MODEL/modelzoo_level.txt into `output`.

    Returns the exit code: 0 when every model passed, 1 otherwise. An empty `paths` checks the
    installed (entry point) plugins only. The artifact cache defaults to OUTPUT/cache. `measured`:
    report.json files of full runs, which decide each model's PrecisionStatus against its manifest.
    With `engine="ray"` each model's checks run as a task on the Ray cluster at `address`.
    """
    started = time.perf_counter()
    output = Path(output)
    cache = Cache(cache_dir or output / "cache")
    saved_path = list(sys.path)
    with connect(engine, address) as cluster:  # closed on every path, errors included
        try:
            results, registry = discover(list(paths), load_entrypoints)
            if not results:
                raise UserError(f"no model plugins found under "
                                f"{', '.join(map(str, paths)) or 'the installed plugins'}; "
                                f"pass directories that hold {MANIFEST_NAME} files")
            log.info("found %d models: %s", len(results), ", ".join(results))
            _check_paths(registry, output, cache)
            for report in map(read_report, measured):
                if report["model"] in results:
                    results[report["model"]].measured = report
            if cluster is not None:
                from modelzoo.engines.ray_ci import check_on_cluster

                check_on_cluster(cluster, results, registry, load_entrypoints, output, cache, quiet)
            else:
                for result in results.values():
                    check_model(result, registry, output, cache, quiet, precision)
        finally:
            sys.path[:] = saved_path  # tree plugins were importable for the run only
    write_results(results, output, list(paths), time.perf_counter() - started)
    print_summary(results, output)
    return 0 if all(r.passed for r in results.values()) else 1


def _check_paths(registry: Registry | str, output: Path, cache: Cache) -> None:
    """The smoke runs' backend refuses a bad output or cache path now, before any model exports."""
    if isinstance(registry, str):  # no registry: the smoke checks report why
        return
    try:
        backend = registry.backend("auto")
    except UserError:
        return  # no backend here: the smoke checks report it, model by model
    backend.check_paths(BackendSettings(workdir=output), cache.root)
