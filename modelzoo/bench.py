"""`modelzoo bench`: pure-inference throughput per backend, precision and batch size.

Each backend measures itself (Backend.benchmark): CPU backends run a stream of identical batches
and count samples completed over the wall time of the steady state, with per-batch latency
percentiles; the ascend backend reports what ais_bench measured on the chip. Results go to
bench.json, bench.md and bench.png, labelled with the host (CPU model, ISA flags) and versions.
"""
from __future__ import annotations

import dataclasses
import datetime
import itertools
import logging
import os
from pathlib import Path
from typing import Any

from modelzoo.artifacts import Artifacts
from modelzoo.autochoice import measurement_key, record_figure
from modelzoo.backends.base import BackendSettings
from modelzoo.cache import Cache
from modelzoo.errors import UserError
from modelzoo.export import describe_sizes
from modelzoo.fileio import atomic_write_bytes, atomic_write_json
from modelzoo.host import host_description, isa_line
from modelzoo.manifest import Manifest
from modelzoo.precision import runnable_here
from modelzoo.registry import Registry
from modelzoo.weights import resolve_weights
from modelzoo.words import unit_named, unit_of

log = logging.getLogger(__name__)


def cells(registry: Registry, backends: list[str], precisions: tuple[str, ...] | None
          ) -> tuple[list[tuple[str, str]], list[dict[str, str]]]:
    """(backend, precision) pairs to measure, and those left out with the reason.

    `precisions` None means all that each backend runs here. A single backend and precision that
    cannot run is the registry's one-line error; in a larger table such a cell is only skipped.
    """
    if precisions is not None and len(backends) == 1 and len(precisions) == 1:
        registry.backend(backends[0], precisions[0])
    chosen, skipped = [], []
    for name in backends:
        backend = registry.backend(name)
        wanted = precisions or tuple(p for p in runnable_here(backend) if p != "auto")
        for precision in wanted:
            problem = backend.precision_problem(precision)
            if problem:
                skipped.append({"backend": name, "precision": precision, "reason": problem})
            else:
                chosen.append((name, precision))
    return chosen, skipped


def shape_sizes(manifest: Manifest, shapes: list[str]) -> list[dict[str, int]]:
    """`--shape seq=64,128` (repeatable, one per axis) as the sizes to measure: every combination of
    the values given, each other dynamic axis at its example; no --shape: the examples alone."""
    chosen: dict[str, list[int]] = {}
    for text in shapes:
        name, _, values = text.partition("=")
        axis = manifest.axes.get(name.strip())
        if axis is None:
            raise UserError(f"--shape {text}: {manifest.name} has no dynamic axis {name.strip()!r} "
                            f"(it has: {', '.join(manifest.axes) or 'none'}); use NAME=SIZE[,SIZE...]")
        try:
            sizes = [int(v) for v in values.split(",")]
        except ValueError:
            raise UserError(f"--shape {text}: sizes must be integers, e.g. {axis.name}={axis.example}") from None
        wrong = [v for v in sizes if not axis.min <= v <= axis.max]
        if wrong:
            raise UserError(f"--shape {text}: {wrong[0]} is outside axis {axis.name}'s [min, max] = "
                            f"[{axis.min}, {axis.max}] ({manifest.path})")
        chosen[axis.name] = sizes
    combos = [manifest.example_sizes()]
    for name, sizes in chosen.items():
        combos = [{**c, name: v} for c in combos for v in sizes]
    return combos


