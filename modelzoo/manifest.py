"""plugin.toml, the manifest of a model plugin: a typed schema, loaded and validated as a whole.

The schema is generic: names, sources, weights, the named inputs and outputs with their dtypes
and symbolic axes, export and atc settings, expected metrics and ModelZoo status. What a task
needs (a classifier's number of classes and label file, say) lives in the `[task]` table and is
validated by that task's own schema (see modelzoo.tasks). A plugin author meets every mistake as
one line naming the file, the key path and what was expected, instead of a KeyError deep inside
a run.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from modelzoo.errors import UserError

DTYPES = ("float32", "float16", "uint8", "int8", "int32", "int64", "bool")
Status = Literal["OK", "POK", "NOK", "PERFECT"]
COMPARE_KINDS = ("scores", "values", "labels")
# Which compare kinds each tolerance key applies to.
CHECK_KEYS = {"atol": ("scores", "values"), "min_cosine": ("scores", "values"), "min_agreement": ("scores",),
              "min_equal": ("labels",), "class_axis": ("scores",)}


def default_compare(dtype: str, shape: list[int | str] | tuple[int | str, ...]) -> str:
    """Integer and bool outputs are labels; float outputs with a fixed axis 1 of more than one
    entry (classes) are scores; other float outputs are values."""
    if np.dtype(dtype).kind != "f":
        return "labels"
    return "scores" if len(shape) >= 2 and isinstance(shape[1], int) and shape[1] > 1 else "values"


class Schema(BaseModel):
    # strict: "5" is not an integer and 1 is not true; forbid: a misspelled key is an error, not a default.
    model_config = ConfigDict(extra="forbid", strict=True)


class TensorSpec(Schema):
    name: str = Field(min_length=1)
    dtype: Literal[DTYPES]  # type: ignore[valid-type]
    shape: list[PositiveInt | str] = Field(min_length=1)
    layout: str = "ND"
    # Integer inputs (token ids, masks): example inputs for export and parity are drawn from the
    # half-open [low, high), so that they are valid ids rather than random normals.
    range: list[int] | None = Field(default=None, min_length=2, max_length=2)

    @field_validator("shape")
    @classmethod
    def batch_first(cls, shape: list[int | str]) -> list[int | str]:
        if not isinstance(shape[0], str):
            raise ValueError('the first axis must be the symbolic batch axis, e.g. ["batch", 3, 224, 224]')
        return shape

    @field_validator("range")
    @classmethod
    def drawable(cls, bounds: list[int] | None, info: ValidationInfo) -> list[int] | None:
        dtype = info.data.get("dtype")
        if bounds is None or dtype is None:
            return bounds
        if np.dtype(dtype).kind not in "iu":
            raise ValueError(f"a range is for integer tensors, not {dtype}")
        low, high = bounds
        if low >= high:
            raise ValueError("must be [low, high) with low < high: values are drawn from low up to high - 1")
        limits = np.iinfo(dtype)
        if low < limits.min or high - 1 > limits.max:
            raise ValueError(f"draws values outside {dtype} ({limits.min}..{limits.max}); "
                             f"the widest is [{limits.min}, {limits.max + 1})")
        return bounds


class OutputSpec(TensorSpec):
    """An output, with how parity compares it (see OutputCheck for the defaults)."""
    compare: Literal[COMPARE_KINDS] | None = None  # type: ignore[valid-type]
    atol: float | None = Field(default=None, ge=0)
    min_cosine: float | None = Field(default=None, ge=-1, le=1)
    min_agreement: float | None = Field(default=None, ge=0, le=1)
    min_equal: float | None = Field(default=None, ge=0, le=1)
    class_axis: int | None = Field(default=None, ge=1)

    @model_validator(mode="after")
    def keys_fit_the_kind(self) -> OutputSpec:
        kind = self.compare or default_compare(self.dtype, self.shape)
        if kind == "scores" and np.dtype(self.dtype).kind != "f":
            raise ValueError(f'compare = "scores" needs a float output, not {self.dtype}; use "labels"')
        if kind == "scores" and self.class_axis is not None and self.class_axis >= len(self.shape):
            raise ValueError(f"class_axis {self.class_axis} is beyond the output's {len(self.shape)} axes")
        for key in ("atol", "min_cosine", "min_agreement", "min_equal", "class_axis"):
            if getattr(self, key) is not None and kind not in CHECK_KEYS[key]:
                raise ValueError(f'{key} applies to compare = {" or ".join(map(repr, CHECK_KEYS[key]))} '
                                 f'outputs; this one is compared as "{kind}"')
        return self


class SourceSpec(Schema):
    repo: str
    commit: str
    patches: list[str] = []


class WeightsSpec(Schema):
    file: str
    url: str
    size: PositiveInt | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")


class ExportSpec(Schema):
    opset: int = Field(default=13, ge=7)


class AtcSpec(Schema):
    framework: int = 5
    input_format: Literal["NCHW", "NHWC", "ND", "NCDHW"] = "ND"
    log: Literal["debug", "info", "warning", "error", "null"] = "error"
    extra_flags: list[str] = []
    keep_dtype: list[str] = []  # ONNX op names atc keeps in their own precision (a `modelzoo compare --fix`)


class Int8Spec(Schema):
    ignored: list[str] = []  # ONNX op names int8 quantisation leaves in float (a `modelzoo compare --fix`)


class PerfSpec(Schema):
    chip: str
    fps: dict[str, float]
    reference: bool

    @field_validator("fps")
    @classmethod
    def batch_sizes(cls, fps: dict[str, float]) -> dict[str, float]:
        if not all(k.isdigit() for k in fps):
            raise ValueError("keys must be batch sizes, e.g. { 1 = 59.2, 4 = 76.0 }")
        return fps


class ExpectedSpec(Schema):
    metrics: dict[str, float] = {}     # metric name -> the published value
    tolerance: dict[str, float] = {}   # metric name -> how far a measurement may fall short
    source: str = ""
    perf: list[PerfSpec] = []

    @model_validator(mode="after")
    def tolerances_name_metrics(self) -> ExpectedSpec:
        unknown = sorted(set(self.tolerance) - set(self.metrics))
        if unknown:
            raise ValueError(f"tolerance given for {', '.join(unknown)}, which expected.metrics does not list")
        return self


class TaskSpec(BaseModel):
    # The rest of the table belongs to the task and is checked by its own schema.
    model_config = ConfigDict(extra="allow", strict=True)
    kind: str


class StatusSpec(Schema):
    FuncStatus: Status
    PrecisionStatus: Status
    PerfStatus: Status
    AutoTune: Status | None = None
    ModelConvert: Status | None = None
    QuantStatus: Status | None = None


class ManifestSpec(Schema):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    summary: str
    paper: str = ""
    plugin: str
    task: TaskSpec
    source: SourceSpec | None = None
    weights: WeightsSpec | None = None
    inputs: list[TensorSpec] = Field(min_length=1)
    outputs: list[OutputSpec] = Field(min_length=1)
    preprocess: dict[str, Any] = {}  # the plugin's own preprocessing parameters, read by its code
    export: ExportSpec = ExportSpec()
    atc: AtcSpec = AtcSpec()
    int8: Int8Spec = Int8Spec()
    expected: ExpectedSpec = ExpectedSpec()
    status: StatusSpec

    @model_validator(mode="after")
    def unique_tensor_names(self) -> ManifestSpec:
        names = [t.name for t in (*self.inputs, *self.outputs)]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"input and output names must be unique; {', '.join(twice)} appears twice")
        return self


@dataclass(frozen=True)
class OutputCheck:
    """How parity compares one output with torch's, every default filled in (docs/plugin-guide.md)."""
    compare: str               # "scores", "values" or "labels"
    atol: float = 1e-3         # max |diff| allowed (scores, values)
    min_cosine: float = 0.999  # scores, values
    min_agreement: float = 1.0  # scores: top-1 agreement over the rows whose torch margin is decisive
    min_equal: float = 1.0     # labels: the fraction of equal values
    class_axis: int = 1        # scores: the axis the argmax runs over


