"""The "ascend" backend (a built-in plugin): ATC compiles, ais_bench runs, on an Ascend NPU."""
from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import logging
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from modelzoo.backends.ascend import npu_smi, paths
from modelzoo.backends.ascend.ais_cli import AisFilesSession, pure_inference
from modelzoo.backends.ascend.ais_session import AisStreamSession
from modelzoo.backends.ascend.atc import compile_om, precision_mode
from modelzoo.backends.ascend.gears import GearedAxes, gear_list
from modelzoo.backends.ascend.options import AscendOptions, add_options, options_from
from modelzoo.backends.ascend.tools import parse_devices
from modelzoo.backends.base import Backend, BackendSettings, Session
from modelzoo.errors import UserError
from modelzoo.hookspecs import hookimpl
from modelzoo.precision import kept_ops

if TYPE_CHECKING:
    from modelzoo.artifacts import Artifacts

log = logging.getLogger(__name__)

AIS_BENCH_HINT = ("install the aclruntime and ais_bench wheels built from Ascend's tools repository "
                  "(https://gitee.com/ascend/tools, ais-bench_workload/tool/ais_bench) into this Python")


# atc takes one kind of gears per model: batch gears or dims / image-size gears, never both.
_BATCH_AND_AXES = ("--dynamic-batch cannot be combined with the dynamic axes of {path} (atc compiles "
                   "batch gears or axis gears, not both); drop --dynamic-batch: every batch runs at --bs")


