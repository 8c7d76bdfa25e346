"""Read the result files ais_bench writes, one file per input sample and output.

ais_bench names each result `<input name before its first '.'>_<output index>.<txt|bin|npy>`
(e.g. `ILSVRC2012_val_00000001_0.txt`) and may put a `*_summary.json` beside them. The files are
keyed by `<input name before its first '.'>`, i.e. the sample key (`labels.image_key`).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Sequence

import numpy as np

from modelzoo.errors import UserError
from modelzoo.manifest import Tensor

# Greedy stem: `a_0_1.txt` is output 1 of input `a_0`.
_RESULT_RE = re.compile(r"(?P<stem>.+)_(?P<index>[0-9]+)\.(?P<fmt>txt|bin|npy)")


def read_results(result_dir: Path, outputs: Sequence[Tensor]) -> dict[str, dict[str, np.ndarray]]:
    """Read every `<stem>_<i>.{txt,bin,npy}` in `result_dir` into {stem: {output name: array}}, each
    array of that output's dtype and shape for one sample (without the batch axis); outputs have
    no dynamic axes (their sizes are not in the files).

    Output i is the i-th of `outputs`; higher indices, the summary JSON and sub-folders (the
    per-device folders of a multi-device run) are ignored. Each file must hold exactly the
    output's number of values, whatever its shape ((C,) or (1, C) alike). A missing folder, a
    folder without result files, a sample lacking one of the outputs, a short/long/garbled file,
    or two formats for one file raise a one-line `UserError`. The dict is sorted by stem.
    """
    result_dir = Path(result_dir)
    try:
        entries = list(os.scandir(result_dir))
    except OSError as exc:
        raise UserError(
            f"cannot read result folder {result_dir}: {exc.strerror or exc}; "
            "pass the folder ais_bench wrote its results to"
        ) from None

    found: dict[str, dict[int, Path]] = {}
    for entry in entries:
        match = _RESULT_RE.fullmatch(entry.name)
        if match is None or not entry.is_file() or int(match["index"]) >= len(outputs):
            continue
        files = found.setdefault(match["stem"], {})
        index = int(match["index"])
        if index in files:
            raise UserError(
                f"two results for {match['stem']} in {result_dir}: {files[index].name} and {entry.name}; "
                "keep one output format per folder"
            )
        files[index] = Path(entry.path)

    if not found:
        raise UserError(
            f"no result files (<name>_0.txt/.bin/.npy) in {result_dir}; "
            "pass the folder ais_bench wrote its results to"
        )
    results = {}
    for stem in sorted(found):
        missing = [i for i in range(len(outputs)) if i not in found[stem]]
        if missing:
            raise UserError(f"{result_dir} has no result file {stem}_{missing[0]}.* for output "
                            f"'{outputs[missing[0]].name}'; rerun the inference")
        results[stem] = {t.name: _read_one(found[stem][i], t) for i, t in enumerate(outputs)}
    return results


def _read_one(path: Path, tensor: Tensor) -> np.ndarray:
    fmt = path.suffix
    dtype = np.dtype(tensor.dtype)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read result file {path}: {exc.strerror or exc}") from None

    if fmt == ".bin":
        if len(data) % dtype.itemsize:
            raise UserError(
                f"result file {path} is truncated: {len(data)} bytes is not a whole number of "
                f"{tensor.dtype} values; rerun the inference"
            )
        values = np.frombuffer(data, dtype=dtype.newbyteorder("<")).astype(dtype)
    elif fmt == ".txt":
        values = _parse_txt(path, data)
    else:
        values = _parse_npy(path)

    shape = tensor.concrete_shape(1)[1:]
    if values.size != math.prod(shape):
        raise UserError(
            f"result file {path} holds {values.size} values, expected {math.prod(shape)} "
            f"(output '{tensor.name}' {list(shape)}); check the model's output, or rerun the inference"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        return values.reshape(shape).astype(dtype)


def _parse_txt(path: Path, data: bytes) -> np.ndarray:
    """ais_bench TXT: rows of `%f ` values (each followed by a space), one `\\n` per row."""
    try:
        # %f only ever prints ASCII; decoding as ASCII also keeps float() away from the
        # non-ASCII digits it would otherwise accept.
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise _garbled_txt(path) from None
    # float() accepts '1_000' too; ais_bench never writes '_', so treat it as damage.
    if "_" in text:
        raise _garbled_txt(path)
    try:
        values = np.array(text.split(), dtype=np.float64)
    except ValueError:
        raise _garbled_txt(path) from None
    # Values beyond float32 range become inf, as a float32 model output would be.
    with np.errstate(over="ignore"):
        return values.astype(np.float32)


def _garbled_txt(path: Path) -> UserError:
    return UserError(
        f"result file {path} is not ais_bench TXT output (space-separated numbers); rerun the inference"
    )


def _parse_npy(path: Path) -> np.ndarray:
    try:
        # An open file object, so that a zip (.npz) in disguise is not left open by np.load.
        with open(path, "rb") as file:
            array = np.load(file, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises assorted types
        # (ValueError, EOFError, tokenize.TokenError, SyntaxError...) on damaged files.
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise UserError(
            f"result file {path} is not a readable .npy file ({reason}); rerun the inference"
        ) from None
    if not isinstance(array, np.ndarray) or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise UserError(
            f"result file {path} holds {getattr(array, 'dtype', type(array).__name__)} data, "
            "expected numbers; rerun the inference"
        )
    with np.errstate(over="ignore"):
        return array.astype(np.float32).ravel()
