"""The samples static int8 quantisation calibrates on, and which of them a run takes.

Order of preference: --calibration-data DIR (never the samples being scored), else the run's own
--data, else the demo set (generated pictures: scales from them fit real data poorly, so the run
says so). `--calibration N` samples, spread evenly over the data set's order.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from modelzoo.core import Dataset, Sample
from modelzoo.errors import UserError
from modelzoo.tasks import samples_digest
from modelzoo.text import plural

if TYPE_CHECKING:
    from modelzoo.core import Arrays, ModelEntry

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 300


@dataclass(frozen=True)
class Calibration:
    samples: tuple[Sample, ...]
    source: str                           # "calibration-data", "data" or "demo"
    root: Path
    entry: ModelEntry

    def digest(self) -> str:
        return samples_digest(list(self.samples))

    def to_report(self) -> dict:
        return {"source": self.source, "path": str(self.root), "images": len(self.samples),
                "digest": self.digest()}

    def announce(self) -> None:
        """Say where the scales come from, loudly when they come from the demo set."""
        if self.source == "demo":
            log.warning("int8 calibration on the demo set (%d generated samples): pass --data or "
                        "--calibration-data for scales from real data", len(self.samples))
        elif self.source == "data":
            log.info("int8 calibration on %d of the samples being scored, in %s (--calibration-data DIR "
                     "keeps them apart)", len(self.samples), self.root)
        else:
            log.info("int8 calibration on %s from %s", plural(len(self.samples), "sample"), self.root)

    def __iter__(self) -> Iterator[Arrays]:
        """Model inputs, one sample each; iterable again, as a quantiser makes several passes.

        Unreadable samples are left out: calibration needs a representative set, not each file.
        """
        from modelzoo.stream import as_inputs, stack

        names = [t.name for t in self.entry.manifest.inputs]
        for sample in self.samples:
            try:
                row = as_inputs(self.entry.preprocess(sample.source), names)
            except UserError as exc:
                log.warning("calibration: skipping %s", exc)
                continue
            yield (self.entry.collate or stack)([row])


def calibration_samples(entry: ModelEntry, directory: Path) -> list[Sample]:
    """The samples in --calibration-data: the task's own layout, or, for one that needs labels
    calibration does not, the image files in DIR/images or DIR."""
    try:
        return entry.task.load_dataset(directory).samples
    except UserError:
        from modelzoo.data import find_images
        from modelzoo.labels import image_key

        image_dir = directory / "images" if (directory / "images").is_dir() else directory
        return [Sample(image_key(p.name), p) for p in find_images(image_dir)]


def choose_calibration(entry: ModelEntry, count: int, calibration_data: Path | None,
                       dataset: Dataset | None) -> Calibration:
    """`count` samples from --calibration-data, else from `dataset` (the run's, before --limit)."""
    if count < 1:
        raise UserError(f"--calibration must be at least 1, got {count}")
    if calibration_data is not None:
        root, samples, source = Path(calibration_data), calibration_samples(entry, Path(calibration_data)), \
            "calibration-data"
    else:
        root, samples, source = dataset.root, dataset.samples, "demo" if dataset.demo else "data"
    if not samples:
        raise UserError(f"no samples to calibrate on in {root}; pass --calibration-data DIR")
    n = min(count, len(samples))
    picked = tuple(samples[i * len(samples) // n] for i in range(n))
    if n < count:
        log.info("int8 calibration: %s holds %s, fewer than --calibration %d", root, plural(n, "sample"), count)
    return Calibration(picked, source, root.resolve(), entry)
