"""Preprocessing in workers, streamed into batches while inference runs.

Workers are processes, or threads of this process for a plugin whose preprocess spends its time
in code that releases the GIL (Pillow, numpy): threads need no start-up imports and no pickling
of every array across a pipe, which on a small host is CPU taken from inference. At most a
bounded number of samples is in flight, so memory stays flat however many a dataset holds, and
no intermediate file is written.
"""
from __future__ import annotations

import collections
import math
import multiprocessing
import os
import signal
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from modelzoo.backends.base import axis_sizes
from modelzoo.core import Arrays, Batch, Sample
from modelzoo.errors import PluginError, UserError, plugin_code
from modelzoo.manifest import Manifest
from modelzoo.metas import Meta, check, split

Preprocess = Callable[[Any], Any]
Collate = Callable[[list[Arrays]], Arrays]


# Bucketing sorts samples by size within windows of whole batches: at least this many batches and
# this many samples, and more while the window's preprocessed arrays take under BUCKET_BYTES. A
# larger window pads less and holds more in memory: 256 samples of a text encoder whose lengths
# spread evenly up to its max pad 3% (10% in 64), and 64 MiB holds tens of thousands of token-id
# samples, where 256 pictures may already take gigabytes (benchmarks/results/text-bucketing.md).
BUCKET_BATCHES = 8
BUCKET_SAMPLES = 256
BUCKET_BYTES = 64 * 2**20


