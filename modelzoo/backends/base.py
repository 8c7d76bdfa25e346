"""The backend interface: how the runner compiles a model for a target and runs batches on it."""
from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

import numpy as np

from modelzoo.core import Arrays, Batch
from modelzoo.throughput import bench_figures

if TYPE_CHECKING:
    import argparse

    from modelzoo.artifacts import Artifacts
    from modelzoo.calibration import Calibration
    from modelzoo.manifest import Manifest


def pad_batch(inputs: Arrays, rows: int, size: int) -> Arrays:
    """Every input padded with zero rows from `rows` to `size` on the batch axis."""
    if rows >= size:
        return inputs
    return {name: np.concatenate([a, np.zeros((size - rows, *a.shape[1:]), dtype=a.dtype)])
            for name, a in inputs.items()}


def axis_sizes(inputs: Arrays, manifest: Manifest) -> dict[str, int]:
    """The size of each dynamic axis in this batch, read from the inputs that hold it."""
    return {name: inputs[t.name].shape[i] for t in manifest.inputs for i, name in t.dynamic_axes.items()}


@dataclass(frozen=True)
class FixedAxes:
    """A compiled model whose dynamic axes are fixed at `sizes`: each batch is padded up to them
    along those axes with the axis's `pad`, and outputs along a dynamic axis are cut back to the
    batch's own size (the model must ignore the padding, as a masked model does)."""

    manifest: Manifest
    sizes: dict[str, int]

    def sizes_for(self, inputs: Arrays) -> dict[str, int]:
        """The sizes a batch is computed at."""
        return self.sizes

    def pad(self, inputs: Arrays) -> tuple[Arrays, dict[str, int]]:
        """(the inputs padded up to `sizes`, the batch's own sizes)."""
        real = axis_sizes(inputs, self.manifest)
        padded = dict(inputs)
        for t in self.manifest.inputs:
            widths = [(0, 0)] * padded[t.name].ndim
            for i, name in t.dynamic_axes.items():
                widths[i] = (0, self.sizes[name] - real[name])
            if any(after for _, after in widths):
                pad_value = [self.manifest.axes[n].pad for n in t.dynamic_axes.values()][0]
                padded[t.name] = np.pad(padded[t.name], widths, constant_values=pad_value)
        return padded, real

    def trim(self, outputs: Arrays, real: dict[str, int]) -> Arrays:
        """Outputs cut back to the batch's own sizes along their dynamic axes."""
        trimmed = dict(outputs)
        for t in self.manifest.outputs:
            cut = tuple(slice(0, real[t.dynamic_axes[i]]) if i in t.dynamic_axes else slice(None)
                        for i in range(len(t.shape)))
            trimmed[t.name] = trimmed[t.name][cut]
        return trimmed


@dataclass(frozen=True)
class BackendSettings:
    """What a run asks of its backend: what every backend understands, plus its own options."""

    workdir: Path                           # the run's output dir: intermediate files go below it
    precision: str = "auto"                 # see modelzoo.precision; "auto": the backend's native one
    calibration: Calibration | None = None  # images for static int8 quantisation
    keep_fp32: tuple[str, ...] = ()         # --keep-fp32: ONNX ops to keep at higher precision
    # The backend's own settings, as its options_from() made them (None: its defaults). They travel
    # to Ray actors with the rest, so they must pickle: a dataclass of plain values.
    options: Any = None


