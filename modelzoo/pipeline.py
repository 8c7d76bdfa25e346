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
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from importlib.metadata import packages_distributions, version
from pathlib import Path
from typing import Any, Callable, Iterable

from tqdm import tqdm

from modelzoo import __version__
from modelzoo.agreement import DEFAULT_SAMPLES, REFERENCE, RunSamples, collapse, on_parity_inputs
from modelzoo.artifacts import Artifacts
from modelzoo.backend_flags import warn_ignored
from modelzoo.backends.base import BackendSettings
from modelzoo.cache import Cache
from modelzoo.calibration import DEFAULT_IMAGES, choose_calibration
from modelzoo.data import screen_images
from modelzoo.engines.cluster import connect
from modelzoo.errors import Interrupted, UserError, plugin_code
from modelzoo.fileio import atomic_write_json
from modelzoo.host import host_description
from modelzoo.registry import ModelEntry, Registry
from modelzoo.resume import ResultLog
from modelzoo.tasks import Dataset, samples_digest
from modelzoo.source import upstream_checkout
from modelzoo.stream import Preprocessor, batches, default_workers
from modelzoo.text import plural
from modelzoo.weights import RANDOM_BANNER, RANDOM_LINE, resolve_weights, weights_dir

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
    cluster = connect(opts.engine, opts.address)
    backend, backend_choice = _choose_backend(registry, cluster, opts)
    warn_ignored(opts.backend_flags, [backend.name])
    manifest, task = entry.manifest, entry.task
    dataset = load_dataset(entry, opts.data, opts.labels, opts.limit)
    dataset, unreadable = _screened(dataset, opts.skip_invalid)
    output = Path(opts.output or default_output(manifest.name, backend.name, opts.batch_size, dataset, opts.limit))
    report_path = output / "report.json"
    weights = resolve_weights(manifest, opts.weights)
    _check_writable(output)  # the first thing that touches the output folder: every check is done
    if weights.random:
        print(_random_banner(manifest, opts.quiet), file=sys.stderr)
    cache = Cache(opts.cache_dir or DEFAULT_OUTPUT_ROOT / "cache")
    upstream = upstream_checkout(entry, opts.source_dir) if opts.model_source == "upstream" else None
    artifacts = Artifacts(entry, weights, cache, variant=backend.export_variant, simplify=opts.simplify,
                          quiet=opts.quiet, upstream=upstream, parity_check=opts.parity_check)

    settings = _backend_settings(entry, backend.name, opts, output)
    backend.check_paths(settings, cache.root)  # before minutes of export and compile
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
                                          first_result)
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


def _backend_settings(entry: ModelEntry, backend: str, opts: RunOptions, output: Path) -> BackendSettings:
    """What the run asks of its backend, with the calibration images when it quantises to int8."""
    calibration = None
    if opts.precision == "int8":
        everything = load_dataset(entry, opts.data, opts.labels) if opts.calibration_data is None else None
        calibration = choose_calibration(entry, opts.calibration, opts.calibration_data, everything)
    return BackendSettings(workdir=output, precision=opts.precision, calibration=calibration,
                           keep_fp32=opts.keep_fp32, options=opts.backend_options.get(backend))


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
    return {"weights": weights.to_report(), "data": {**dataset.to_report(), "limit": opts.limit},
            "measures": MEASURES, "expected": expected,
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
                   results: ResultLog, quiet: bool, first_result: Callable[[], object] = lambda: None) -> int:
    """The driver's side of inference, whatever produced the outputs: each batch's records made
    durable before the next; returns how many samples it recorded."""
    inferred = 0
    with tqdm(total=count, desc="infer", unit="img", disable=quiet) as bar:
        try:
            for keys, batch in outputs:
                first_result()
                with plugin_code(entry.manifest.plugin, "postprocess"):
                    records = entry.task.postprocess(batch)
                    json.dumps(records)  # records go into results.jsonl: JSON or the plugin's fault
                results.add_batch(list(keys), records)
                bar.update(len(keys))
                inferred += len(keys)
        except KeyboardInterrupt:
            raise Interrupted(f"interrupted: results of {plural(len(results.records), 'sample')} are safe in "
                              f"{results.path}; rerun the same command to resume") from None
    return inferred


