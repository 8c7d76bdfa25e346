"""The fake .om file: what the fake atc writes and the fake ais_bench reads.

A real .om is an opaque compiled graph. The fake one is a zip holding the ONNX model bytes (so the
.om still works after the ONNX file is deleted) and a `manifest.json` that records what atc was
asked for: soc_version, input/output descriptions, the gears (batch, image size or dims) and the
full argv.
"""
from __future__ import annotations

import hashlib
import json
import math
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

FORMAT = "modelzoo-fake-om/1"
MANIFEST = "manifest.json"
ONNX_MEMBER = "model.onnx"


@dataclass
class TensorInfo:
    """One model input or output as the compiled model sees it; -1 marks a dynamic axis."""

    name: str
    dtype: str  # numpy dtype name, e.g. "float32"
    shape: list[int]
    format: str = "ND"  # NCHW / NHWC / ND ... as given by --input_format
    # For '~' ranges in --input_shape: per axis [min, max] (max -1 = unbounded); empty when static.
    ranges: list[list[int]] = field(default_factory=list)


@dataclass
class OmManifest:
    soc_version: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    dynamic_batch_sizes: list[int] = field(default_factory=list)  # gears from --dynamic_batch_size
    dynamic_image_size: list[list[int]] = field(default_factory=list)  # [height, width] per gear
    dynamic_dims: list[list[int]] = field(default_factory=list)  # per gear: a value per -1
    input_shape_order: list[str] = field(default_factory=list)  # input names as --input_shape lists them
    dynamic_shape: bool = False  # -1 or n1~n2 axes without --dynamic_batch_size
    argv: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)  # every --flag=value atc accepted
    onnx_path: str = ""  # absolute path of the source ONNX, for information only
    onnx_sha256: str = ""
    format: str = FORMAT


    def profiles(self) -> list[dict[str, list[int]]]:
        """Every gear as the input shapes it runs (empty without gears). Dims gears fill the -1s
        in --input_shape's order of the inputs, as ACL's aclmdlGetInputDynamicDims lists them."""
        by_name = {t.name: t.shape for t in self.inputs}
        order = self.input_shape_order or list(by_name)
        if self.dynamic_batch_sizes:
            return [{n: [g if d == -1 else d for d in s] for n, s in by_name.items()}
                    for g in self.dynamic_batch_sizes]
        gears = self.dynamic_dims or self.dynamic_image_size
        result = []
        for gear in gears:
            values = iter(gear)
            shapes = {}
            for name in order:
                hw = iter(gear)  # an image-size gear gives every input its height, then width
                shapes[name] = [d if d != -1 else next(hw if self.dynamic_image_size else values)
                                for d in by_name[name]]
            result.append({n: shapes.get(n, s) for n, s in by_name.items()})
        return result

    def largest_profile(self) -> dict[str, list[int]] | None:
        """The gear with the most input elements, which buffers are sized for."""
        profiles = self.profiles()
        if not profiles:
            return None
        return max(profiles, key=lambda p: sum(math.prod(s) for s in p.values()))


def write_om(path: Path, manifest: OmManifest, onnx_bytes: bytes) -> None:
    manifest.onnx_sha256 = hashlib.sha256(onnx_bytes).hexdigest()
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(MANIFEST, json.dumps(asdict(manifest), indent=2))
        zf.writestr(ONNX_MEMBER, onnx_bytes)


def read_om(path: Path) -> tuple[OmManifest, bytes]:
    """Raise ValueError when the file is not a fake .om (a real .om, a truncated file ...)."""
    try:
        with zipfile.ZipFile(path) as zf:
            raw = json.loads(zf.read(MANIFEST))
            onnx_bytes = zf.read(ONNX_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise ValueError(f"{path} is not a fake .om written by the fake atc: {exc}") from exc
    if raw.get("format") != FORMAT:
        raise ValueError(f"{path} has format {raw.get('format')!r}, expected {FORMAT!r}")
    raw["inputs"] = [TensorInfo(**t) for t in raw["inputs"]]
    raw["outputs"] = [TensorInfo(**t) for t in raw["outputs"]]
    return OmManifest(**raw), onnx_bytes
