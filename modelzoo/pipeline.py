"""`modelzoo run`: data -> export -> simplify -> compile -> infer -> postprocess -> report."""
from __future__ import annotations

import datetime
import hashlib
import json
import logging
import platform
import re
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from importlib.metadata import packages_distributions, version
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from tqdm import tqdm

from modelzoo import __version__, autochoice
from modelzoo.agreement import (
    DEFAULT_SAMPLES,
    REFERENCE,
    RunSamples,
    collapse,
    on_parity_inputs,
)
from modelzoo.artifacts import Artifacts
from modelzoo.backend_flags import warn_ignored
from modelzoo.backends.base import BackendSettings
from modelzoo.cache import Cache
from modelzoo.calibration import DEFAULT_IMAGES, choose_calibration
from modelzoo.core import Dataset, ModelEntry
from modelzoo.data import screen_images
from modelzoo.engines.cluster import connect
from modelzoo.errors import Interrupted, UserError, plugin_code
from modelzoo.fileio import atomic_write_json
from modelzoo.host import host_description
from modelzoo.metas import Meta, postprocessor
from modelzoo.registry import Registry
from modelzoo.resume import ResultLog
from modelzoo.source import upstream_checkout
from modelzoo.stream import Padding, Preprocessor, batches, bucket_window, default_workers
from modelzoo.tasks import samples_digest
from modelzoo.text import plural
from modelzoo.weights import random_banner, resolve_weights
from modelzoo.words import Unit, unit_of

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
    # Backend name -> its own options (Backend.options_from); a backend missing here gets None, its
    # defaults. backend_flags: backend name -> its flags given on the command line, to warn about
    # those of a backend that does not run.
    backend_options: dict[str, Any] = field(default_factory=dict)
    backend_flags: dict[str, list[str]] = field(default_factory=dict)
    precision: str = "auto"
    calibration: int = DEFAULT_IMAGES           # images for static int8
    calibration_data: Path | None = None        # calibrate on these, never the scored ones
    agreement_samples: int = DEFAULT_SAMPLES    # first images compared with fp32 torch
    fresh: bool = False
    resume: bool = False
    parity_check: bool = True            # False: go on when the export falls short of its tolerances
    model_source: str = "builtin"
    source_dir: Path | None = None
    engine: str = "local"                # "ray": spread inference over a Ray cluster
    address: str | None = None           # the Ray cluster (None: Ray's own resolution)
    actors_per_node: int | None = None   # sessions per CPU node (ray; default 1)
    ship_data: bool = False              # send sample files to the nodes as bytes (ray)
    keep_fp32: tuple[str, ...] = ()      # ONNX ops to keep at higher precision (with the manifest's)


def run(registry: Registry, opts: RunOptions) -> dict:
    """Evaluate a model on a dataset with one backend; returns the report also written to disk."""
    run_start = time.perf_counter()
    _check_options(opts)
    entry = registry.model(opts.model)
    with connect(opts.engine, opts.address) as cluster:  # closed on every path, errors included
        return _run_connected(registry, entry, cluster, opts, run_start)