class AscendBackend(Backend):
    name = "ascend"
    priority = 50  # above onnxruntime (20): on an Ascend host `auto` means the NPU
    export_variant = "ascend"  # the plugin's graph laid out for the chip (e.g. LV-ViT's softmax)
    description = "Ascend NPU: ATC-compiled .om run with ais_bench (auto: atc's force_fp16)"
    accelerator = "NPU"  # Ray's resource name for an Ascend NPU
    precisions = ("fp32", "fp16")

    def auto_precision(self) -> str:
        return "fp16"

    def add_options(self, group, command: str) -> None:
        add_options(group, command)

    def options_from(self, args) -> AscendOptions:
        return options_from(args)

    def on_actor(self, options: AscendOptions | None) -> AscendOptions:
        # Ray hands each actor its own NPU, visible to it as device 0 (ASCEND_RT_VISIBLE_DEVICES).
        return replace(_options(options), device="0")

    def __init__(self) -> None:
        self._chips: list[npu_smi.Chip] | None = None
        self._npu_smi_version = ""

    def unavailable_reason(self) -> str | None:
        missing = []
        tools = [tool for tool in ("npu-smi", "atc") if shutil.which(tool) is None]
        if tools:
            missing.append(f"{' and '.join(tools)} not on PATH: {npu_smi.CANN_HINT}")
        if not _importable("ais_bench"):
            missing.append(f"ais_bench is not importable: {AIS_BENCH_HINT}")
        return "; ".join(missing) or None

    def versions(self) -> dict[str, str]:
        """Package versions, the CANN version file beside atc, npu-smi's banner; no compiling."""
        found: dict[str, str] = {}
        for dist in ("ais_bench", "aclruntime"):
            try:
                found[dist] = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                pass
        cann = _cann_version()
        if cann:
            found["cann"] = cann
        if self._chips is None and shutil.which("npu-smi"):
            try:
                self._read_chips()
            except UserError:
                pass  # versions are for the report; a broken npu-smi was reported elsewhere
        if self._npu_smi_version:
            found["npu-smi"] = self._npu_smi_version
        return found

    def soc_version(self, options: AscendOptions | None, devices: list[int]) -> str:
        """--soc-version, else the chip kind of the run's devices per `npu-smi info`."""
        if _options(options).soc_version:
            return _options(options).soc_version
        soc = npu_smi.choose_soc(self._read_chips(), devices)
        log.info("ascend: compiling for %s (from npu-smi info; --soc-version overrides)", soc)
        return soc

    def _read_chips(self) -> list[npu_smi.Chip]:
        if self._chips is None:
            self._chips, self._npu_smi_version = npu_smi.read_chips()
        return self._chips

    def check_paths(self, settings: BackendSettings, cache_dir: Path) -> None:
        """ais_bench's path rules, applied to the run's output folder and the .om cache."""
        paths.check_paths(settings.workdir, cache_dir)

    def compile(self, artifacts: Artifacts, batch_size: int,
                settings: BackendSettings) -> tuple[Path, list[int], tuple[int, ...] | None, str]:
        """(.om, devices, batch gears or None, soc_version) for a run; the .om's path resolved
        and its mode one that ais_bench accepts (a cached one may come from an older run). A model
        with dynamic axes is compiled for their gears (gears.py)."""
        options = _options(settings.options)
        devices = parse_devices(options.device)
        if options.dynamic_batch and artifacts.manifest.axes:
            raise UserError(_BATCH_AND_AXES.format(path=artifacts.manifest.path))
        gears = _gears(batch_size, options.dynamic_batch)
        soc = self.soc_version(options, devices)
        keep = kept_ops(artifacts.manifest, "atc", settings.keep_fp32)
        axis_gears = gear_list(artifacts.manifest) if artifacts.manifest.axes else None
        om = paths.secure_file(paths.resolved(compile_om(artifacts, batch_size, soc, gears, settings.precision,
                                                         keep, axis_gears)))
        return om, devices, gears, soc

    def open(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> Session:
        options = _options(settings.options)
        io = _io_mode(options.io)
        om, devices, gears, _ = self.compile(artifacts, batch_size, settings)
        log.info("ascend: %s on device(s) %s, --io %s", om.name, ",".join(map(str, devices)), io)
        axes = _geared_axes(artifacts)
        if io == "stream":
            session = AisStreamSession(om, artifacts.manifest, batch_size, gears is not None, devices, axes)
        else:
            session = AisFilesSession(om, artifacts.manifest, batch_size, gears is not None, devices,
                                      settings.workdir, options.keep_files, axes)
        mode = precision_mode(artifacts.manifest, settings.precision)
        session.precision = "fp32" if mode == "force_fp32" else "fp16"
        session.precision_note = f"atc --precision_mode={mode}"
        session.kept_ops = kept_ops(artifacts.manifest, "atc", settings.keep_fp32)
        session.identity = f"ascend {om.name}"
        return session

    def prepare(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings) -> None:
        # The ONNX atc starts from; the .om depends on the chip, so each Ascend host compiles its own.
        artifacts.onnx(None if _options(settings.options).dynamic_batch else batch_size)

    def benchmark(self, artifacts: Artifacts, batch_size: int, settings: BackendSettings,
                  warmup: int, iters: int, sizes: dict[str, int] | None = None) -> dict[str, float | str | None]:
        """ais_bench's own figures on all-zero input (`--loop iters`; it warms up by itself).

        Dynamic axes run at the largest gear, whatever `sizes` asks.

        fps is ais_bench's throughput line (batch / mean NPU compute time, summed over devices);
        latency percentiles are its NPU compute times (it prints no p90).
        """
        om, devices, gears, soc = self.compile(artifacts, batch_size, settings)
        figures = pure_inference(om, batch_size, gears is not None, devices, iters, soc,
                                 _geared_axes(artifacts))
        ms = figures["npu_compute_time_ms"]
        mode = precision_mode(artifacts.manifest, settings.precision)
        return {"fps": figures["fps"], "latency_ms_p50": ms["median"], "latency_ms_p90": None,
                "latency_ms_p99": ms.get("p99"), "chip": soc,
                "precision": "fp32" if mode == "force_fp32" else "fp16"}


def _options(options: AscendOptions | None) -> AscendOptions:
    """The run's Ascend options; a run started from Python without them gets the flags' defaults."""
    return options or AscendOptions()


def _geared_axes(artifacts: Artifacts) -> GearedAxes | None:
    manifest = artifacts.manifest
    return GearedAxes(manifest, gear_list(manifest)) if manifest.axes else None


def _gears(batch_size: int, dynamic_batch: tuple[int, ...] | None) -> tuple[int, ...] | None:
    if not dynamic_batch:
        return None
    gears = tuple(sorted(set(dynamic_batch)))
    if batch_size not in gears:
        raise UserError(f"--bs {batch_size} is not one of --dynamic-batch "
                        f"{','.join(map(str, gears))}; pick a batch size from that list")
    return gears


def _io_mode(io: str) -> str:
    if io in ("files", "stream"):
        return io
    if io != "auto":
        raise UserError(f"--io {io!r} is not one of auto, files, stream")
    try:
        importlib.import_module("ais_bench.infer.interface")
    except ImportError as exc:
        log.info("ascend: ais_bench.infer.interface does not import (%s); using --io files", exc)
        return "files"
    return "stream"


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a broken or half-imported package
        return False


def _cann_version() -> str:
    """`Version=` from the version.info CANN keeps beside atc's bin folder, if any."""
    atc = shutil.which("atc")
    if atc is None:
        return ""
    bin_dir = Path(atc).resolve().parent
    for info in (bin_dir.parent / "version.info", bin_dir.parent.parent / "version.info"):
        try:
            match = re.search(r"^\s*Version\s*=\s*(\S+)", info.read_text(errors="replace"), re.MULTILINE)
        except OSError:
            continue
        if match:
            return match.group(1)
    return ""


@hookimpl
def modelzoo_register_backends(register):
    register(AscendBackend())