@dataclass(frozen=True)
class Tensor:
    name: str
    dtype: str
    layout: str
    shape: tuple[int | str, ...]
    range: tuple[int, int] | None = None
    check: OutputCheck | None = None  # outputs only

    @property
    def symbolic_axes(self) -> dict[int, str]:
        """Axis index -> name for every axis whose size is chosen at run time (the batch first)."""
        return {i: d for i, d in enumerate(self.shape) if isinstance(d, str)}

    def concrete_shape(self, batch: int) -> tuple[int, ...]:
        """The shape with the batch axis set to `batch`; other symbolic axes must have a size by then."""
        if any(isinstance(d, str) for d in self.shape[1:]):
            raise UserError(f"tensor '{self.name}' has symbolic axes besides the batch ({list(self.shape)}); "
                            "give them fixed sizes in the manifest for a backend that needs static shapes")
        return (batch, *self.shape[1:])


@dataclass(frozen=True)
class Manifest:
    path: Path
    name: str
    summary: str
    paper: str
    plugin: str
    task: dict[str, Any]            # {"kind": ..., and the task's own keys}
    source: dict[str, Any] | None
    weights: dict[str, Any] | None
    inputs: tuple[Tensor, ...]
    outputs: tuple[Tensor, ...]
    preprocess: dict[str, Any]
    export: dict[str, Any]
    atc: dict[str, Any]
    expected: dict[str, Any]
    status: dict[str, str]
    int8: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def root(self) -> Path:
        """The plugin's directory: relative paths in the manifest (patches) start here."""
        return self.path.parent

    def problem(self, key: str, expected: str, value: Any) -> UserError:
        """The one-line error for a key of this manifest, for checks made after loading (task tables)."""
        return UserError(f"{self.path}: key '{key}' {expected}, got {value!r}; fix the manifest")


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a plugin.toml; any problem is one UserError line naming file and key."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{path}: manifest not found; every plugin needs a plugin.toml") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML ({exc}); fix the syntax") from None
    spec = validate(ManifestSpec, data, path)

    def tensors(specs: list[TensorSpec]) -> tuple[Tensor, ...]:
        return tuple(Tensor(t.name, t.dtype, t.layout, tuple(t.shape), tuple(t.range) if t.range else None,
                            output_check(t) if isinstance(t, OutputSpec) else None)
                     for t in specs)

    dump = spec.model_dump(exclude_none=True)
    return Manifest(
        path=path.resolve(), name=spec.name, summary=spec.summary, paper=spec.paper, plugin=spec.plugin,
        task=dump["task"], source=dump.get("source"), weights=dump.get("weights"),
        inputs=tensors(spec.inputs), outputs=tensors(spec.outputs), preprocess=spec.preprocess,
        export=dump["export"], atc=dump["atc"], expected=dump["expected"], status=dump["status"],
        int8=dump["int8"], raw=data,
    )


