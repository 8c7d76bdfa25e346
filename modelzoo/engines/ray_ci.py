"""`modelzoo ci --engine ray`: each model's checks as one Ray task, on a node that has its backend's device.

The driver discovers the plugins as a local `ci` does. A task rediscovers its own model's manifest on
its node (plugin modules travel as names, not as objects), runs the same checks into a scratch
directory and returns the outcomes and the files it wrote; the driver puts those files where a
local `ci` puts them and writes junit.xml, ci.json and the level files itself. Every node must see
the plugin trees at the same paths, as it sees the installed plugins.
"""
from __future__ import annotations

import logging
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from modelzoo.cache import Cache
from modelzoo.engines.cluster import Cluster
from modelzoo.engines.shipping import node_cache
from modelzoo.fileio import atomic_write_bytes
from modelzoo.registry import Registry
from modelzoo.zoo_ci.checks import check_model
from modelzoo.zoo_ci.records import CHECKS, ModelResult, one_line, safe_name
from modelzoo.zoo_ci.reports import print_check

log = logging.getLogger(__name__)


def check_on_cluster(cluster: Cluster, results: dict[str, ModelResult], registry: Registry | str,
                     load_entrypoints: bool, output: Path, cache: Cache, quiet: bool) -> None:
    """Run every model's checks on the cluster; fill in `results` as a local run would."""
    options: dict[str, Any] = {"num_cpus": 1}
    if not isinstance(registry, str):
        backend = cluster.choose_backend(registry, "auto", "fp32")
        if backend.accelerator:
            options = {"num_cpus": 0, "resources": {backend.accelerator: 1}}
        log.info("checks run where backend %s can: %s", backend.name, options)
    task = cluster.ray.remote(check_remotely).options(**options)
    pending: dict[Any, ModelResult] = {}
    for result in results.values():
        if result.passed and result.entry is not None:
            pending[task.remote(result.manifest_path, load_entrypoints, result.entry.name)] = result
        else:
            check_model(result, registry, output, cache, quiet)  # failed in discovery: records why
    while pending:
        [ref], _ = cluster.ray.wait(list(pending), num_returns=1)
        result = pending.pop(ref)
        try:
            _merge(result, cluster.ray.get(ref), output)
        except Exception as exc:  # noqa: BLE001 - a lost node or a broken task fails this model only
            result.fail("smoke", f"its checks did not come back from the cluster: {one_line(getattr(exc, 'cause', None) or exc)}")
        for check in CHECKS:
            print_check(result, check, quiet)


def check_remotely(manifest: Path, load_entrypoints: bool, name: str) -> dict[str, Any]:
    """Runs on a node: discover the one manifest, check its model, return the outcomes and files."""
    from modelzoo.zoo_ci.discovery import discover

    saved_path = list(sys.path)
    scratch = Path(tempfile.mkdtemp(prefix="modelzoo-ci-"))
    try:
        results, registry = discover([manifest], load_entrypoints)
        result = next(r for r in results.values() if r.entry is not None and r.entry.name == name)
        check_model(result, registry, scratch, Cache(node_cache()), quiet=True)
        written = scratch / safe_name(result.name)
        files = {str(f.relative_to(scratch)): f.read_bytes() for f in sorted(written.rglob("*")) if f.is_file()}
        return {"checks": result.checks, "backend": result.backend, "parity": result.parity,
                "weights": result.weights, "smoke": result.smoke, "scratch": str(scratch), "files": files}
    finally:
        sys.path[:] = saved_path
        shutil.rmtree(scratch, ignore_errors=True)


def _merge(result: ModelResult, remote: dict[str, Any], output: Path) -> None:
    for relative, data in remote["files"].items():
        atomic_write_bytes(output / relative, data)
    result.checks = remote["checks"]
    result.backend, result.parity, result.weights = remote["backend"], remote["parity"], remote["weights"]
    result.smoke = remote["smoke"]
    if result.smoke and result.smoke.get("report_path"):
        relative = Path(result.smoke["report_path"]).relative_to(remote["scratch"])
        result.smoke["report_path"] = str(output / relative)
