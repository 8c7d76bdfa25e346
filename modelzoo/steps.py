"""The pipeline steps that the CLI can also run alone, as ModelZoo's separate scripts do."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm

from modelzoo.artifacts import Artifacts
from modelzoo.cache import Cache
from modelzoo.core import ModelEntry
from modelzoo.data import screen_images
from modelzoo.errors import UserError, plugin_code
from modelzoo.fileio import atomic_write_bytes, atomic_write_json
from modelzoo.labels import image_key
from modelzoo.metas import check, postprocessor, split, takes_metas
from modelzoo.pipeline import DEFAULT_OUTPUT_ROOT, load_dataset
from modelzoo.results import read_results
from modelzoo.stream import Preprocessor, as_inputs, default_workers, stack
from modelzoo.weights import random_banner, resolve_weights
from modelzoo.words import unit_of


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
    several inputs (ais_bench's --input takes one folder per input); the samples' metas, when its
    preprocess gives any, in `out_dir/metas.jsonl` (one `{"key": ..., "meta": ...}` a line) for
    `postprocess --metas`."""
    inputs = [t.name for t in entry.manifest.inputs]
    samples, skipped = screen_images(load_dataset(entry, data, None).samples, skip_invalid)
    for record in skipped:
        print(f"skipped: {record['reason']}", file=sys.stderr)
    workers = default_workers() if workers is None else workers
    collate = entry.collate or stack
    count = 0
    metas: list[bytes] = []
    with Preprocessor(entry.preprocess, samples, workers, window=4 * max(workers, 1),
                      plugin=entry.manifest.plugin, threads=entry.preprocess_in_threads) as stream:
        for sample, preprocessed, error in tqdm(stream, total=len(samples), desc="preprocess",
                                                unit=unit_of(entry.manifest).tick,
                                                disable=quiet or not sys.stderr.isatty()):
            if error is not None:
                if skip_invalid:
                    print(f"skipped: {error}", file=sys.stderr)
                    continue
                raise UserError(error)
            preprocessed, meta = split(preprocessed)
            with plugin_code(entry.manifest.plugin, "collate"):
                batch = collate([as_inputs(preprocessed, inputs)])  # padded as inference pads it
            for name in inputs:
                path = write_bin(batch[name][0], out_dir if len(inputs) == 1 else out_dir / name, sample.key)
            if meta is not None:
                check(meta, sample.key, entry.manifest.plugin)
                metas.append(json.dumps({"key": path.stem, "meta": meta}).encode() + b"\n")
            count += 1
    if not count:  # an empty result is a failure
        raise UserError(f"no .bin file written: every sample in {data} was skipped as unreadable; check --data")
    if metas:
        atomic_write_bytes(Path(out_dir) / METAS_FILE, b"".join(metas))
    return count


WEIGHTS_METADATA = "modelzoo.weights"  # the exported ONNX's metadata_props key: which weights it holds


METAS_FILE = "metas.jsonl"


def read_metas(path: Path) -> dict:
    """The metas `preprocess_to_bin` wrote, by the stem of each sample's result files."""
    metas = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}; pass the {METAS_FILE} that "
                        "'modelzoo preprocess' wrote beside the .bin files") from None
    for number, line in enumerate(lines, start=1):
        try:
            entry = json.loads(line)
            metas[entry["key"]] = entry["meta"]
        except (ValueError, KeyError, TypeError):
            raise UserError(f"{path} line {number} is not a {{\"key\", \"meta\"}} object; "
                            "write the file again with 'modelzoo preprocess'") from None
    return metas


def export(entry: ModelEntry, weights: Path | None, output: Path, batch_size: int | None,
           variant: str, simplify: bool, cache_dir: Path | None, quiet: bool = False,
           upstream: Path | None = None, parity_check: bool = True) -> tuple[Path, dict]:
    """The model's ONNX at `output`, its metadata saying which weights it holds (a file exported
    with random weights must not pass for a real one); the torch-vs-ONNX parity figures."""
    import onnx

    resolved = resolve_weights(entry.manifest, weights)
    if resolved.random:
        print(random_banner(entry.manifest, "export", quiet), file=sys.stderr)
    artifacts = Artifacts(entry, resolved, Cache(cache_dir or DEFAULT_OUTPUT_ROOT / "cache"), variant, simplify,
                          quiet, upstream, parity_check)
    model = onnx.load(str(artifacts.onnx(batch_size)))
    onnx.helper.set_model_props(model, {**{p.key: p.value for p in model.metadata_props},
                                        WEIGHTS_METADATA: resolved.label})
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(tmp))
        tmp.replace(output)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise UserError(f"cannot write {output}: {exc.strerror}; choose another --output") from None
    return output, artifacts.parity


def postprocess(entry: ModelEntry, result_path: Path, data: Path | None, labels: Path | None,
                output: Path | None, metas_path: Path | None = None) -> dict:
    """Score result files of another tool (ais_bench) with the model's task: targets come from the
    dataset (--data), or for a task that reads them alone (classification) from --labels; a task
    whose postprocess takes metas gets them from `metas_path` (the preprocess step's metas.jsonl)."""
    task = entry.task
    varying = [t for t in entry.manifest.outputs if t.dynamic_axes]
    if varying:
        raise UserError(f"output '{varying[0].name}' of {entry.name} has dynamic axes ({', '.join(varying[0].dynamic_axes.values())}) "
                        "whose size differs by sample and gear, which result files do not record; run "
                        f"'modelzoo run {entry.name} --backend ascend --io files --keep-bin': it runs ais_bench per gear, "
                        "keeps its files, and cuts each output back to its sample")
    results = read_results(result_path, entry.manifest.outputs)
    metas = _metas_for(entry, results, metas_path)
    if data is not None:
        targets = {s.key: s.target for s in load_dataset(entry, data, labels).samples}
    elif labels is not None and hasattr(task, "read_targets"):
        targets = task.read_targets(labels)
    else:
        raise UserError(f"the {task.kind} task needs --data DIR to know the targets of {result_path}")
    run_postprocess = postprocessor(task)
    with plugin_code(entry.manifest.plugin, "postprocess"):
        records = {key: run_postprocess({name: a[None] for name, a in outputs.items()}, [metas.get(key)])[0]
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


def _metas_for(entry: ModelEntry, results: dict, metas_path: Path | None) -> dict:
    """Each result's meta from `metas_path`: required when the task's postprocess takes metas."""
    if metas_path is None:
        if takes_metas(entry.task.postprocess):
            raise UserError(f"the {entry.task.kind} task of '{entry.name}' needs each sample's meta: pass "
                            f"--metas with the {METAS_FILE} that 'modelzoo preprocess' wrote beside the .bin files")
        return {}
    metas = read_metas(metas_path)
    missing = [key for key in results if key not in metas]
    if missing:
        raise UserError(f"{metas_path} has no meta for result {missing[0]} ({len(missing)} results without one); "
                        "pass the metas.jsonl of the same 'modelzoo preprocess' run")
    return metas