class Session:
    """A model ready to run at one batch size.

    Subclasses implement ``infer``; the default ``run`` times it, pads a short last batch when the
    compiled model has a static batch, and drops the padding rows again; likewise along dynamic
    axes that the compiled model fixes (`fixed_axes`).
    """

    static_batch: int | None = None
    fixed_axes: FixedAxes | None = None
    precision = "fp32"      # what the compiled model actually runs, as far as the library tells
    precision_note = ""     # how that was decided, for the report
    identity = ""           # the model file it runs, with its settings: part of cache keys
    calibration: dict | None = None  # what a statically quantised model was calibrated on
    kept_ops: tuple[str, ...] = ()   # ONNX ops a precision fix keeps at higher precision
    in_flight = 1           # batches it runs at once

    def __init__(self) -> None:
        self.reset_figures()

    def reset_figures(self) -> None:
        """Forget the batches run so far (`auto`'s probe), so that the figures are the run's own."""
        self.compute_seconds = 0.0
        self.images = 0
        self.latencies_s: list[float] = []  # per batch, from start of compute to its result
        self.finished_at: list[float] = []  # per batch, perf_counter() when its result was ready

    def infer(self, inputs: Arrays) -> Arrays:
        """One batch: input name -> array in, output name -> array out."""
        raise NotImplementedError

    def run(self, batches: Iterable[Batch]) -> Iterator[tuple[list[str], Arrays]]:
        for batch in batches:
            n = len(batch.keys)
            inputs = pad_batch(batch.inputs, n, self.static_batch) if self.static_batch else batch.inputs
            if self.fixed_axes:
                inputs, real = self.fixed_axes.pad(inputs)
            start = time.perf_counter()
            outputs = self.infer(inputs)
            if self.fixed_axes:
                outputs = self.fixed_axes.trim(outputs, real)
            self.finished_at.append(time.perf_counter())
            self.latencies_s.append(self.finished_at[-1] - start)
            self.compute_seconds += self.latencies_s[-1]
            self.images += n
            yield batch.keys, {name: out[:n] for name, out in outputs.items()}

    def sizes_for(self, inputs: Arrays) -> dict[str, int] | None:
        """The sizes of the dynamic axes this session computes a batch at, when it pads them up
        (to a gear); None when it runs the batch as collated."""
        return self.fixed_axes.sizes_for(inputs) if self.fixed_axes else None

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
    precisions: tuple[str, ...] = ("fp32",)  # what --precision may ask of it besides auto
    description: str = ""
    # The Ray resource one session occupies (e.g. "NPU"); None: a CPU backend. `--engine ray`
    # places one session per such device, and one per node (or --actors-per-node) otherwise.
    accelerator: str | None = None

    def auto_precision(self) -> str:
        """What --precision auto runs: the backend's native fast floating-point precision here."""
        return "fp32"

    def precision_problem(self, precision: str) -> str | None:
        """None when this backend can run `precision` on this host, else why not (one clause)."""
        if precision == "auto" or precision in self.precisions:
            return None
        return f"it runs {', '.join(('auto', *self.precisions))}"

    def unavailable_reason(self) -> str | None:
        """None when usable here, else what is missing and how to get it."""
        return None

    def versions(self) -> dict[str, str]:
        """Versions of the libraries or tools this backend runs on, for reports and cache keys."""
        return {}

    def add_options(self, group: argparse._ArgumentGroup, command: str) -> None:
        """Add this backend's own flags to `group` (titled after the backend) of `modelzoo <command>`,
        "run", "bench" or "compare". Every registered backend's flags are on the command line, whichever runs,
        so their names should say what they are for; a backend without options adds none."""

    def options_from(self, args: argparse.Namespace) -> Any:
        """This backend's own settings, from the flags `add_options` added, for BackendSettings.options
        (the flags of another command than the one parsed are missing from `args`)."""
        return None

    def on_actor(self, options: Any) -> Any:
        """The options for a session on a Ray actor, which Ray gave this backend's devices
        renumbered from 0 (see `accelerator`); the default keeps them."""
        return options

    def check_paths(self, settings: BackendSettings, cache_dir: Path) -> None:
        """Raise a one-line UserError for an output or cache folder this backend's tools would
        refuse. The runner calls it before exporting anything, so a bad path costs no minutes of
        export and compile; the default accepts every path."""

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        raise NotImplementedError

    def prepare(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> None:
        """Build what `open` starts from that any host can share (the ONNX by default), without
        opening a session: an engine that opens sessions on other hosts builds it once and ships it.
        What depends on the host's own chip is left for `open` to build there."""
        artifacts.onnx(batch_size)

    def benchmark(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings,
                  warmup: int, iters: int, sizes: dict[str, int] | None = None) -> dict[str, float | str]:
        """Pure-inference images/s at one batch size (and dynamic axes at `sizes`, default their
        examples) and per-batch latency percentiles.

        A stream of identical batches runs through the session; throughput is the images
        completed after the warm-up over the wall time they took, timed by when each batch
        finished (not when the session handed it back), so a session keeping several batches in
        flight is measured at its steady rate, and two results that finish together count as
        what they are: two batches in the time since the last one.
        """
        batch = Batch([f"bench{i}" for i in range(batch_size)], artifacts.example_inputs(batch_size, 0, sizes))
        session = self.open(artifacts, batch_size, settings)
        try:
            start = time.perf_counter()
            for _ in session.run(itertools.repeat(batch, warmup + iters)):
                pass
        finally:
            session.close()
        stamps = [start, *sorted(session.finished_at)]
        return {**bench_figures(stamps, session.latencies_s, batch_size, warmup, session.in_flight),
                "precision": session.precision}
