"""The images static int8 quantisation calibrates on, and which of them a run takes.

Order of preference: --calibration-data DIR (never the images being scored), else the run's own
--data, else the demo set (generated pictures: scales from them fit real photos poorly, so the
run says so). `--calibration N` images, spread evenly over the sorted files.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from modelzoo.data import find_images
from modelzoo.errors import UserError
from modelzoo.manifest import Manifest
from modelzoo.resume import files_digest

log = logging.getLogger(__name__)

DEFAULT_IMAGES = 300


@dataclass(frozen=True)
class Calibration:
    images: tuple[Path, ...]
    source: str                           # "calibration-data", "data" or "demo"
    root: Path
    input_name: str
    preprocess: Callable[[Path], np.ndarray]

    def digest(self) -> str:
        return files_digest(list(self.images))

    def to_report(self) -> dict:
        return {"source": self.source, "path": str(self.root), "images": len(self.images),
                "digest": self.digest()}

    def announce(self) -> None:
        """Say where the scales come from, loudly when they come from the demo set."""
        if self.source == "demo":
            log.warning("int8 calibration on the demo set (%d generated pictures): pass --data or "
                        "--calibration-data for scales from real images", len(self.images))
        elif self.source == "data":
            log.info("int8 calibration on %d of the images being scored, in %s (--calibration-data DIR "
                     "keeps them apart)", len(self.images), self.root)
        else:
            log.info("int8 calibration on %d images from %s", len(self.images), self.root)

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        """Model inputs, one image each; iterable again, as a quantiser makes several passes.

        Unreadable images are left out: calibration needs a representative sample, not each file.
        """
        for path in self.images:
            try:
                array = self.preprocess(path)
            except UserError as exc:
                log.warning("calibration: skipping %s", exc)
                continue
            yield {self.input_name: array[None]}


def choose_calibration(manifest: Manifest, preprocess: Callable[[Path], np.ndarray], count: int,
                       calibration_data: Path | None, data_root: Path, demo: bool) -> Calibration:
    """`count` images from --calibration-data, else from the data set at `data_root`."""
    if count < 1:
        raise UserError(f"--calibration must be at least 1, got {count}")
    root = Path(calibration_data) if calibration_data is not None else Path(data_root)
    image_dir = root / manifest.dataset["images"]
    images = find_images(image_dir if image_dir.is_dir() else root)
    picked = tuple(images[i * len(images) // min(count, len(images))] for i in range(min(count, len(images))))
    source = "calibration-data" if calibration_data is not None else "demo" if demo else "data"
    if len(picked) < count:
        log.info("int8 calibration: %s holds %d images, fewer than --calibration %d", root, len(picked), count)
    return Calibration(picked, source, root.resolve(), manifest.inputs[0].name, preprocess)