def _run_connected(registry: Registry, entry: ModelEntry, cluster, opts: RunOptions, run_start: float) -> dict:
    """run() with the cluster for --engine ray connected (None for the local engine)."""
    manifest, task = entry.manifest, entry.task
    dataset = load_dataset(entry, opts.data, opts.labels, opts.limit)
    dataset, unreadable = _screened(dataset, opts.skip_invalid)
    weights = resolve_weights(manifest, opts.weights)
    cache = Cache(opts.cache_dir or DEFAULT_OUTPUT_ROOT / "cache")
    choice, artifacts, settings = _backend_for_run(registry, cluster, entry, weights, cache, dataset, opts)
    backend, backend_choice, output = choice.backend, choice.report, settings.workdir
    report_path = output / "report.json"
    with _closed_on_error(choice.session):
        results = _result_log(opts, entry, backend, weights, dataset, output)
        todo = _still_to_do(dataset, results, opts.resume, output)
    log.info("model %s, backend %s, batch size %d, %s from %s", manifest.name, backend.name,
             opts.batch_size, plural(len(todo), "sample"), dataset.root)
    marks: dict[str, float] = {}
    first_result = lambda: marks.setdefault("first_result_after_start", time.perf_counter() - run_start)
    cluster_report = None
    if cluster is not None:
        stages, _, measured, cluster_report = _infer_on_cluster(
            cluster, entry, backend, artifacts, settings, todo, opts, results, first_result)
    else:
        stages, measured = _infer_locally(entry, backend, artifacts, cache, settings, todo, opts, results,
                                          first_result, choice.session)
    stages.update(marks)
    # Nothing left to run: keep what the run that did the work measured, and say when that was.
    measured, earlier = (measured, None) if measured is not None else _measured_before(report_path)
    post_start = time.perf_counter()
    records = {s.key: results.records[s.key] for s in dataset.samples if s.key in results.records}
    metrics = evaluate(entry, dataset, records)
    stages["postprocess"] = time.perf_counter() - post_start
    report = {
        **_what_ran(opts, entry, backend, backend_choice),
        "images": len(records),
        "skipped": unreadable + results.skipped,
        **{key: metrics.get(key) for key in task.report_keys},
        "metrics": metrics,
        **measured,
        **_run_context(opts, entry, backend, weights, dataset),
        "stages_s": stages,
        "peak_rss_mb": peak_rss_mb(),
        "resumed_images": len(dataset.samples) - len(todo),
        "figures_from_earlier_run": earlier,
        **({"cluster": cluster_report} if cluster_report else {}),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    return _write(report, records, report_path)


def _write(report: dict, records: dict, report_path: Path) -> dict:
    """predictions.json and report.json beside it; a run that scored nothing fails, after writing
    the report that lists what it skipped."""
    atomic_write_json(report_path.with_name("predictions.json"), records)
    atomic_write_json(report_path, report)
    report["report_path"] = str(report_path)
    if not records:
        raise UserError(f"no sample was scored: all {len(report['skipped'])} were skipped as unreadable "
                        f"(listed in {report_path}); check --data")
    return report


def _backend_for_run(registry: Registry, cluster, entry: ModelEntry, weights, cache: Cache, dataset: Dataset,
                     opts: RunOptions):
    """(the backend choice, the artifacts the backend starts from, its settings, whose workdir is the
    run's output folder: checked writable, named after the backend unless --output names it)."""
    upstream = upstream_checkout(entry, opts.source_dir) if opts.model_source == "upstream" else None
    artifacts_for = lambda backend: Artifacts(entry, weights, cache, variant=backend.export_variant,  # noqa: E731
                                              simplify=opts.simplify, quiet=opts.quiet, upstream=upstream,
                                              parity_check=opts.parity_check)
    settings = _backend_settings(entry, opts, cache.root / "auto-probe")  # workdir: the output, once known
    choice = _choose_backend(registry, cluster, entry, settings, artifacts_for, cache, opts)
    backend = choice.backend
    warn_ignored(opts.backend_flags, [backend.name])
    with _closed_on_error(choice.session):
        output = Path(opts.output or default_output(entry.name, backend.name, opts.batch_size, dataset, opts.limit))
        _check_writable(output)  # the first thing that touches the output folder: every check is done
        if weights.random:
            print(random_banner(entry.manifest, quiet=opts.quiet), file=sys.stderr)
        settings = replace(settings, workdir=output, options=opts.backend_options.get(backend.name))
        backend.check_paths(settings, cache.root)  # before minutes of export and compile
    cache.timings.clear()  # what the probe built or found is in its own figure (backend_choice's probe_s)
    return choice, choice.artifacts or artifacts_for(backend), settings


@contextmanager
def _closed_on_error(session) -> Iterator[None]:
    """auto's probed session, open until the run takes it over, is closed if the run stops first."""
    try:
        yield
    except BaseException:
        if session is not None:
            session.close()
        raise


def _check_options(opts: RunOptions) -> None:
    """The CLI checks these as it parses them; here for callers of run() from Python."""
    for flag, value, least in (("--bs", opts.batch_size, 1), ("--limit", opts.limit, 1),
                               ("--workers", opts.workers, 0), ("--calibration", opts.calibration, 1),
                               ("--agreement-samples", opts.agreement_samples, 0),
                               ("--actors-per-node", opts.actors_per_node, 1)):
        if value is not None and value < least:
            raise UserError(f"{flag} must be at least {least}, got {value}")


def _screened(dataset: Dataset, skip_invalid: bool) -> tuple[Dataset, list[dict[str, str]]]:
    """The dataset without the image files whose header says they are none, and their skip records;
    before any export, so that a bad file costs no minutes of work."""
    kept, skipped = screen_images(dataset.samples, skip_invalid)
    if not kept:
        raise UserError(f"no sample left to evaluate: all {len(skipped)} in {dataset.root} are unreadable, "
                        f"e.g. {skipped[0]['source']}; check --data")
    if skipped:
        log.info("skipping %s whose header is not an image's (--skip-invalid)", plural(len(skipped), "file"))
    return replace(dataset, samples=kept), skipped


def default_output(model: str, backend: str, batch_size: int, dataset: Dataset, limit: int | None = None) -> Path:
    """modelzoo-out/MODEL/BACKEND-bsN-DATA[-firstN]: DATA is `demo`, or the data folder's name and a
    digest of where it is (and of the other files it was read from), so that runs on other data never
    share a folder while a rerun on the same data (and --limit) resumes in it."""
    if dataset.demo:
        data = "demo"
    else:
        where = json.dumps([str(Path(dataset.root).resolve()), sorted(dataset.files.items())])
        name = re.sub(r"[^a-z0-9]+", "-", Path(dataset.root).name.lower()).strip("-")[:24] or "data"
        data = f"{name}-{hashlib.sha256(where.encode()).hexdigest()[:6]}"
    first = f"-first{limit}" if limit is not None else ""
    return DEFAULT_OUTPUT_ROOT / model / f"{backend}-bs{batch_size}-{data}{first}"


def _result_log(opts: RunOptions, entry: ModelEntry, backend, weights, dataset: Dataset, output: Path) -> ResultLog:
    """results.jsonl, keyed by everything a stored result depends on: a rerun resumes only on a match."""
    return ResultLog(output, {
        "model": entry.manifest.name, "backend": backend.name, "batch_size": opts.batch_size,
        "precision": opts.precision, "variant": backend.export_variant, "weights": weights.identity,
        "model_source": opts.model_source, "task": entry.task.kind, "data": samples_digest(dataset.samples),
        **({"keep_fp32": list(opts.keep_fp32)} if opts.keep_fp32 else {})},
        fresh=opts.fresh)


def _backend_settings(entry: ModelEntry, opts: RunOptions, output: Path) -> BackendSettings:
    """What the run asks of any backend, with the calibration images when it quantises to int8; the
    chosen backend's own options join once it is known."""
    calibration = None
    if opts.precision == "int8":
        everything = load_dataset(entry, opts.data, opts.labels) if opts.calibration_data is None else None
        calibration = choose_calibration(entry, opts.calibration, opts.calibration_data, everything)
    return BackendSettings(workdir=output, precision=opts.precision, calibration=calibration,
                           keep_fp32=opts.keep_fp32)


def _what_ran(opts: RunOptions, entry: ModelEntry, backend, backend_choice: dict) -> dict:
    """The report's opening keys: which model, task, backend and settings."""
    return {"model": entry.manifest.name, "task": entry.task.kind, "backend": backend.name,
            "backend_choice": backend_choice, "batch_size": opts.batch_size,
            "precision_requested": opts.precision, "model_source": opts.model_source,
            "backend_options": _options_report(opts.backend_options.get(backend.name))}


def _options_report(options: Any) -> dict | None:
    """The backend's own options as given (None: its defaults, or a backend without options)."""
    return asdict(options) if is_dataclass(options) else None


def _run_context(opts: RunOptions, entry: ModelEntry, backend, weights, dataset: Dataset) -> dict:
    """The report's keys on what the figures rest on: weights, data, expectations, host, versions."""
    expected = entry.manifest.expected["metrics"]
    unit = unit_of(entry.manifest)
    return {"weights": weights.to_report(), "data": {**dataset.to_report(), "limit": opts.limit},
            "unit": unit.plural, "measures": measures(unit), "expected": expected,
            **({"expected_top1": expected["top1"]} if "top1" in expected else {}),
            "plugin": plugin_version(entry.manifest.plugin), "host": host_description(),
            "versions": versions(backend)}


def load_dataset(entry: ModelEntry, data: Path | None, labels: Path | None, limit: int | None = None) -> Dataset:
    """The task's samples from --data (and --labels), or from the plugin's demo data."""
    demo = data is None
    if demo:
        if entry.demo_data is None:
            raise UserError(f"model '{entry.name}' ships no demo data; pass --data DIR")
        data = entry.demo_data
    elif not Path(data).is_dir():  # before the task's loader, whose first complaint would be about its own files
        what = "is not a folder" if Path(data).exists() else "does not exist"
        raise UserError(f"data folder {data} {what}; check --data")
    with plugin_code(entry.manifest.plugin, "load_dataset"):
        dataset = entry.task.load_dataset(Path(data), Path(labels) if labels else None)
    if not dataset.samples:
        raise UserError(f"no samples in {data}; check --data")
    samples = dataset.samples[:limit] if limit is not None else dataset.samples
    return replace(dataset, samples=samples, demo=demo)


def record_outputs(entry: ModelEntry, outputs: Iterable[tuple[list[str], dict]], count: int,
                   results: ResultLog, quiet: bool, metas: dict[str, Meta],
                   first_result: Callable[[], object] = lambda: None) -> int:
    """The driver's side of inference, whatever produced the outputs: each batch's records made
    durable before the next, with the metas its samples left in `metas` (taken out of it);
    returns how many samples it recorded."""
    inferred = 0
    postprocess = postprocessor(entry.task)
    with tqdm(total=count, desc="infer", unit=unit_of(entry.manifest).tick, disable=quiet) as bar:
        try:
            for keys, batch in outputs:
                first_result()
                batch_metas = [metas.pop(key, None) for key in keys]
                with plugin_code(entry.manifest.plugin, "postprocess"):
                    records = postprocess(batch, batch_metas)
                    json.dumps(records)  # records go into results.jsonl: JSON or the plugin's fault
                results.add_batch(list(keys), records, batch_metas)
                bar.update(len(keys))
                inferred += len(keys)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: results of {plural(len(results.records), 'sample')} are safe in "
                              f"{results.path}; rerun the same command to resume") from None
    return inferred