def bucket_window(batch_size: int) -> int:
    """How many samples bucketing sorts together at this batch size: whole batches."""
    return max(BUCKET_BATCHES, -(-BUCKET_SAMPLES // batch_size)) * batch_size


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


def _ignore_sigint() -> None:
    """Ctrl-C is the main process's to handle: workers just stop when it shuts the pool down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _load(preprocess: Preprocess, source: Any, plugin: str) -> tuple[Any, str | None]:
    """Runs in a worker: a bad sample comes back as its message, not as an exception to unpickle;
    anything else the plugin's code raises is its fault and ends the run naming it."""
    try:
        return preprocess(source), None
    except UserError as exc:
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - re-raised as one picklable error naming the plugin
        raise PluginError(f"plugin '{plugin}' raised {type(exc).__name__} in preprocess on {source}: {exc}") from None


class Preprocessor:
    """(sample, preprocessed or None, error or None) for every sample, in order, from workers:
    `threads` (see ModelEntry.preprocess_in_threads) or processes; none when `workers` is 0.

    The pool starts and the first images are submitted on entering the context, so that worker
    start-up overlaps whatever the caller does next (opening the backend). At most `window`
    samples are in flight: memory does not grow with the number of samples.
    """

    def __init__(self, preprocess: Preprocess, samples: list[Sample], workers: int, window: int,
                 *, plugin: str, threads: bool = False):
        self.preprocess = preprocess
        self.plugin = plugin
        self.todo = iter(samples)
        self.workers = workers
        self.threads = threads
        self.window = max(window, workers)
        self.pool: Executor | None = None
        self.pending: collections.deque[tuple[Sample, Future]] = collections.deque()

    def __enter__(self) -> Preprocessor:
        if self.workers > 0:
            self.pool = self._pool()
            for _ in range(self.window):
                if not self._submit_next():
                    break
        return self

    def _pool(self) -> Executor:
        if self.threads:
            return ThreadPoolExecutor(self.workers, thread_name_prefix="preprocess")
        # spawn: the parent holds inference threads, which a forked child must not inherit.
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_ignore_sigint)

    def __exit__(self, *exc_info) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _submit_next(self) -> bool:
        sample = next(self.todo, None)
        if sample is None:
            return False
        self.pending.append((sample, self.pool.submit(_load, self.preprocess, sample.source, self.plugin)))
        return True

    def __iter__(self) -> Iterator[tuple[Sample, Any, str | None]]:
        if self.pool is None:
            for sample in self.todo:
                yield (sample, *_load(self.preprocess, sample.source, self.plugin))
            return
        while self.pending:
            sample, future = self.pending.popleft()
            self._submit_next()
            yield (sample, *future.result())


def as_inputs(preprocessed: Any, input_names: list[str]) -> Arrays:
    """A plugin's preprocess result as input name -> array (a meta beside them left out); a bare
    array is the only input's."""
    preprocessed, _ = split(preprocessed)
    if isinstance(preprocessed, dict):
        return preprocessed
    if len(input_names) != 1:
        raise TypeError(f"preprocess returned a {type(preprocessed).__name__}, but the model has inputs "
                        f"{', '.join(input_names)}: return a dict of input name -> array")
    return {input_names[0]: preprocessed}


def stack(rows: list[Arrays]) -> Arrays:
    """The default collate: each input's arrays stacked on a new batch axis."""
    return {name: np.stack([row[name] for row in rows]) for name in rows[0]}


class Padding:
    """Real elements over computed elements of each dynamic input, over a run: how much of the
    computation padding costs. A sample's own sizes are read from the inputs its preprocess
    returns; the computed sizes are the collated batch's, or those `run_at(inputs)` says the
    backend pads it up to (a gear). Inputs that collate alone makes (a mask) count at the same
    sizes, as their elements are computed all the same."""

    def __init__(self, manifest: Manifest, run_at: Callable[[Arrays], dict[str, int] | None] | None = None) -> None:
        self.manifest = manifest
        self.run_at = run_at
        self.inputs = [t for t in manifest.inputs if t.dynamic_axes]
        self.real = dict.fromkeys((t.name for t in self.inputs), 0)
        self.padded = dict.fromkeys((t.name for t in self.inputs), 0)

    def add(self, rows: list[Arrays], batch: Arrays) -> None:
        computed = (self.run_at and self.run_at(batch)) or axis_sizes(batch, self.manifest)
        own = [{**computed, **sample_sizes(row, self.manifest)} for row in rows]
        for t in self.inputs:
            self.padded[t.name] += len(rows) * math.prod(t.concrete_shape(1, computed))
            self.real[t.name] += sum(math.prod(t.concrete_shape(1, sizes)) for sizes in own)

    def counts(self) -> dict[str, dict[str, int]]:
        """What `merge` takes: the counts so far, as plain data (a Ray actor sends them back)."""
        return {"real": dict(self.real), "padded": dict(self.padded)}

    def merge(self, counts: dict[str, dict[str, int]]) -> None:
        for name in self.real:
            self.real[name] += counts["real"][name]
            self.padded[name] += counts["padded"][name]

    def figures(self) -> dict[str, float] | None:
        found = {name: round(self.real[name] / self.padded[name], 4) for name in self.real if self.padded[name]}
        return found or None


def bucketed(rows: Iterable[tuple[str, Arrays]], window: int,
             budget: int = BUCKET_BYTES) -> Iterator[tuple[str, Arrays]]:
    """Samples in windows of a multiple of `window` samples, each window sorted by size (elements
    over all its arrays), so that a batch holds samples of similar length and pads little. A window
    grows by `window` samples at a time while its arrays take under `budget` bytes. Results are
    keyed by sample: the order does not matter to them, and memory stays bounded by the window."""
    def by_size(item: tuple[str, Arrays]) -> int:
        return sum(np.size(a) for a in item[1].values())

    held: list[tuple[str, Arrays]] = []
    held_bytes = 0
    for item in rows:
        held.append(item)
        held_bytes += sum(np.asarray(a).nbytes for a in item[1].values())
        if len(held) % window == 0 and held_bytes >= budget:
            yield from sorted(held, key=by_size)
            held, held_bytes = [], 0
    yield from sorted(held, key=by_size)


def measured_inputs(row: Arrays, manifest: Manifest) -> Iterator[tuple[str, str, int]]:
    """(input, axis, size) of each dynamic axis in the inputs a preprocessed sample holds with the
    declared number of axes (one sample, no batch axis)."""
    for t in manifest.inputs:
        array = row.get(t.name)
        if array is not None and np.ndim(array) == len(t.shape) - 1:
            for i, name in t.dynamic_axes.items():
                yield t.name, name, np.shape(array)[i - 1]


def sample_sizes(row: Arrays, manifest: Manifest) -> dict[str, int]:
    """A preprocessed sample's own size of each dynamic axis its inputs show."""
    return {name: size for _, name, size in measured_inputs(row, manifest)}


def too_large(key: str, row: Arrays, manifest: Manifest) -> str | None:
    """Why a preprocessed sample does not fit the model's dynamic axes (above the largest gear, or
    the max), or None."""
    largest = manifest.largest_sizes()
    for input_name, name, size in measured_inputs(row, manifest):
        if size > largest[name]:
            return (f"sample {key}: input '{input_name}' has {name}={size}, above the largest "
                    f"size {largest[name]} of axis {name} in {manifest.path}; shorten it in preprocess, "
                    "or pass --skip-invalid")
    return None


def batches(items: Iterable[tuple[Sample, Any, str | None]], batch_size: int, input_names: list[str],
            skip_invalid: bool, on_skip: Callable[[dict[str, str]], None],
            collate: Collate | None, *, plugin: str, metas: dict[str, Meta], bucket_window: int = 0,
            bucket_bytes: int = BUCKET_BYTES, padding: Padding | None = None,
            manifest: Manifest | None = None) -> Iterator[Batch]:
    """Batches of preprocessed samples; a bad sample stops the run, or is skipped and recorded.
    Each sample's meta (see modelzoo.metas) goes into `metas` by key, where the caller finds it
    when the batch's outputs come back.

    `bucket_window` > 0: samples are sorted by size within windows of that many, grown while under
    `bucket_bytes` (see `bucketed`);
    `padding` counts how much collate padded; `manifest` (with dynamic axes): a sample larger than
    an axis allows is a bad sample."""
    def make(keys: list[str], rows: list[Arrays]) -> Batch:
        with plugin_code(plugin, "collate"):
            batch = Batch(keys, (collate or stack)(rows))
        if padding is not None:
            padding.add(rows, batch.inputs)
        return batch

    def good() -> Iterator[tuple[str, Arrays]]:
        for sample, preprocessed, error in items:
            row = meta = None
            if error is None:
                inputs, meta = split(preprocessed)
                with plugin_code(plugin, "preprocess"):
                    row = as_inputs(inputs, input_names)
                error = too_large(sample.key, row, manifest) if manifest is not None and manifest.axes else None
            if error is not None:
                if not skip_invalid:
                    raise UserError(error)
                on_skip({"key": sample.key, "source": str(sample.source), "reason": error})
                continue
            if meta is not None:
                check(meta, sample.key, plugin)
                metas[sample.key] = meta
            yield sample.key, row

    keys: list[str] = []
    rows: list[Arrays] = []
    for key, row in bucketed(good(), bucket_window, bucket_bytes) if bucket_window else good():
        keys.append(key)
        rows.append(row)
        if len(rows) == batch_size:
            yield make(keys, rows)
            keys, rows = [], []
    if rows:
        yield make(keys, rows)
