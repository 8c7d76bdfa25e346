"""`modelzoo bench`: pure-inference throughput per backend and batch size, the seed's table.

Each backend measures itself (Backend.benchmark): CPU backends time a stream of identical batches,
the ascend backend reports what ais_bench measured on the chip. Results go to bench.json,
bench.md and bench.png, labelled with the host and the library versions they came from.
"""
from __future__ import annotations

import datetime
import logging
import os
import platform
from pathlib import Path

from modelzoo.artifacts import Artifacts
from modelzoo.backends.base import BackendSettings
from modelzoo.cache import Cache
from modelzoo.fileio import atomic_write_bytes, atomic_write_json
from modelzoo.registry import Registry
from modelzoo.weights import resolve_weights

log = logging.getLogger(__name__)


def host_description() -> dict[str, str | int]:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": model, "cpus": cpus or 1, "system": f"{platform.system()} {platform.release()}"}


def bench(registry: Registry, model: str, backends: list[str], batch_sizes: list[int], warmup: int,
          iters: int, output: Path, cache_dir: Path, weights: Path | None = None,
          settings: BackendSettings | None = None) -> dict:
    entry = registry.model(model)
    chosen = [registry.backend(name) for name in backends]
    weights_found = resolve_weights(entry.manifest, weights)  # timing does not depend on the values
    cache = Cache(cache_dir)
    settings = settings or BackendSettings(workdir=output)
    for backend in chosen:
        backend.check_paths(settings, cache.root)  # before anything is exported or compiled
    rows = []
    for backend in chosen:
        artifacts = Artifacts(entry, weights_found, cache, variant=backend.export_variant, quiet=True)
        for bs in batch_sizes:
            log.info("bench %s bs%d: %d warm-up + %d timed iterations", backend.name, bs, warmup, iters)
            figures = backend.benchmark(artifacts, bs, settings, warmup, iters)
            rows.append({"backend": backend.name, "batch_size": bs, **figures})
            log.info("bench %s bs%d: %.2f img/s", backend.name, bs, figures["fps_median"])
    versions = {}
    for backend in chosen:
        versions.update(backend.versions())
    result = {
        "model": model, "precision": settings.precision, "host": host_description(), "versions": versions,
        "warmup": warmup,
        "iters": iters, "rows": rows,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output / "bench.json", result)
    atomic_write_bytes(output / "bench.md", markdown(result).encode())
    plot(result, output / "bench.png")
    return result


def best_rows(result: dict) -> set[tuple[str, int]]:
    """(backend, batch size) of each backend's fastest batch size."""
    best: dict[str, dict] = {}
    for row in result["rows"]:
        if row["backend"] not in best or row["fps_median"] > best[row["backend"]]["fps_median"]:
            best[row["backend"]] = row
    return {(r["backend"], r["batch_size"]) for r in best.values()}


def markdown(result: dict) -> str:
    host = result["host"]
    versions = ", ".join(f"{k} {v}" for k, v in sorted(result["versions"].items()))
    fastest = max(r["fps_median"] for r in result["rows"])
    lines = [
        f"# {result['model']}: pure inference throughput ({result['precision']})",
        "",
        f"Host: {host['cpu']}, {host['cpus']} CPUs, {host['system']}. Versions: {versions}.",
        f"{result['warmup']} warm-up and {result['iters']} timed iterations per cell; median, min and max "
        "images/s; * marks each backend's best batch size; ratio is to the fastest cell.",
        "",
        "| chip/host | backend | batch size | fps (median) | min | max | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    best = best_rows(result)
    chip = {r["backend"]: r.get("chip") for r in result["rows"]}
    for row in result["rows"]:
        mark = " *" if (row["backend"], row["batch_size"]) in best else ""
        where = chip[row["backend"]] or f"{host['cpus']}-CPU host"
        lines.append(f"| {where} | {row['backend']} | {row['batch_size']}{mark} | {row['fps_median']:.2f} | "
                     f"{row['fps_min']:.2f} | {row['fps_max']:.2f} | {row['fps_median'] / fastest:.2f} |")
    return "\n".join(lines) + "\n"


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for backend in dict.fromkeys(r["backend"] for r in result["rows"]):
        rows = [r for r in result["rows"] if r["backend"] == backend]
        axes.plot([r["batch_size"] for r in rows], [r["fps_median"] for r in rows], marker="o", label=backend)
    sizes = sorted({r["batch_size"] for r in result["rows"]})
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(b) for b in sizes])
    axes.minorticks_off()
    axes.set_xlabel("batch size")
    axes.set_ylabel("images/s (median)")
    axes.set_title(f"{result['model']} on {result['host']['cpu']}", fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    os.replace(tmp, path)