def output_check(spec: OutputSpec) -> OutputCheck:
    """The output's check: the keys its manifest gives, defaults for the rest."""
    given = {key: getattr(spec, key) for key in CHECK_KEYS if getattr(spec, key) is not None}
    return OutputCheck(compare=spec.compare or default_compare(spec.dtype, spec.shape), **given)


def validate(schema: type[BaseModel], data: Any, path: Path, prefix: str = "") -> Any:
    """`schema` validated from `data`, or the first problem as one UserError line."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise UserError(describe(exc.errors()[0], path, prefix)) from None


def describe(error: dict[str, Any], path: Path, prefix: str = "") -> str:
    """One pydantic error as 'FILE: key 'a.b[0].c' <what was expected>, got <value>; fix the manifest'."""
    key = prefix
    for part in error["loc"]:
        if isinstance(part, int):
            key += f"[{part}]"
        elif not _is_type_tag(str(part)):
            key += f".{part}" if key else str(part)
    if error["type"] == "missing":
        return f"{path}: key '{key}' is missing; fix the manifest"
    if error["type"] == "extra_forbidden":
        return f"{path}: key '{key}' is not a manifest key (misspelled?); fix the manifest"
    message = error["msg"].removeprefix("Value error, ")
    got = repr(error["input"])
    got = got if len(got) <= 80 else got[:77] + "..."
    return f"{path}: key '{key or '(top level)'}': {message}, got {got}; fix the manifest"


def _is_type_tag(part: str) -> bool:
    """pydantic names the member of a union it tried ('constrained-int', 'str'): not a key."""
    return "-" in part or "[" in part or part in {"int", "str", "float", "bool"}
