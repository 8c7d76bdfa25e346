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
from modelzoo.data import screen_images
from modelzoo.errors import UserError, plugin_code
from modelzoo.fileio import atomic_write_bytes, atomic_write_json
from modelzoo.labels import image_key
from modelzoo.pipeline import DEFAULT_OUTPUT_ROOT, load_dataset
from modelzoo.registry import ModelEntry
from modelzoo.results import read_results
from modelzoo.stream import Preprocessor, as_inputs, default_workers, stack
from modelzoo.weights import resolve_weights


def write_bin(array: np.ndarray, out_dir: Path, image: str | Path) -> Path:
    """Raw little-endian values of the array's own dtype, no header, named `<file name before its
    first '.'>.bin` (ModelZoo's layout)."""
    path = Path(out_dir) / f"{image_key(Path(image).name)}.bin"
    array = np.asarray(array)
    atomic_write_bytes(path, np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes())
    return path


def preprocess_to_bin(entry: ModelEntry, data: Path, out_dir: Path, workers: int | None,
                      skip_invalid: bool, quiet: bool = False) -> int:
    """One `<key>.bin` per sample in `out_dir`, or in `out_dir/<input name>/` for a model with
    several inputs (ais_bench's --input takes one folder per input)."""
    inputs = [t.name for t in entry.manifest.inputs]
    samples, skipped = screen_images(load_dataset(entry, data, None).samples, skip_invalid)
    for record in skipped:
        print(f"skipped: {record['reason']}", file=sys.stderr)
    workers = default_workers() if workers is None else workers
    collate = entry.collate or stack
    count = 0
    with Preprocessor(entry.preprocess, samples, workers, window=4 * max(workers, 1),
                      plugin=entry.manifest.plugin, threads=entry.preprocess_in_threads) as stream:
        for sample, preprocessed, error in tqdm(stream, total=len(samples), desc="preprocess", unit="img",
                                                disable=quiet or not sys.stderr.isatty()):
            if error is not None:
                if skip_invalid:
                    print(f"skipped: {error}", file=sys.stderr)
                    continue
                raise UserError(error)
            with plugin_code(entry.manifest.plugin, "collate"):
                batch = collate([as_inputs(preprocessed, inputs)])  # padded as inference pads it
            for name in inputs:
                write_bin(batch[name][0], out_dir if len(inputs) == 1 else out_dir / name, sample.key)
            count += 1
    if not count:  # an empty result is a failure
        raise UserError(f"no .bin file written: every sample in {data} was skipped as unreadable; check --data")
    return count


def export(entry: ModelEntry, weights: Path | None, output: Path, batch_size: int | None,
           variant: str, simplify: bool, cache_dir: Path | None, quiet: bool = False,
           upstream: Path | None = None, parity_check: bool = True) -> tuple[Path, dict]:
    artifacts = Artifacts(entry, resolve_weights(entry.manifest, weights),
                          Cache(cache_dir or DEFAULT_OUTPUT_ROOT / "cache"), variant, simplify, quiet, upstream,
                          parity_check)
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


def postprocess(entry: ModelEntry, result_path: Path, data: Path | None, labels: Path | None,
                output: Path | None) -> dict:
    """Score result files of another tool (ais_bench) with the model's task: targets come from the
    dataset (--data), or for a task that reads them alone (classification) from --labels."""
    task = entry.task
    results = read_results(result_path, entry.manifest.outputs)
    if data is not None:
        targets = {s.key: s.target for s in load_dataset(entry, data, labels).samples}
    elif labels is not None and hasattr(task, "read_targets"):
        targets = task.read_targets(labels)
    else:
        raise UserError(f"the {task.kind} task needs --data DIR to know the targets of {result_path}")
    with plugin_code(entry.manifest.plugin, "postprocess"):
        records = {key: task.postprocess({name: a[None] for name, a in outputs.items()})[0]
                   for key, outputs in results.items()}
    matched = [key for key in records if key in targets]
    with plugin_code(entry.manifest.plugin, "the evaluator"):
        evaluator = task.evaluator()
        evaluator.update([records[k] for k in matched], [targets[k] for k in matched])
        scores = {**evaluator.compute(), "results_without_label": len(records) - len(matched),
                  "labels_without_result": sum(1 for k in targets if k not in records)}
    if output is not None:
        atomic_write_json(output, scores)
    return scores
