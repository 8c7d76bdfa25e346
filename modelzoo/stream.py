"""Preprocessing in worker processes, streamed into batches while inference runs.

At most a bounded number of images is in flight, so memory stays flat however many images a
dataset holds, and no intermediate file is written.
"""
from __future__ import annotations

import collections
import multiprocessing
import os
import signal
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from modelzoo.backends.base import Batch
from modelzoo.errors import UserError
from modelzoo.labels import image_key

Preprocess = Callable[[Path], np.ndarray]


def default_workers() -> int:
    return max(1, min(4, (os.cpu_count() or 1)))


def _ignore_sigint() -> None:
    """Ctrl-C is the main process's to handle: workers just stop when it shuts the pool down."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _load(preprocess: Preprocess, path: Path) -> tuple[np.ndarray | None, str | None]:
    """Runs in a worker: a bad image comes back as its message, not as an exception to unpickle."""
    try:
        return preprocess(path), None
    except UserError as exc:
        return None, str(exc)


class Preprocessor:
    """(path, array or None, error or None) for every image, in order, from worker processes.

    The pool starts and the first images are submitted on entering the context, so that worker
    start-up overlaps whatever the caller does next (opening the backend). At most `window`
    images are in flight: memory does not grow with the number of images.
    """

    def __init__(self, preprocess: Preprocess, images: list[Path], workers: int, window: int):
        self.preprocess = preprocess
        self.todo = iter(images)
        self.workers = workers
        self.window = max(window, workers)
        self.pool: ProcessPoolExecutor | None = None
        self.pending: collections.deque[tuple[Path, Future]] = collections.deque()

    def __enter__(self) -> Preprocessor:
        if self.workers > 0:
            # spawn: the parent holds inference threads, which a forked child must not inherit.
            self.pool = ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_ignore_sigint)
            for _ in range(self.window):
                if not self._submit_next():
                    break
        return self

    def __exit__(self, *exc_info) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _submit_next(self) -> bool:
        path = next(self.todo, None)
        if path is None:
            return False
        self.pending.append((path, self.pool.submit(_load, self.preprocess, path)))
        return True

    def __iter__(self) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
        if self.pool is None:
            for path in self.todo:
                yield (path, *_load(self.preprocess, path))
            return
        while self.pending:
            path, future = self.pending.popleft()
            self._submit_next()
            yield (path, *future.result())


def batches(images: Iterable[tuple[Path, np.ndarray | None, str | None]], batch_size: int,
            skip_invalid: bool, on_skip: Callable[[dict[str, str]], None]) -> Iterator[Batch]:
    """Batches of preprocessed images; a bad image stops the run, or is skipped and recorded."""
    names: list[str] = []
    rows: list[np.ndarray] = []
    for path, array, error in images:
        if error is not None:
            if not skip_invalid:
                raise UserError(error)
            on_skip({"image": str(path), "reason": error})
            continue
        names.append(image_key(path.name))
        rows.append(array)
        if len(rows) == batch_size:
            yield Batch(names, np.stack(rows))
            names, rows = [], []
    if rows:
        yield Batch(names, np.stack(rows))