def _choose_backend(registry: Registry, cluster, entry: ModelEntry, settings: BackendSettings,
                    artifacts_for, cache: Cache, opts: RunOptions) -> autochoice.Choice:
    """The backend, and why it was chosen: named, measured fastest on this host (auto), or on the
    Ray cluster's nodes."""
    if cluster is None and opts.backend == "auto":
        return autochoice.choose(registry, entry, opts.batch_size, settings, artifacts_for, cache.root)
    if cluster is None:
        backend, why = registry.choose_backend(opts.backend, opts.precision)
    else:
        backend = cluster.choose_backend(registry, opts.backend, opts.precision)
        why = (f"--backend {opts.backend}" if opts.backend != "auto" else
               f"auto on the Ray cluster: {backend.name}, the highest-priority backend whose accelerator "
               "the cluster has, else the highest-priority one available on this host")
    return autochoice.Choice(backend, {"requested": opts.backend, "reason": why, "figures": None, "probe_s": None})


def _still_to_do(dataset: Dataset, results: ResultLog, resume: bool, output: Path) -> list:
    """The samples without a result in the log, saying how much an earlier run already did."""
    todo = [s for s in dataset.samples if s.key not in results.done]
    if resume and len(todo) == len(dataset.samples):
        raise UserError(f"nothing to resume in {output}: no results of an earlier run; drop --resume")
    if not todo:
        log.info("nothing left to do: %s already done in %s; pass --fresh to run them again",
                 plural(len(dataset.samples), "sample"), results.path)
    elif len(todo) < len(dataset.samples):
        log.info("resuming: %d of %s already done in %s", len(dataset.samples) - len(todo),
                 plural(len(dataset.samples), "sample"), results.path)
    return todo


