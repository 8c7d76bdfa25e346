"""Read the classification scores ais_bench writes, one file per input image.

ais_bench names each result `<input name before its first '.'>_<output index>.<txt|bin|npy>`
(e.g. `ILSVRC2012_val_00000001_0.txt`) and may put a `*_summary.json` beside them. Only output 0
is read; the files are keyed by `<input name before its first '.'>`, i.e. `labels.image_key`.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from modelzoo.errors import UserError

# Greedy stem: `a_0_0.txt` is output 0 of input `a_0`; `a_10.txt` and `a_1.txt` do not match.
_RESULT_RE = re.compile(r"(?P<stem>.+)_0\.(?P<fmt>txt|bin|npy)")


def read_results(result_dir: Path, num_classes: int) -> dict[str, np.ndarray]:
    """Read every `<stem>_0.{txt,bin,npy}` in `result_dir` into {stem: float32 scores of shape (num_classes,)}.

    Anything else in the folder (summary JSON, other outputs `_1`, sub-folders such as the
    per-device folders of a multi-device run) is ignored. Each file must hold exactly
    `num_classes` values, whatever its shape ((C,) or (1, C) alike). A missing folder, a folder
    without result files, a short/long/garbled file, or two formats for one image raise a
    one-line `UserError`. The dict is sorted by stem.
    """
    result_dir = Path(result_dir)
    try:
        entries = list(os.scandir(result_dir))
    except OSError as exc:
        raise UserError(
            f"cannot read result folder {result_dir}: {exc.strerror or exc}; "
            "pass the folder ais_bench wrote its results to"
        ) from None

    found: dict[str, Path] = {}
    for entry in entries:
        match = _RESULT_RE.fullmatch(entry.name)
        if match is None or not entry.is_file():
            continue
        stem = match["stem"]
        if stem in found:
            raise UserError(
                f"two results for {stem} in {result_dir}: {found[stem].name} and {entry.name}; "
                "keep one output format per folder"
            )
        found[stem] = Path(entry.path)

    if not found:
        raise UserError(
            f"no result files (<name>_0.txt/.bin/.npy) in {result_dir}; "
            "pass the folder ais_bench wrote its results to"
        )
    return {stem: _read_one(found[stem], num_classes) for stem in sorted(found)}


def _read_one(path: Path, num_classes: int) -> np.ndarray:
    fmt = path.suffix
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read result file {path}: {exc.strerror or exc}") from None

    if fmt == ".bin":
        if len(data) % 4:
            raise UserError(
                f"result file {path} is truncated: {len(data)} bytes is not a whole number of "
                f"float32 values; rerun the inference"
            )
        values = np.frombuffer(data, dtype="<f4").astype(np.float32)
    elif fmt == ".txt":
        values = _parse_txt(path, data)
    else:
        values = _parse_npy(path)

    if values.size != num_classes:
        raise UserError(
            f"result file {path} holds {values.size} values, expected {num_classes}; "
            "check the model's output and the --num-classes setting, or rerun the inference"
        )
    return values.reshape(num_classes)


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
