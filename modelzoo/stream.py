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
from typing import Callable, Iterator

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


def preprocessed(preprocess: Preprocess, images: list[Path], workers: int) -> Iterator[tuple[Path, np.ndarray | None, str | None]]:
    """(path, array or None, error or None) for every image, in order."""
    if workers == 0:
        for path in images:
            yield (path, *_load(preprocess, path))
        return
    window = workers * 4
    # spawn: the parent holds inference threads, which a forked child must not inherit.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_sigint) as pool:
        pending: collections.deque[tuple[Path, Future]] = collections.deque()
        todo = iter(images)
        for path in todo:
            pending.append((path, pool.submit(_load, preprocess, path)))
            if len(pending) >= window:
                break
        while pending:
            path, future = pending.popleft()
            next_path = next(todo, None)
            if next_path is not None:
                pending.append((next_path, pool.submit(_load, preprocess, next_path)))
            yield (path, *future.result())


def batches(preprocess: Preprocess, images: list[Path], batch_size: int, workers: int,
            skip_invalid: bool, on_skip: Callable[[dict[str, str]], None]) -> Iterator[Batch]:
    """Batches of preprocessed images; a bad image stops the run, or is skipped and recorded."""
    names: list[str] = []
    rows: list[np.ndarray] = []
    for path, array, error in preprocessed(preprocess, images, workers):
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
