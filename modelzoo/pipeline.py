"""`modelzoo run`: data -> export -> simplify -> compile -> infer -> postprocess -> report."""
from __future__ import annotations

import datetime
import json
import logging
import platform
import sys
import time
from importlib.metadata import version
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from tqdm import tqdm

from modelzoo import __version__
from modelzoo.artifacts import Artifacts
from modelzoo.backends.base import BackendSettings
from modelzoo.cache import Cache
from modelzoo.data import resolve_dataset
from modelzoo.engines.cluster import connect
from modelzoo.errors import Interrupted, UserError
from modelzoo.fileio import atomic_write_json
from modelzoo.labels import image_key
from modelzoo.metrics import accuracy, top5
from modelzoo.registry import Registry
from modelzoo.resume import ResultLog, files_digest
from modelzoo.source import upstream_checkout
from modelzoo.stream import Preprocessor, batches, default_workers
from modelzoo.weights import RANDOM_BANNER, resolve_weights, sha256_of, weights_dir

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

DEFAULT_OUTPUT_ROOT = Path("modelzoo-out")


@dataclass
class RunOptions:
    model: str
    backend: str = "auto"
    batch_size: int = 1
    weights: Path | None = None
    data: Path | None = None
    labels: Path | None = None
    limit: int | None = None
    output: Path | None = None
    cache_dir: Path | None = None
    skip_invalid: bool = False
    workers: int | None = None
    simplify: bool = True
    quiet: bool = False
    device: str = "0"
    soc_version: str | None = None
    dynamic_batch: tuple[int, ...] | None = None
    io: str = "auto"
    keep_bin: bool = False
    precision: str = "fp32"
    fresh: bool = False
    resume: bool = False
    model_source: str = "builtin"
    source_dir: Path | None = None
    engine: str = "local"                # "ray": spread inference over a Ray cluster
    address: str | None = None           # the Ray cluster (None: Ray's own resolution)
    actors_per_node: int | None = None   # sessions per CPU node (ray; default 1)
    ship_data: bool = False              # send images to the nodes as bytes (ray)


