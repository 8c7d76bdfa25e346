"""plugin.toml, the manifest of a model plugin: loading and validation.

A manifest is checked as a whole on load, so that a plugin author meets every mistake as one line
naming the file, the key and what was expected, instead of a KeyError deep inside a run.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from modelzoo.errors import UserError

log = logging.getLogger(__name__)

# What each key must hold. A checker returns None when the value is fine, else what was expected.
Checker = Any


def _is(kind: type | tuple[type, ...], what: str) -> Checker:
    def check(value: Any) -> str | None:
        ok = isinstance(value, kind) and not isinstance(value, bool)
        return None if ok else what
    return check


def _list_of(kind: type | tuple[type, ...], what: str) -> Checker:
    def check(value: Any) -> str | None:
        ok = isinstance(value, list) and all(
            isinstance(v, kind) and not isinstance(v, bool) for v in value)
        return None if ok else what
    return check


def _one_of(*choices: str) -> Checker:
    def check(value: Any) -> str | None:
        return None if value in choices else "one of " + ", ".join(repr(c) for c in choices)
    return check


def _shape(value: Any) -> str | None:
    ok = (isinstance(value, list) and value
          and all(isinstance(v, str) or (isinstance(v, int) and v > 0) for v in value))
    return None if ok else 'a list of positive integers or names of symbolic axes, e.g. ["batch", 3, 224, 224]'


def _fps_table(value: Any) -> str | None:
    ok = isinstance(value, dict) and all(
        k.isdigit() and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in value.items())
    return None if ok else 'a table of batch size to fps, e.g. { 1 = 59.2, 4 = 76.0 }'


STRING = _is(str, "a string")
INTEGER = _is(int, "an integer")
NUMBER = _is((int, float), "a number")
BOOLEAN = lambda v: None if isinstance(v, bool) else "true or false"  # noqa: E731
STRINGS = _list_of(str, "a list of strings")
NUMBERS = _list_of((int, float), "a list of numbers")
STATUS = _one_of("OK", "POK", "NOK", "PERFECT")

# key -> (checker, required). Tables of tables ([[inputs]]) are described by their item keys.
TOP_LEVEL = {
    "name": (STRING, True), "summary": (STRING, True), "paper": (STRING, True),
    "plugin": (STRING, True), "num_classes": (INTEGER, True),
}
SECTIONS: dict[str, dict[str, tuple[Checker, bool]]] = {
    "source": {"repo": (STRING, True), "commit": (STRING, True), "patches": (STRINGS, False)},
    "weights": {"file": (STRING, True), "url": (STRING, True), "size": (INTEGER, False),
                "sha256": (STRING, False)},
    "preprocess": {"resize": (INTEGER, True), "crop": (INTEGER, True),
                   "interpolation": (_one_of("bicubic", "bilinear", "nearest"), True),
                   "mean": (NUMBERS, True), "std": (NUMBERS, True)},
    "dataset": {"images": (STRING, True), "labels": (STRING, True), "label_format": (STRING, True)},
    "export": {"opset": (INTEGER, True)},
    "atc": {"framework": (INTEGER, True), "input_format": (_one_of("NCHW", "NHWC", "ND", "NCDHW"), True),
            "log": (_one_of("debug", "info", "warning", "error", "null"), False),
            "extra_flags": (STRINGS, False)},
    "expected": {"top1": (NUMBER, True), "top1_tolerance": (NUMBER, True), "source": (STRING, True),
                 "perf": (None, False)},
    "status": {"FuncStatus": (STATUS, True), "PrecisionStatus": (STATUS, True),
               "PerfStatus": (STATUS, True), "AutoTune": (STATUS, False),
               "ModelConvert": (STATUS, False), "QuantStatus": (STATUS, False)},
}
TENSOR = {"name": (STRING, True), "dtype": (_one_of("float32", "float16", "uint8", "int64", "int32"), True),
          "layout": (STRING, True), "shape": (_shape, True)}
PERF = {"chip": (STRING, True), "fps": (_fps_table, True), "reference": (BOOLEAN, True)}
ARRAYS = {"inputs": TENSOR, "outputs": TENSOR}


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    layout: str
    shape: tuple[int | str, ...]

    def concrete_shape(self, batch: int) -> tuple[int, ...]:
        """The shape with every symbolic axis (the batch) set to `batch`."""
        return tuple(batch if isinstance(d, str) else d for d in self.shape)


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    summary: str
    paper: str
    plugin: str
    num_classes: int
    source: dict[str, Any]
    weights: dict[str, Any]
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    preprocess: dict[str, Any]
    dataset: dict[str, Any]
    export: dict[str, Any]
    atc: dict[str, Any]
    expected: dict[str, Any]
    status: dict[str, str]
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def root(self) -> Path:
        """The plugin's directory: relative paths in the manifest (patches) start here."""
        return self.path.parent


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a plugin.toml; any problem is one UserError line naming file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: manifest not found; every plugin needs a plugin.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    validate(data, path)
    return Manifest(
        path=path.resolve(), name=data["name"], summary=data["summary"], paper=data["paper"],
        plugin=data["plugin"], num_classes=data["num_classes"], source=data["source"],
        weights=data["weights"],
        inputs=tuple(Tensor(t["name"], t["dtype"], t["layout"], tuple(t["shape"])) for t in data["inputs"]),
        outputs=tuple(Tensor(t["name"], t["dtype"], t["layout"], tuple(t["shape"])) for t in data["outputs"]),
        preprocess=data["preprocess"], dataset=data["dataset"], export=data["export"], atc=data["atc"],
        expected=data["expected"], status=data["status"], raw=data,
    )


def validate(data: dict[str, Any], path: Path) -> None:
    def fail(key: str, expected: str, value: Any = None, missing: bool = False) -> None:
        got = "it is missing" if missing else f"got {value!r}"
        raise UserError(f"{path}: key '{key}' must be {expected}, {got}; fix the manifest")

    def check_table(table: dict[str, Any], spec: dict[str, tuple[Checker, bool]], prefix: str) -> None:
        for key, (checker, required) in spec.items():
            if key not in table:
                if required:
                    fail(prefix + key, _describe(checker), missing=True)
                continue
            problem = checker(table[key]) if checker else None
            if problem:
                fail(prefix + key, problem, table[key])
        for key in table.keys() - spec.keys():
            log.warning("%s: unknown key '%s%s' ignored", path, prefix, key)

    known = dict(TOP_LEVEL)
    known.update({name: (None, True) for name in (*SECTIONS, *ARRAYS)})
    check_table({k: v for k, v in data.items() if k in TOP_LEVEL or k not in known}, TOP_LEVEL, "")
    for name, spec in SECTIONS.items():
        table = data.get(name)
        if not isinstance(table, dict):
            fail(name, f"a table ([{name}])", table, missing=table is None)
        check_table(table, spec, name + ".")
    for name, spec in ARRAYS.items():
        items = data.get(name)
        if not (isinstance(items, list) and items and all(isinstance(i, dict) for i in items)):
            fail(name, f"one or more [[{name}]] tables", items, missing=items is None)
        for i, item in enumerate(items):
            check_table(item, spec, f"{name}[{i}].")
    perf = data["expected"].get("perf", [])
    if not (isinstance(perf, list) and all(isinstance(p, dict) for p in perf)):
        fail("expected.perf", "a list of [[expected.perf]] tables", perf)
    for i, item in enumerate(perf):
        check_table(item, PERF, f"expected.perf[{i}].")


def _describe(checker: Checker) -> str:
    """What a checker expects, for the 'missing key' message."""
    return checker(object()) if checker else "present"
