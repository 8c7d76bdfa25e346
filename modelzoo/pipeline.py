"""`modelzoo run`: data -> export -> simplify -> compile -> infer -> postprocess -> report."""
from __future__ import annotations

import datetime
import logging
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from modelzoo import __version__
from modelzoo.artifacts import Artifacts
from modelzoo.backends.base import BackendSettings
from modelzoo.cache import Cache
from modelzoo.data import resolve_dataset
from modelzoo.errors import UserError
from modelzoo.fileio import atomic_write_json
from modelzoo.metrics import accuracy, top5
from modelzoo.registry import Registry
from modelzoo.stream import batches, default_workers
from modelzoo.weights import RANDOM_BANNER, resolve_weights, weights_dir

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


def run(registry: Registry, opts: RunOptions) -> dict:
    """Evaluate a model on a dataset with one backend; returns the report also written to disk."""
    if opts.batch_size < 1:
        raise UserError(f"--bs must be at least 1, got {opts.batch_size}")
    entry = registry.model(opts.model)
    backend = registry.backend(opts.backend)
    manifest = entry.manifest
    dataset = resolve_dataset(manifest, opts.data, opts.labels, entry.demo_data, opts.limit)
    output = opts.output or DEFAULT_OUTPUT_ROOT / manifest.name / f"{backend.name}-bs{opts.batch_size}"
    report_path = Path(output) / "report.json"
    _check_writable(Path(output))

    weights = resolve_weights(manifest, opts.weights)
    if weights.random:
        print(RANDOM_BANNER.format(name=manifest.name, file=manifest.weights["file"], dir=weights_dir()),
              file=sys.stderr)
    cache = Cache(opts.cache_dir or DEFAULT_OUTPUT_ROOT / "cache")
    artifacts = Artifacts(entry, weights, cache, variant=backend.export_variant, simplify=opts.simplify,
                          quiet=opts.quiet)

    log.info("model %s, backend %s, batch size %d, %d images from %s", manifest.name, backend.name,
             opts.batch_size, len(dataset.images), dataset.root)
    started = time.perf_counter()
    settings = BackendSettings(workdir=Path(output), device=opts.device, soc_version=opts.soc_version,
                               dynamic_batch=opts.dynamic_batch, io=opts.io, keep_files=opts.keep_bin)
    session = backend.open(artifacts, opts.batch_size, settings)
    stages = {"prepare": time.perf_counter() - started}

    skipped: list[dict[str, str]] = []
    predictions: dict[str, list[int]] = {}
    workers = default_workers() if opts.workers is None else opts.workers
    loop_start = time.perf_counter()
    with tqdm(total=len(dataset.images), desc="infer", unit="img", disable=_quiet(opts)) as bar:
        try:
            for names, scores in session.run(batches(entry.preprocess, dataset.images, opts.batch_size,
                                                     workers, opts.skip_invalid, skipped)):
                for name, row in zip(names, scores):
                    predictions[name] = top5(row)
                bar.update(len(names))
        finally:
            session.close()
    stages["preprocess_and_infer"] = time.perf_counter() - loop_start

    post_start = time.perf_counter()
    scores = accuracy(predictions, dataset.labels)
    stages["postprocess"] = time.perf_counter() - post_start
    report = {
        "model": manifest.name,
        "backend": backend.name,
        "batch_size": opts.batch_size,
        "images": scores["images"],
        "skipped": skipped,
        "top1": scores["top1"],
        "top5": scores["top5"],
        "throughput_fps": session.throughput_fps(),
        "e2e_fps": len(predictions) / stages["preprocess_and_infer"] if predictions else None,
        "parity": artifacts.parity,
        "weights": weights.to_report(),
        "data": dataset.to_report(),
        "expected_top1": manifest.expected["top1"],
        "stages_s": stages,
        "versions": versions(backend),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_json(Path(output) / "predictions.json", predictions)
    atomic_write_json(report_path, report)
    report["report_path"] = str(report_path)
    return report


def versions(backend=None) -> dict[str, str]:
    import onnx
    import onnxruntime
    import torch

    found = {"python": platform.python_version(), "torch": torch.__version__, "onnx": onnx.__version__,
             "onnxruntime": onnxruntime.__version__, "modelzoo": __version__}
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