def _infer_locally(entry, backend, artifacts, cache, settings, todo, opts, results, first_result, opened=None):
    """Preprocessing workers and one backend session on this host (`opened`: auto's probed one):
    (stages, measured figures, or None when nothing was left to run)."""
    manifest = entry.manifest
    workers = default_workers() if opts.workers is None else opts.workers
    input_names = [t.name for t in manifest.inputs]
    with Preprocessor(entry.preprocess, todo, workers, window=2 * opts.batch_size + 2 * workers,
                      plugin=manifest.plugin, threads=entry.preprocess_in_threads) as items:
        started = time.perf_counter()
        if opened is not None and not todo:
            opened.close()
        session = (opened or backend.open(artifacts, opts.batch_size, settings)) if todo else None
        stages = {**cache.timings, "open": time.perf_counter() - started - sum(cache.timings.values())}
        if session is None:
            return stages, None
        samples = None
        if session.precision != "fp32" and opts.agreement_samples > 0:
            samples = RunSamples(artifacts, session, todo, opts.agreement_samples)
        loop_start = time.perf_counter()
        metas: dict[str, Meta] = {}  # filled as samples are batched, emptied as their outputs are recorded
        padding = Padding(manifest, session.sizes_for) if manifest.axes else None
        stream = batches(items, opts.batch_size, input_names, opts.skip_invalid, results.add_skipped,
                         entry.collate, plugin=manifest.plugin, metas=metas, padding=padding, manifest=manifest,
                         bucket_window=bucket_window(opts.batch_size) if manifest.axes else 0)
        outputs = session.run(samples.watch(stream) if samples else stream)
        try:
            inferred = record_outputs(entry, samples.record(outputs) if samples else outputs, len(todo),
                                      results, _quiet(opts), metas, first_result)
            stages["preprocess_and_infer"] = time.perf_counter() - loop_start
            parity_inputs = on_parity_inputs(artifacts, session, opts.batch_size)  # needs it open
        finally:
            session.close()
    agreement_start = time.perf_counter()
    measured = {"precision": session.precision, "precision_note": session.precision_note,
                "throughput_fps": session.throughput_fps(),
                "e2e_fps": inferred / stages["preprocess_and_infer"] if inferred else None,
                "latency_ms": _percentiles(session.latencies_s),
                "parity": artifacts.parity,
                "agreement": {"reference": REFERENCE, "parity_inputs": parity_inputs,
                              "run_samples": samples.figures() if samples else None},
                "calibration": session.calibration, "kept_ops": list(session.kept_ops),
                "padding": padding.figures() if padding else None,
                "preprocessing": {"workers": workers, "in": "main thread" if workers == 0 else
                                  "threads" if entry.preprocess_in_threads else "processes"}}
    stages["agreement"] = time.perf_counter() - agreement_start
    measured["precision_warning"] = collapse(
        measured["agreement"], artifacts.parity,
        f"modelzoo compare {entry.name} --backend {backend.name} --precision {session.precision} --fix")
    if measured["precision_warning"]:
        log.warning("%s", measured["precision_warning"])
    return stages, measured


