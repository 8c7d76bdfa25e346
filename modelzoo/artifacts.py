"""The forms of one model a backend can start from, each built on first use and cached."""
from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from modelzoo import __version__
from modelzoo.cache import Cache, digest
from modelzoo.core import ModelEntry
from modelzoo.fileio import atomic_write_json
from modelzoo.manifest import Manifest, Tensor
from modelzoo.source import read_marker
from modelzoo.weights import RANDOM_SEED, Weights, sha256_of

if TYPE_CHECKING:
    import numpy as np
    import torch

# torch, onnx and the exporter are imported only when something must be built: a warm rerun whose
# artifacts are all cached never pays for importing them.

log = logging.getLogger(__name__)


class Artifacts:
    """The torch model and its ONNX exports for one model, weights and export variant.

    `parity` holds the torch-vs-ONNX figures of the last ONNX handed out (measured when it was
    built, read back from the cache otherwise) and under "check" their judgement against the
    manifest's per-output tolerances. An ONNX that falls short stops with a ParityError, unless
    `parity_check` is False: then it is handed out and the report says the check was not enforced.
    """

    def __init__(self, entry: ModelEntry, weights: Weights, cache: Cache, variant: str = "standard",
                 simplify: bool = True, quiet: bool = False, upstream: Path | None = None,
                 parity_check: bool = True):
        self.entry = entry
        self.weights = weights
        self.cache = cache
        self.variant = variant
        self.simplify = simplify
        self.upstream = upstream  # a checkout from `modelzoo source`: build from upstream's code
        self.quiet = quiet or not sys.stderr.isatty()
        self.parity_check = parity_check
        self.parity: dict[str, Any] | None = None
        self._model: torch.nn.Module | None = None

    @property
    def manifest(self) -> Manifest:
        return self.entry.manifest

    def key(self, **extra: Any) -> dict[str, Any]:
        """Everything an artifact of this model depends on, plus `extra`; backends extend it."""
        m = self.manifest
        return {"model": m.name,
                "manifest": {"inputs": [asdict(t) for t in m.inputs], "outputs": [_measured(t) for t in m.outputs],
                             "axes": {n: asdict(a) for n, a in m.axes.items()}, "export": m.export},
                "model_code": plugin_code_digest(self.entry),
                "upstream": read_marker(self.upstream) if self.upstream else None,
                "weights": self.weights.identity, "variant": self.variant,
                "modelzoo": __version__, "torch": version("torch"), "onnx": version("onnx"), **extra}

    def torch_model(self) -> torch.nn.Module:
        from modelzoo.checkpoint import apply_state_dict, read_state_dict

        if self._model is None:
            if self.upstream is not None:
                model = self.entry.build_upstream(self.upstream, self.variant)
            else:
                model = self.entry.build(self.variant)
            if self.weights.random:
                self.entry.init_random(model, RANDOM_SEED)
            else:
                apply_state_dict(model, read_state_dict(self.weights.path), self.weights.path)
            self._model = model.eval()
        return self._model

    def onnx(self, batch_size: int | None) -> Path:
        """The ONNX file for a static batch size, or with a dynamic batch axis when None.

        The export itself has a dynamic batch and is shared by every batch size; onnxsim then
        fixes the run's shape. Without simplification a static batch is exported directly.
        """
        from modelzoo.export import simplify_onnx

        opset = self.manifest.export["opset"]
        export_batch = None if self.simplify else batch_size
        tag = "dynamic" if export_batch is None else export_batch
        with tqdm(total=3, desc="export", unit="step", disable=self.quiet) as bar:
            path = self.cache.artifact(
                f"{self.manifest.name}-{self.variant}-bs{tag}", ".onnx",
                self.key(artifact="onnx", opset=opset, batch=tag),
                lambda tmp: self._export(tmp, export_batch), "ONNX export")
            bar.update()
            if self.simplify:
                raw, tag = path, "dynamic" if batch_size is None else batch_size
                path = self.cache.artifact(
                    f"{self.manifest.name}-{self.variant}-bs{tag}-sim", ".onnx",
                    self.key(artifact="onnxsim", source=raw.name, batch=tag, onnxsim=version("onnxsim")),
                    lambda tmp: simplify_onnx(raw, tmp, self.manifest, batch_size),
                    "simplified ONNX")
            bar.update()
            self.parity = self._parity(path, batch_size)
            bar.update()
        self._judge(path)
        return path

    def example_inputs(self, batch_size: int, seed: int, sizes: dict[str, int] | None = None
                       ) -> dict[str, np.ndarray]:
        """Seeded inputs for export, parity and benchmarks: the plugin's own, or the manifest's shapes;
        dynamic axes at `sizes` (each axis's example where not given)."""
        if self.entry.example_inputs is not None:
            if not self.manifest.axes:
                return self.entry.example_inputs(batch_size, seed)
            return self.entry.example_inputs(batch_size, seed, self.manifest.example_sizes(**(sizes or {})))
        from modelzoo.export import example_inputs

        return example_inputs(self.manifest, batch_size, seed, sizes)

    def _export(self, path: Path, batch_size: int | None) -> None:
        from modelzoo.export import check_onnx, export_onnx

        export = self.entry.export or export_onnx
        export(self.torch_model(), self.manifest, path, batch_size, self.example_inputs(batch_size or 2, seed=0))
        check_onnx(path, self.manifest)

    def _parity(self, onnx_path: Path, batch_size: int | None) -> dict:
        record = onnx_path.with_name(onnx_path.name + ".parity.json")
        if record.exists():
            return json.loads(record.read_text())
        from modelzoo.export import measure_parity
        from modelzoo.parity import describe

        parity = measure_parity(self.torch_model(), onnx_path, self.manifest, batch_size, self.example_inputs)
        log.info("parity torch vs ONNX: %s", describe(parity, cosine_digits=8))
        atomic_write_json(record, parity)
        return parity

    def _judge(self, onnx_path: Path) -> None:
        """The parity figures against the manifest's tolerances: stop, or (not enforced) say so."""
        from modelzoo.parity import ParityError, degenerate_outputs, failures

        short = failures(self.manifest, self.parity)
        self.parity["check"] = {"enforced": self.parity_check, "passed": not short, "failures": short}
        if self.parity["degenerate"]:
            log.warning("parity torch vs ONNX proved nothing: %s did not vary across the parity inputs; "
                        "widen the inputs' range in %s", ", ".join(degenerate_outputs(self.parity)),
                        self.manifest.path)
        if not short:
            return
        text = (f"parity torch vs ONNX Runtime of {onnx_path.name} ({self.parity['images']} samples): "
                f"{'; '.join(short)}")
        if self.parity_check:
            raise ParityError(text, f"fix the export, or set the output's tolerance in [[outputs]] of "
                                    f"{self.manifest.path}, or pass --no-parity-check to go on regardless")
        log.warning("%s; going on: --no-parity-check", text)


# Parity thresholds: the cached figures are judged against them anew on every use (_judge), so a
# changed tolerance needs no new export.
THRESHOLDS = ("atol", "min_cosine", "min_agreement", "min_equal")


def _measured(output: Tensor) -> dict[str, Any]:
    """An output as far as the export and its parity figures depend on it: its thresholds left out."""
    found = asdict(output)
    if found["check"] is not None:
        found["check"] = {k: v for k, v in found["check"].items() if k not in THRESHOLDS}
    return found


def plugin_code_digest(entry: ModelEntry) -> str:
    """A digest of the plugin's own Python files, so that editing its model code invalidates exports.

    The files are those of the package that defines the entry's `build` (its directory, with
    subfolders), or the one module file of a single-module plugin; nothing else installed beside it.
    """
    module = sys.modules[entry.build.__module__]
    source = Path(module.__file__)
    files = sorted(source.parent.rglob("*.py")) if module.__package__ else [source]
    return digest({str(f.relative_to(source.parent)): sha256_of(f) for f in files})
