"""`--backend auto` by measurement: the backend measured fastest for this model, batch size,
precision and host.

A host with an accelerator (an Ascend NPU) gets that backend without measuring: it is what the
host is for. Otherwise each available backend that runs the precision has a figure: from the
record kept in the artifact cache for this key (an earlier probe, or an earlier `modelzoo bench`),
or from a probe now. A probe opens the backend's session (its export, compile and quantisation
are cached artifacts, shared with the run) and runs the model's example inputs at the run's batch
size: one warm-up batch, then PROBE_SECONDS of batches (at least PROBE_MIN_BATCHES). The winner's
probed session is handed to the run, so the probe adds the other backends' opens and their
PROBE_SECONDS; `backend_choice` in report.json states the figures and what the probe cost.

A figure is kept per backend with the versions of the libraries it ran on: after an upgrade that
backend is measured again. Its key: a digest of the model (plugin code, tensors, export settings),
the host (CPU model, CPUs usable, ISA flags), the batch size and the precision asked for.
"""
from __future__ import annotations

import datetime
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from modelzoo.artifacts import plugin_code_digest
from modelzoo.backends.base import Backend, Batch, Session
from modelzoo.cache import digest
from modelzoo.fileio import atomic_write_json
from modelzoo.host import host_description
from modelzoo.throughput import bench_figures

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts
    from modelzoo.backends.base import BackendSettings
    from modelzoo.registry import ModelEntry, Registry

log = logging.getLogger(__name__)

PROBE_SECONDS = 1.0      # timed batches per probed backend, after its warm-up batch
PROBE_MIN_BATCHES = 2    # a backend slower than this many batches per PROBE_SECONDS still runs them
STORE = "auto-choice"    # the records' folder in the artifact cache


@dataclass
class Choice:
    backend: Backend
    report: dict                        # report.json's `backend_choice`
    artifacts: Artifacts | None = None  # what the winner's probe opened its session from
    session: Session | None = None      # the winner's probed session, open, its figures reset


def measurement_key(entry: ModelEntry, batch_size: int, precision: str) -> dict:
    """What a throughput figure depends on besides the backend and its library versions."""
    m = entry.manifest
    model = {"code": plugin_code_digest(entry), "inputs": [vars(t) for t in m.inputs],
             "outputs": [vars(t) for t in m.outputs], "export": m.export}
    host = host_description()
    return {"model": m.name, "model_digest": digest(model), "batch_size": batch_size, "precision": precision,
            "host": {"cpu": host["cpu"], "cpus": host["cpus"], "isa": host["isa"]}}


def _record_path(cache_root: Path, key: dict) -> Path:
    return Path(cache_root) / STORE / f"{key['model']}-bs{key['batch_size']}-{key['precision']}-{digest(key)}.json"


def read_figures(cache_root: Path, key: dict, backends: list[Backend]) -> dict[str, dict]:
    """The figures recorded for `key` of those `backends` whose library versions are unchanged."""
    try:
        recorded = json.loads(_record_path(cache_root, key).read_text())["figures"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {b.name: recorded[b.name] for b in backends
            if b.name in recorded and recorded[b.name].get("versions") == b.versions()}


def record_figure(cache_root: Path, key: dict, backend: Backend, fps: float, precision: str, source: str) -> None:
    """Keep one backend's measured images/s for `key` (a probe's, or a `modelzoo bench` cell's)."""
    path = _record_path(cache_root, key)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        record = {"key": key, "figures": {}}
    record["figures"][backend.name] = {
        "fps": fps, "precision": precision, "source": source, "versions": backend.versions(),
        "measured": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, record)


def probe(session: Session, artifacts: Artifacts, batch_size: int) -> float:
    """Images/s of an open session on the model's example inputs; its figures are reset after."""
    batch = Batch([f"probe{i}" for i in range(batch_size)], artifacts.example_inputs(batch_size, seed=0))
    for _ in session.run([batch]):  # warm-up: first-run allocations and kernel choices
        pass
    session.reset_figures()
    start = time.perf_counter()

    def timed():
        sent = 0
        while sent < PROBE_MIN_BATCHES or time.perf_counter() - start < PROBE_SECONDS:
            sent += 1
            yield batch

    for _ in session.run(timed()):
        pass
    fps = bench_figures([start, *sorted(session.finished_at)], session.latencies_s, batch_size, 0,
                        session.in_flight)["fps"]
    session.reset_figures()
    return fps


def choose(registry: Registry, entry: ModelEntry, batch_size: int, settings: BackendSettings,
           artifacts_for: Callable[[Backend], Artifacts], cache_root: Path) -> Choice:
    """The backend `auto` runs for this model, batch size and precision (settings.precision) here."""
    candidates, passed = registry.candidates(settings.precision)
    accelerated = [b for b in candidates if b.accelerator is not None]
    if accelerated:
        best = max(accelerated, key=lambda b: b.priority)
        return Choice(best, {"requested": "auto", "reason": f"auto: {best.name} runs on this host's "
                             f"{best.accelerator}, taken without measuring", "figures": None, "probe_s": None,
                             "passed_over": passed})
    key = measurement_key(entry, batch_size, settings.precision)
    figures = read_figures(cache_root, key, candidates)
    started = time.perf_counter()
    kept: tuple[Backend, Artifacts, Session, float] | None = None  # the fastest probed so far, open
    for backend in (b for b in candidates if b.name not in figures):
        artifacts = artifacts_for(backend)
        session = backend.open(artifacts, batch_size, settings)
        try:
            fps = probe(session, artifacts, batch_size)
        except BaseException:
            session.close()
            raise
        log.info("auto: %s runs %.1f samples/s at batch size %d", backend.name, fps, batch_size)
        record_figure(cache_root, key, backend, fps, session.precision, "probe")
        figures.update(read_figures(cache_root, key, [backend]))
        if kept is None or fps > kept[3]:
            if kept is not None:
                kept[2].close()
            kept = (backend, artifacts, session, fps)
        else:
            session.close()
    probe_s = time.perf_counter() - started if kept else 0.0
    winner = max(candidates, key=lambda b: figures[b.name]["fps"])
    report = _report(entry, winner, batch_size, settings.precision, figures, probe_s, passed)
    if kept is None or kept[0] is not winner:  # a recorded figure beat every probed one
        if kept is not None:
            kept[2].close()
        return Choice(winner, report)
    return Choice(winner, report, kept[1], kept[2])


def _report(entry: ModelEntry, winner: Backend, batch_size: int, precision: str, figures: dict[str, dict],
            probe_s: float, passed: list[str]) -> dict:
    """`backend_choice` for a measured choice: every backend's figure, fastest first."""
    return {"requested": "auto",
            "reason": f"auto: {winner.name} measured fastest here for {entry.name} at batch size {batch_size}, "
                      f"precision {precision}",
            "figures": {name: {k: f[k] for k in ("fps", "precision", "source", "measured")}
                        for name, f in sorted(figures.items(), key=lambda item: -item[1]["fps"])},
            "probe_s": round(probe_s, 3), "passed_over": passed}