def _infer_on_cluster(cluster, entry, backend, artifacts, settings, todo, opts, results, first_result):
    """The cluster's counterpart of the local loop in run(): (stages, inferred, measured, cluster report)."""
    from modelzoo.engines.ray_run import ClusterInference

    if not todo:
        return {}, 0, None, None
    started = time.perf_counter()
    work = ClusterInference(cluster, entry, backend, artifacts, settings, opts.batch_size,
                            opts.actors_per_node, opts.ship_data)
    timings = artifacts.cache.timings
    stages = {**timings, "open": time.perf_counter() - started - sum(timings.values())}
    try:
        metas: dict[str, Meta] = {}
        stream = work.stream(todo, opts.skip_invalid, results.add_skipped, metas)
        inferred = record_outputs(entry, stream, len(todo), results, _quiet(opts), metas, first_result)
    finally:
        work.close()
    stages["preprocess_and_infer"] = work.wall
    measured = {"throughput_fps": work.throughput_fps(),
                "e2e_fps": inferred / work.wall if inferred and work.wall else None,
                "precision": work.precision[0] if work.precision else None,
                "precision_note": work.precision[1] if work.precision else None,
                # Not measured on a cluster: the sessions run on other nodes.
                "latency_ms": None, "parity": artifacts.parity, "agreement": None, "calibration": None,
                "padding": work.padding.figures() if work.padding else None,
                "preprocessing": {"workers": 0, "in": "each actor's own thread"},
                "kept_ops": work.kept_ops, "precision_warning": None}
    return stages, inferred, measured, work.report()


