"""The backend interface: how the runner compiles a model for a target and runs batches on it."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts


Arrays = dict[str, np.ndarray]  # tensor name -> array, batch on axis 0


@dataclass
class Batch:
    keys: list[str]   # sample keys, in the order of the rows of every input
    inputs: Arrays    # input name -> [len(keys), ...] in the manifest's dtype


def pad_batch(inputs: Arrays, rows: int, size: int) -> Arrays:
    """Every input padded with zero rows from `rows` to `size` on the batch axis."""
    if rows >= size:
        return inputs
    return {name: np.concatenate([a, np.zeros((size - rows, *a.shape[1:]), dtype=a.dtype)])
            for name, a in inputs.items()}


@dataclass(frozen=True)
class BackendSettings:
    """What a run asks of its backend; each backend uses what applies to it and ignores the rest."""

    workdir: Path                           # the run's output dir: intermediate files go below it
    device: str = "0"                       # accelerator ids, e.g. "0" or "0,1"
    soc_version: str | None = None          # chip to compile for; None: detect it
    dynamic_batch: tuple[int, ...] | None = None  # compile once for these batch sizes
    io: str = "auto"                        # "files" or "stream", for backends that can do both
    keep_files: bool = False                # keep intermediate input files (--keep-bin)
    precision: str = "fp32"                 # "fp32", or "int8" for backends that can quantise


class Session:
    """A model ready to run at one batch size.

    Subclasses implement ``infer``; the default ``run`` times it, pads a short last batch when the
    compiled model has a static batch, and drops the padding rows again.
    """

    static_batch: int | None = None
    # Figures of a quantised model against its fp32 form, when the session runs one.
    int8_agreement: dict[str, float] | None = None

    def __init__(self) -> None:
        self.compute_seconds = 0.0
        self.images = 0

    def infer(self, inputs: Arrays) -> Arrays:
        """One batch: input name -> array in, output name -> array out."""
        raise NotImplementedError

    def run(self, batches: Iterable[Batch]) -> Iterator[tuple[list[str], Arrays]]:
        for batch in batches:
            n = len(batch.keys)
            inputs = pad_batch(batch.inputs, n, self.static_batch) if self.static_batch else batch.inputs
            start = time.perf_counter()
            outputs = self.infer(inputs)
            self.compute_seconds += time.perf_counter() - start
            self.images += n
            yield batch.keys, {name: out[:n] for name, out in outputs.items()}

    def throughput_fps(self) -> float | None:
        """Pure inference images per second, as measured by the backend."""
        return self.images / self.compute_seconds if self.compute_seconds else None

    def close(self) -> None:
        pass


class Backend:
    """A target the runner can compile for and run on. Register instances via the hook."""

    name: str = ""
    priority: int = 0            # `--backend auto` picks the available backend with the highest
    export_variant: str = "standard"  # passed to the plugin's build(); see ModelEntry
    precisions: tuple[str, ...] = ("fp32",)  # what --precision may ask of it
    description: str = ""

    def unavailable_reason(self) -> str | None:
        """None when usable here, else what is missing and how to get it."""
        return None

    def versions(self) -> dict[str, str]:
        """Versions of the libraries or tools this backend runs on, for reports and cache keys."""
        return {}

    def check_paths(self, settings: BackendSettings, cache_dir: Path) -> None:
        """Raise a one-line UserError for an output or cache folder this backend's tools would
        refuse. The runner calls it before exporting anything, so a bad path costs no minutes of
        export and compile; the default accepts every path."""

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        raise NotImplementedError

    def benchmark(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings,
                  warmup: int, iters: int) -> dict[str, float]:
        """Pure-inference images/s at one batch size: median, min and max over `iters` timings.

        Times the gaps between results of a stream of identical batches, so that a session
        keeping several batches in flight is measured at its steady rate, not its latency.
        """
        batch = Batch([f"bench{i}" for i in range(batch_size)], artifacts.example_inputs(batch_size, seed=0))
        session = self.open(artifacts, batch_size, settings)
        try:
            stamps = [time.perf_counter()]
            for _ in session.run(itertools.repeat(batch, warmup + iters)):
                stamps.append(time.perf_counter())
        finally:
            session.close()
        gaps = np.diff(stamps)[warmup:]
        return {"fps_median": batch_size / float(np.median(gaps)), "fps_min": batch_size / float(gaps.max()),
                "fps_max": batch_size / float(gaps.min()), "latency_ms_median": 1000 * float(np.median(gaps))}