def bench(registry: Registry, model: str, backends: list[str], batch_sizes: list[int], warmup: int,
          iters: int, output: Path, cache_dir: Path, weights: Path | None = None,
          settings: BackendSettings | None = None, precisions: tuple[str, ...] | None = ("auto",),
          parity_check: bool = True, shapes: list[str] = (), backend_options: dict[str, Any] | None = None) -> dict:
    """backend_options: backend name -> its own options (see Backend.options_from); default theirs."""
    entry = registry.model(model)
    size_sets = shape_sizes(entry.manifest, list(shapes))
    unit = unit_of(entry.manifest)
    weights_found = resolve_weights(entry.manifest, weights)  # timing does not depend on the values
    cache = Cache(cache_dir)
    settings = settings or BackendSettings(workdir=output)
    chosen, skipped = cells(registry, backends, precisions)

    def own(name: str) -> BackendSettings:
        return dataclasses.replace(settings, options=(backend_options or {}).get(name))

    for name in dict.fromkeys(n for n, _ in chosen):
        registry.backend(name).check_paths(own(name), cache.root)  # before anything is exported or compiled
    rows = []
    for name, precision in chosen:
        backend = registry.backend(name)
        artifacts = Artifacts(entry, weights_found, cache, variant=backend.export_variant, quiet=True,
                              parity_check=parity_check)
        for sizes, bs in itertools.product(size_sets, batch_sizes):
            log.info("bench %s %s bs%d: %d warm-up + %d timed batches", name, precision, bs, warmup, iters)
            figures = backend.benchmark(artifacts, bs, dataclasses.replace(own(name), precision=precision),
                                        warmup, iters, sizes or None)
            shape = {"shape": describe_sizes(sizes)} if sizes else {}
            rows.append({"backend": name, "precision_requested": precision, "batch_size": bs, **shape, **figures,
                         "parity_check": artifacts.parity["check"] if artifacts.parity else None})
            # `run --backend auto` at this batch size and precision takes this figure instead of probing.
            record_figure(cache.root, measurement_key(entry, bs, precision), backend, figures["fps"],
                          figures["precision"], f"modelzoo bench ({output / 'bench.json'})")
            log.info("bench %s %s bs%d: %.2f %s", name, figures["precision"], bs, figures["fps"], unit.rate)
    versions = {}
    for name in dict.fromkeys(n for n, _ in chosen):
        versions.update(registry.backend(name).versions())
    result = {
        "model": model, "unit": unit.plural, "host": host_description(), "versions": versions, "warmup": warmup,
        "iters": iters,
        "rows": rows, "skipped": skipped,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    output.mkdir(parents=True, exist_ok=True)
    atomic_write_json(output / "bench.json", result)
    atomic_write_bytes(output / "bench.md", markdown(result).encode())
    if rows:
        plot(result, output / "bench.png")
    return result


def best_rows(result: dict) -> set[tuple[str, str, int, str]]:
    """(backend, precision, batch size, shape) of the fastest batch size of each backend, precision
    and shape (the sizes of the dynamic axes; "" for a model without them)."""
    best: dict[tuple[str, str, str], dict] = {}
    for row in result["rows"]:
        key = (row["backend"], row["precision"], row.get("shape", ""))
        if key not in best or row["fps"] > best[key]["fps"]:
            best[key] = row
    return {(r["backend"], r["precision"], r["batch_size"], r.get("shape", "")) for r in best.values()}


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def markdown(result: dict) -> str:
    host = result["host"]
    unit = unit_named(result.get("unit"))
    versions = ", ".join(f"{k} {v}" for k, v in sorted(result["versions"].items()))
    lines = [
        f"# {result['model']}: pure inference throughput",
        "",
        f"Host: {host['cpu']}, {host['cpus']} CPUs, {host['system']}; ISA: {isa_line(host)}. Versions: {versions}.",
        f"{result['warmup']} warm-up and {result['iters']} timed batches per cell. {unit.rate}: {unit.plural} "
        "completed over the wall time of the timed batches; latency: per batch, ms; * marks the best batch size of "
        "each backend, precision and shape; ratio is to the fastest cell.",
        "",
    ]
    shaped = any("shape" in row for row in result["rows"])  # a column for the dynamic axes' sizes
    lines += ["| chip/host | backend | precision | " + ("shape | " if shaped else "") +
              f"batch size | {unit.rate} | latency p50 | p90 | p99 | ratio |",
              "|---|---|---|" + ("---|" if shaped else "") + "---|---|---|---|---|---|"]
    best = best_rows(result)
    fastest = max((r["fps"] for r in result["rows"]), default=0.0)
    for row in result["rows"]:
        shape = row.get("shape", "")
        mark = " *" if (row["backend"], row["precision"], row["batch_size"], shape) in best else ""
        where = row.get("chip") or f"{host['cpus']}-CPU host"
        asked = "" if row["precision_requested"] in (row["precision"], "auto") else f" (asked {row['precision_requested']})"
        auto = " (auto)" if row["precision_requested"] == "auto" else ""
        lines.append(f"| {where} | {row['backend']} | {row['precision']}{auto}{asked} | "
                     f"{shape + ' | ' if shaped else ''}{row['batch_size']}{mark} | "
                     f"{row['fps']:.2f} | {_ms(row['latency_ms_p50'])} | {_ms(row['latency_ms_p90'])} | "
                     f"{_ms(row['latency_ms_p99'])} | {row['fps'] / fastest:.2f} |")
    lines += by_shape(result["rows"], unit.rate)
    for cell in result["skipped"]:
        lines.append(f"\nNot measured: {cell['backend']} {cell['precision']}: {cell['reason']}.")
    return "\n".join(lines) + "\n"


def by_shape(rows: list[dict], rate: str) -> list[str]:
    """With several shapes measured, the same throughputs side by side: a column per shape, a row
    per backend, precision and batch size."""
    shapes = list(dict.fromkeys(row["shape"] for row in rows if "shape" in row))
    if len(shapes) < 2:
        return []
    cells = {(r["backend"], r["precision"], r["batch_size"]): {} for r in rows}
    for row in rows:
        cells[(row["backend"], row["precision"], row["batch_size"])][row["shape"]] = f"{row['fps']:.2f}"
    lines = ["", f"{rate} by shape:", "", "| backend | precision | batch size | " + " | ".join(shapes) + " |",
             "|---|---|---|" + "---|" * len(shapes)]
    for (backend, precision, batch_size), found in cells.items():
        lines.append(f"| {backend} | {precision} | {batch_size} | "
                     + " | ".join(found.get(shape, "n/a") for shape in shapes) + " |")
    return lines


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0))
    for key in dict.fromkeys((r["backend"], r["precision"], r.get("shape", "")) for r in result["rows"]):
        rows = [r for r in result["rows"] if (r["backend"], r["precision"], r.get("shape", "")) == key]
        axes.plot([r["batch_size"] for r in rows], [r["fps"] for r in rows], marker="o", label=" ".join(k for k in key if k))
    sizes = sorted({r["batch_size"] for r in result["rows"]})
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes, [str(b) for b in sizes])
    axes.minorticks_off()
    axes.set_xlabel("batch size")
    axes.set_ylabel(f"{unit_named(result.get('unit')).plural}/s")
    axes.set_title(f"{result['model']} on {result['host']['cpu']} ({isa_line(result['host'])})", fontsize=8)
    axes.grid(True, alpha=0.3)
    axes.legend()
    figure.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    figure.savefig(tmp, dpi=100)
    plt.close(figure)
    os.replace(tmp, path)