# What a run measured; a rerun with nothing left to do keeps these from the report before.
MEASURED = ("precision", "precision_note", "throughput_fps", "e2e_fps", "latency_ms", "parity", "agreement",
            "calibration", "padding", "preprocessing", "kept_ops", "precision_warning")

def measures(unit: Unit) -> dict[str, str]:
    """What each figure of report.json measures, in the words of the model's unit."""
    things = unit.plural
    return {
        "throughput_fps": f"{things} / seconds during which the backend was computing (OpenVINO: at least one "
                          "request in flight), inside this run, with preprocessing sharing the CPUs: not "
                          "inference alone; `modelzoo bench` measures that",
        "e2e_fps": f"{things} / wall time from the backend being ready to the last result stored (reading, "
                   f"preprocess and inference overlapping; the first {things} are preprocessed while the "
                   "backend starts)",
        "latency_ms": "per batch, from the start of its computation to its result (p50, p90, p99)",
        "padding": "per dynamic input, real elements over the elements computed (1.0: no padding): batches "
                   "padded to their longest sample, and by a backend with gears (Ascend) up to a gear; samples "
                   "are sorted by size within windows of batches to keep it high",
        "agreement": "this run's compiled model against torch fp32: on the export's seeded random parity inputs, "
                     f"and (reduced precisions) on the first {things} of this run",
    }


def _percentiles(seconds: list[float]) -> dict[str, float] | None:
    if not seconds:
        return None
    import numpy as np

    return {f"p{q}": round(1000 * float(np.percentile(seconds, q)), 3) for q in (50, 90, 99)}


def evaluate(entry: ModelEntry, dataset: Dataset, records: dict) -> dict:
    """The task's metrics over the recorded samples, in dataset order."""
    with plugin_code(entry.manifest.plugin, "the evaluator"):
        evaluator = entry.task.evaluator()
        scored = [s for s in dataset.samples if s.key in records]
        for i in range(0, len(scored), 1024):
            chunk = scored[i:i + 1024]
            evaluator.update([records[s.key] for s in chunk], [s.target for s in chunk])
        return evaluator.compute()


def plugin_version(module: str) -> dict[str, str | None]:
    """The distribution that installed a plugin module and its version (None for a source tree)."""
    top = module.split(".")[0]
    for dist in packages_distributions().get(top, []):
        return {"module": module, "distribution": dist, "version": version(dist)}
    return {"module": module, "distribution": None, "version": None}


def _measured_before(path: Path) -> tuple[dict, str]:
    """The MEASURED figures of the report at `path` (None each where it is missing or unreadable),
    and when the run that measured them was made."""
    try:
        previous = json.loads(path.read_text())
    except (OSError, ValueError):
        previous = {}
    when = previous.get("figures_from_earlier_run") or previous.get("created") or "unknown (no earlier report)"
    return {key: previous.get(key) for key in MEASURED}, when


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