def run(registry: Registry, opts: RunOptions) -> dict:
    """Evaluate a model on a dataset with one backend; returns the report also written to disk."""
    run_start = time.perf_counter()
    if opts.batch_size < 1:
        raise UserError(f"--bs must be at least 1, got {opts.batch_size}")
    entry = registry.model(opts.model)
    if opts.actors_per_node is not None and opts.actors_per_node < 1:
        raise UserError(f"--actors-per-node must be at least 1, got {opts.actors_per_node}")
    cluster = connect(opts.engine, opts.address)
    backend = (cluster.choose_backend(registry, opts.backend, opts.precision) if cluster
               else registry.backend(opts.backend, opts.precision))
    manifest = entry.manifest
    dataset = resolve_dataset(manifest, opts.data, opts.labels, entry.demo_data, opts.limit)
    output = opts.output or DEFAULT_OUTPUT_ROOT / manifest.name / f"{backend.name}-bs{opts.batch_size}"
    report_path = Path(output) / "report.json"
    weights = resolve_weights(manifest, opts.weights)
    _check_writable(Path(output))
    if weights.random:
        print(RANDOM_BANNER.format(name=manifest.name, file=manifest.weights["file"], dir=weights_dir()),
              file=sys.stderr)
    cache = Cache(opts.cache_dir or DEFAULT_OUTPUT_ROOT / "cache")
    upstream = upstream_checkout(entry, opts.source_dir) if opts.model_source == "upstream" else None
    artifacts = Artifacts(entry, weights, cache, variant=backend.export_variant, simplify=opts.simplify,
                          quiet=opts.quiet, upstream=upstream)

    settings = BackendSettings(workdir=Path(output), device=opts.device, soc_version=opts.soc_version,
                               dynamic_batch=opts.dynamic_batch, io=opts.io, keep_files=opts.keep_bin,
                               precision=opts.precision)
    results = ResultLog(Path(output), {
        "model": manifest.name, "backend": backend.name, "batch_size": opts.batch_size,
        "precision": opts.precision, "variant": backend.export_variant, "weights": weights.identity,
        "model_source": opts.model_source,
        "images": files_digest(dataset.images), "labels": sha256_of(dataset.label_file)[:16]},
        fresh=opts.fresh)
    todo = [p for p in dataset.images if image_key(p.name) not in results.done]
    if opts.resume and len(todo) == len(dataset.images):
        raise UserError(f"nothing to resume in {output}: no results of an earlier run; drop --resume")
    if not todo:
        log.info("all %d images are already done in %s; pass --fresh to run them again",
                 len(dataset.images), results.path)
    elif len(todo) < len(dataset.images):
        log.info("resuming: %d of %d images already done in %s", len(dataset.images) - len(todo),
                 len(dataset.images), results.path)

    log.info("model %s, backend %s, batch size %d, %d images from %s", manifest.name, backend.name,
             opts.batch_size, len(todo), dataset.root)
    marks: dict[str, float] = {}
    first_result = lambda: marks.setdefault("first_result_after_start", time.perf_counter() - run_start)
    cluster_report = None
    if cluster is not None:
        stages, inferred, measured, cluster_report = _infer_on_cluster(
            cluster, entry, backend, artifacts, settings, todo, opts, results, first_result)
    else:
        workers = default_workers() if opts.workers is None else opts.workers
        with Preprocessor(entry.preprocess, todo, workers, window=2 * opts.batch_size + 2 * workers) as images:
            started = time.perf_counter()
            session = backend.open(artifacts, opts.batch_size, settings) if todo else None
            stages = {**cache.timings, "open": time.perf_counter() - started - sum(cache.timings.values())}
            loop_start = time.perf_counter()
            inferred = 0
            if session is not None:
                stream = batches(images, opts.batch_size, opts.skip_invalid, results.add_skipped)
                inferred = _infer(session.run(stream), session.close, len(todo), opts, results, first_result)
            stages["preprocess_and_infer"] = time.perf_counter() - loop_start
        measured = None if session is None else {
            "throughput_fps": session.throughput_fps(),
            "e2e_fps": inferred / stages["preprocess_and_infer"] if inferred else None,
            "parity": artifacts.parity, "int8_agreement": session.int8_agreement}
    stages.update(marks)
    if measured is None:  # nothing left to run: keep what the run that did the work measured
        previous = _previous_report(report_path)
        measured = {key: previous.get(key) for key in ("throughput_fps", "e2e_fps", "parity", "int8_agreement")}
    post_start = time.perf_counter()
    order = [image_key(p.name) for p in dataset.images]
    predictions = {k: results.predictions[k] for k in order if k in results.predictions}
    scores = accuracy(predictions, dataset.labels)
    stages["postprocess"] = time.perf_counter() - post_start
    report = {
        "model": manifest.name,
        "backend": backend.name,
        "batch_size": opts.batch_size,
        "precision": opts.precision,
        "images": scores["images"],
        "skipped": results.skipped,
        "top1": scores["top1"],
        "top5": scores["top5"],
        **measured,
        "weights": weights.to_report(),
        "data": dataset.to_report(),
        "expected_top1": manifest.expected["top1"],
        "stages_s": stages,
        "peak_rss_mb": peak_rss_mb(),
        "resumed_images": len(dataset.images) - len(todo),
        "versions": versions(backend),
        **({"cluster": cluster_report} if cluster_report else {}),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(Path(output) / "predictions.json", predictions)
    atomic_write_json(report_path, report)
    report["report_path"] = str(report_path)
    return report


def _infer(outputs: Iterable[tuple[list[str], np.ndarray]], close: Callable[[], None], count: int,
           opts: RunOptions, results: ResultLog, first_result: Callable[[], object]) -> int:
    """Record each batch's outputs, each batch made durable before the next; `close` stops what
    produces them (a session, or a cluster's actors) however this ends. Returns how many images
    it inferred."""
    inferred = 0
    with tqdm(total=count, desc="infer", unit="img", disable=_quiet(opts)) as bar:
        try:
            for names, scores in outputs:
                first_result()
                best = [top5(row) for row in scores]
                results.add_batch(list(names), best,
                                  [[float(row[c]) for c in classes] for row, classes in zip(scores, best)])
                bar.update(len(names))
                inferred += len(names)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: results of {len(results.predictions)} images are safe in "
                              f"{results.path}; rerun the same command to resume") from None
        finally:
            close()
    return inferred


def _infer_on_cluster(cluster, entry, backend, artifacts, settings, todo, opts, results, first_result):
    """The cluster's counterpart of the local loop above: (stages, inferred, measured, cluster report)."""
    from modelzoo.engines.ray_run import ClusterInference

    try:
        if not todo:
            return {}, 0, None, None
        started = time.perf_counter()
        work = ClusterInference(cluster, entry, backend, artifacts, settings, opts.batch_size,
                                opts.actors_per_node, opts.ship_data)
        timings = artifacts.cache.timings
        stages = {**timings, "open": time.perf_counter() - started - sum(timings.values())}
        stream = work.stream(todo, opts.skip_invalid, results.add_skipped)
        inferred = _infer(stream, work.close, len(todo), opts, results, first_result)
        stages["preprocess_and_infer"] = work.wall
        measured = {"throughput_fps": work.throughput_fps(),
                    "e2e_fps": inferred / work.wall if inferred and work.wall else None,
                    "parity": artifacts.parity, "int8_agreement": work.int8_agreement}
        return stages, inferred, measured, work.report()
    finally:
        cluster.close()


def _previous_report(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB. Workers are left out: the figure the OS keeps
    for children counts the parent's pages each one inherits for an instant before exec."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(kib / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


def versions(backend=None) -> dict[str, str]:
    found = {"python": platform.python_version(), "modelzoo": __version__}
    found.update({name: version(name) for name in ("torch", "onnx", "onnxruntime")})
    if backend is not None:
        found.update(backend.versions())
    return found


def _check_writable(output: Path) -> None:
    try:
        output.mkdir(parents=True, exist_ok=True)
        probe = output / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"cannot write to output directory {output}: {exc.strerror}; "
                        "pass --output with a writable directory") from None


def _quiet(opts: RunOptions) -> bool:
    return opts.quiet or not sys.stderr.isatty()
