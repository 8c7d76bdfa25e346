"""`--backend auto` by measurement: the backend measured fastest for this model, batch size,
precision and host.

A host with an accelerator (an Ascend NPU) gets that backend without measuring: it is what the
host is for. Otherwise each available backend that runs the precision has a figure: from the
record kept in the artifact cache for this key (an earlier probe, or an earlier `modelzoo bench`),
or from a probe now. A probe opens the backends' sessions (their exports, compiles and
quantisations are cached artifacts, shared with the run) and runs the model's example inputs at the
run's batch size: one warm-up batch each, then PROBE_SECONDS of batches each, in PROBE_ROUNDS turns
(the median round counts). The winner's probed session is handed to the run, so the probe adds the
other backends' opens and PROBE_SECONDS per backend; `backend_choice` in report.json states the
figures and what the probe cost.

A figure is kept per backend with the versions of the libraries it ran on: after an upgrade that
backend is measured again. Its key: a digest of the model (plugin code, tensors, export settings),
the host (CPU model, CPUs usable, ISA flags), the batch size and the precision asked for.
"""
from __future__ import annotations

import datetime
import json
import logging
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from modelzoo.artifacts import plugin_code_digest
from modelzoo.backends.base import Backend, Session
from modelzoo.cache import digest
from modelzoo.core import Batch
from modelzoo.fileio import atomic_write_json
from modelzoo.host import host_description
from modelzoo.throughput import bench_figures
from modelzoo.words import unit_of

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts
    from modelzoo.backends.base import BackendSettings
    from modelzoo.core import ModelEntry
    from modelzoo.registry import Registry

log = logging.getLogger(__name__)

PROBE_SECONDS = 1.5      # timed batches per probed backend, after its warm-up batch
PROBE_ROUNDS = 3         # the backends take turns, each round a third of PROBE_SECONDS
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
    model = {"code": plugin_code_digest(entry), "inputs": [asdict(t) for t in m.inputs],
             "outputs": [asdict(t) for t in m.outputs], "export": m.export}
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


def probe(sessions: dict[str, tuple[Session, Artifacts]], batch_size: int) -> dict[str, float]:
    """Images/s of each open session on the model's example inputs; their figures are reset after.

    The sessions take turns, PROBE_ROUNDS rounds of PROBE_SECONDS / PROBE_ROUNDS each, and each
    keeps its median round: a neighbour that loads the host for a moment slows them alike.
    """
    batches = {name: Batch([f"probe{i}" for i in range(batch_size)], artifacts.example_inputs(batch_size, seed=0))
               for name, (_, artifacts) in sessions.items()}
    for name, (session, _) in sessions.items():
        for _ in session.run([batches[name]]):  # warm-up: first-run allocations and kernel choices
            pass
    rounds: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(PROBE_ROUNDS):
        for name, (session, _) in sessions.items():
            rounds[name].append(_timed(session, batches[name], PROBE_SECONDS / PROBE_ROUNDS))
    return {name: statistics.median(figures) for name, figures in rounds.items()}


def _timed(session: Session, batch: Batch, seconds: float) -> float:
    """Images/s of `session` running `batch` for `seconds` (at least one batch)."""
    session.reset_figures()
    start = time.perf_counter()

    def timed():
        yield batch
        while time.perf_counter() - start < seconds:
            yield batch

    for _ in session.run(timed()):
        pass
    fps = bench_figures([start, *sorted(session.finished_at)], session.latencies_s, len(batch.keys), 0,
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
    opened: dict[str, tuple[Session, Artifacts]] = {}
    try:
        for backend in (b for b in candidates if b.name not in figures):
            artifacts = artifacts_for(backend)
            opened[backend.name] = (backend.open(artifacts, batch_size, settings), artifacts)
        measured = probe(opened, batch_size) if opened else {}
    except BaseException:
        for session, _ in opened.values():
            session.close()
        raise
    for backend in (b for b in candidates if b.name in measured):
        log.info("auto: %s runs %.1f %s at batch size %d", backend.name, measured[backend.name],
                 unit_of(entry.manifest).rate, batch_size)
        record_figure(cache_root, key, backend, measured[backend.name], opened[backend.name][0].precision, "probe")
        figures.update(read_figures(cache_root, key, [backend]))
    probe_s = time.perf_counter() - started if opened else 0.0
    winner = max(candidates, key=lambda b: figures[b.name]["fps"])
    for name, (session, _) in opened.items():
        if name != winner.name:
            session.close()
    report = _report(entry, winner, batch_size, settings.precision, figures, probe_s, passed)
    if winner.name in opened:
        return Choice(winner, report, opened[winner.name][1], opened[winner.name][0])
    return Choice(winner, report)


def _report(entry: ModelEntry, winner: Backend, batch_size: int, precision: str, figures: dict[str, dict],
            probe_s: float, passed: list[str]) -> dict:
    """`backend_choice` for a measured choice: every backend's figure, fastest first."""
    return {"requested": "auto",
            "reason": f"auto: {winner.name} measured fastest here for {entry.name} at batch size {batch_size}, "
                      f"precision {precision}",
            "figures": {name: {k: f[k] for k in ("fps", "precision", "source", "measured")}
                        for name, f in sorted(figures.items(), key=lambda item: -item[1]["fps"])},
            "probe_s": round(probe_s, 3), "passed_over": passed}