def _choose_backend(registry: Registry, cluster, opts: RunOptions):
    """The backend, and why it was chosen: on this host, or on the Ray cluster's nodes."""
    if cluster is None:
        return registry.choose_backend(opts.backend, opts.precision)
    backend = cluster.choose_backend(registry, opts.backend, opts.precision)
    return backend, (f"--backend {opts.backend}" if opts.backend != "auto" else
                     f"auto on the Ray cluster: {backend.name}, the highest-ranked backend whose accelerator "
                     "the cluster has, else what auto picks on this host")


def _random_banner(manifest, quiet: bool) -> str:
    if quiet:
        return f"modelzoo: {RANDOM_LINE.format(name=manifest.name)}"
    where = (f"Get the real weights with 'modelzoo fetch {manifest.name}', or put\n*  "
             f"{manifest.weights['file']} in {weights_dir()}, or pass --weights PATH."
             if manifest.weights else "The plugin publishes no checkpoint: pass --weights PATH.")
    return RANDOM_BANNER.format(name=manifest.name, where=where)


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


def _infer_locally(entry, backend, artifacts, cache, settings, todo, opts, results, first_result):
    """Preprocessing workers and one backend session on this host: (stages, measured figures, or
    None when nothing was left to run)."""
    manifest = entry.manifest
    workers = default_workers() if opts.workers is None else opts.workers
    input_names = [t.name for t in manifest.inputs]
    with Preprocessor(entry.preprocess, todo, workers, window=2 * opts.batch_size + 2 * workers,
                      plugin=manifest.plugin, threads=entry.preprocess_in_threads) as items:
        started = time.perf_counter()
        session = backend.open(artifacts, opts.batch_size, settings) if todo else None
        stages = {**cache.timings, "open": time.perf_counter() - started - sum(cache.timings.values())}
        if session is None:
            return stages, None
        samples = None
        if session.precision != "fp32" and opts.agreement_samples > 0:
            samples = RunSamples(artifacts, session, todo, opts.agreement_samples)
        loop_start = time.perf_counter()
        stream = batches(items, opts.batch_size, input_names, opts.skip_invalid, results.add_skipped,
                         entry.collate, plugin=manifest.plugin)
        outputs = session.run(samples.watch(stream) if samples else stream)
        try:
            inferred = record_outputs(entry, samples.record(outputs) if samples else outputs, len(todo),
                                      results, _quiet(opts), first_result)
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

    try:
        if not todo:
            return {}, 0, None, None
        started = time.perf_counter()
        work = ClusterInference(cluster, entry, backend, artifacts, settings, opts.batch_size,
                                opts.actors_per_node, opts.ship_data)
        timings = artifacts.cache.timings
        stages = {**timings, "open": time.perf_counter() - started - sum(timings.values())}
        try:
            stream = work.stream(todo, opts.skip_invalid, results.add_skipped)
            inferred = record_outputs(entry, stream, len(todo), results, _quiet(opts), first_result)
        finally:
            work.close()
        stages["preprocess_and_infer"] = work.wall
        measured = {"throughput_fps": work.throughput_fps(),
                    "e2e_fps": inferred / work.wall if inferred and work.wall else None,
                    "precision": work.precision[0] if work.precision else None,
                    "precision_note": work.precision[1] if work.precision else None,
                    # Not measured on a cluster: the sessions run on other nodes.
                    "latency_ms": None, "parity": artifacts.parity, "agreement": None, "calibration": None,
                    "preprocessing": {"workers": 0, "in": "each actor's own thread"},
                    "kept_ops": None, "precision_warning": None}
        return stages, inferred, measured, work.report()
    finally:
        cluster.close()


# What a run measured; a rerun with nothing left to do keeps these from the report before.
MEASURED = ("precision", "precision_note", "throughput_fps", "e2e_fps", "latency_ms", "parity", "agreement",
            "calibration", "preprocessing", "kept_ops", "precision_warning")

MEASURES = {
    "throughput_fps": "images / seconds during which the backend was computing (OpenVINO: at least one "
                      "request in flight), inside this run, with preprocessing sharing the CPUs: not "
                      "inference alone; `modelzoo bench` measures that",
    "e2e_fps": "images / wall time from the backend being ready to the last result stored (decode, "
               "preprocess and inference overlapping; the first images are preprocessed while the "
               "backend starts)",
    "latency_ms": "per batch, from the start of its computation to its result (p50, p90, p99)",
    "agreement": "this run's compiled model against torch fp32: on the export's seeded random parity inputs, "
                 "and (reduced precisions) on the first images of this run",
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
