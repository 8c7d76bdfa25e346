"""The pipeline steps that the CLI can also run alone, as ModelZoo's separate scripts do."""
from __future__ import annotations

import contextlib
import shutil
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from modelzoo.artifacts import Artifacts
from modelzoo.cache import Cache
from modelzoo.data import find_images
from modelzoo.errors import UserError
from modelzoo.fileio import atomic_write_bytes, atomic_write_json
from modelzoo.labels import image_key, read_labels
from modelzoo.metrics import accuracy, top5
from modelzoo.pipeline import DEFAULT_OUTPUT_ROOT
from modelzoo.registry import ModelEntry
from modelzoo.results import read_results
from modelzoo.stream import Preprocessor, default_workers
from modelzoo.weights import resolve_weights


def write_bin(array: np.ndarray, out_dir: Path, image: str | Path) -> Path:
    """Raw little-endian float32, no header, named `<file name before its first '.'>.bin` (ModelZoo's layout)."""
    path = Path(out_dir) / f"{image_key(Path(image).name)}.bin"
    atomic_write_bytes(path, np.ascontiguousarray(array, dtype="<f4").tobytes())
    return path


def preprocess_to_bin(entry: ModelEntry, data: Path, out_dir: Path, workers: int | None,
                      skip_invalid: bool, quiet: bool = False) -> int:
    image_dir = data / entry.manifest.dataset["images"]
    images = find_images(image_dir if image_dir.is_dir() else data)
    workers = default_workers() if workers is None else workers
    count = 0
    with Preprocessor(entry.preprocess, images, workers, window=4 * max(workers, 1)) as stream:
        for path, array, error in tqdm(stream, total=len(images), desc="preprocess", unit="img",
                                       disable=quiet or not sys.stderr.isatty()):
            if error is not None:
                if skip_invalid:
                    print(f"skipped: {error}", file=sys.stderr)
                    continue
                raise UserError(error)
            write_bin(array, out_dir, path)
            count += 1
    return count


def export(entry: ModelEntry, weights: Path | None, output: Path, batch_size: int | None,
           variant: str, simplify: bool, cache_dir: Path | None, quiet: bool = False,
           upstream: Path | None = None) -> tuple[Path, dict]:
    artifacts = Artifacts(entry, resolve_weights(entry.manifest, weights),
                          Cache(cache_dir or DEFAULT_OUTPUT_ROOT / "cache"), variant, simplify, quiet, upstream)
    cached = artifacts.onnx(batch_size)
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, tmp)
        tmp.replace(output)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UserError(f"cannot write {output}: {exc.strerror}; choose another --output") from None
    return output, artifacts.parity


def postprocess(entry: ModelEntry, result_path: Path, labels: Path, output: Path | None) -> dict:
    results = read_results(result_path, entry.manifest.num_classes)
    classes = {image_key(name): cls for name, cls in read_labels(labels, entry.manifest.num_classes).items()}
    scores = accuracy({key: top5(row) for key, row in results.items()}, classes)
    if output is not None:
        atomic_write_json(output, scores)
    return scores
