"""`python3 -m ais_bench` as a subprocess: inference over .bin files (--io files), pure inference.

Files mode lays out, under the run's output dir:
    ascend/input/device<D>/<stem>.bin        inputs, one file per sample (deleted after success
                                             unless --keep-bin; kept after a failure); a model
                                             with several inputs has one folder per input,
                                             device<D>/<input name>/<stem>.bin (like `modelzoo
                                             preprocess`), all passed to --input
    ascend/output/device<D>/<stem>_<i>.bin   ais_bench's results, one file per model output i
    ascend/output/device<D>_summary.json     its summary, beside the result folder
    ascend/ais_bench-device<D>.log           its console
    ascend/state.json                        the .om and a digest of each input
All batches are written to files first, then one ais_bench process per device runs over its own
share, all devices at once (as ModelZoo's scripts do: preprocess everything, then infer once).
That needs disk for the whole input set (602 KB per 224x224 image) but loads the model once.
A rerun only sends the images without a result from the same .om and the same input bytes, so
an interrupted run resumes; results of another .om are cleared first.

ais_bench vets every path it is given (paths.py): the folders here are made 0750 and the input
files 0640 whatever the umask, every path is absolute and resolved, and ais_bench runs in
`ascend/` because it checks --output_dirname as a path relative to its working folder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modelzoo.backends.ascend.ais_parse import (
    ConsoleReport,
    find_summary,
    parse_console,
    parse_summary_json,
)
from modelzoo.backends.ascend.paths import resolved, secure_dir, secure_file
from modelzoo.backends.ascend.tools import run_tool
from modelzoo.backends.base import FixedAxes, Session
from modelzoo.core import Batch
from modelzoo.errors import UserError
from modelzoo.fileio import atomic_write_json
from modelzoo.manifest import Manifest

log = logging.getLogger(__name__)

# ais_bench names results `<stem of the first input's file>_<output index>.<outfmt>`.
RESULT_FILE = re.compile(r"(.+)_([0-9]+)\.bin")
STATE_FILE = "state.json"  # the .om and the digest of every input the results come from
LEGAL_NAME = re.compile(r"[_A-Za-z0-9.-]+")
AIS_LOOP_MAX = 100000  # ais_bench's --loop limit (args_check.py)


def ais_bench_command(om: Path, batch_size: int, dynamic: bool, device: str,
                      input_dirs: list[Path] | None = None, output_root: Path | None = None,
                      dirname: str | None = None, loop: int | None = None) -> list[str]:
    # ais_bench is installed into the Python that runs modelzoo, so run it with this one.
    cmd = [sys.executable, "-m", "ais_bench", "--model", str(om)]
    if input_dirs is not None:
        # One folder per model input, in the model's input order; files pair up by name.
        cmd += ["--input", ",".join(str(d) for d in input_dirs)]
    if output_root is not None:
        cmd += ["--output", str(output_root), "--output_dirname", str(dirname), "--outfmt", "BIN"]
    if loop is not None:
        cmd += ["--loop", str(loop)]
    cmd += ["--batchsize", str(batch_size), "--device", device]
    if dynamic:
        cmd += ["--dymBatch", str(batch_size)]  # run every batch at the run's gear
    return cmd


def ais_failure(what: str, report: ConsoleReport, output: str, returncode: int,
                log_path: Path | None = None, resume: str = "") -> UserError:
    """One line for a failed ais_bench run; a soc mismatch says how to recompile."""
    if report.soc_mismatch is not None:
        chip, model = report.soc_mismatch
        return UserError(f"{what}: the .om was compiled for {model} but the chip is {chip}; "
                         f"rerun with --soc-version {chip} to recompile it")
    if report.refused is not None:
        # Its front end refused an argument before running: argparse's line names the argument,
        # the [ERROR] line before it says which rule the path broke.
        why = f" ({report.errors[-1]})" if report.errors else ""
        see = f"; its console is in {log_path}" if log_path else ""
        return UserError(f"{what} was refused (exit {returncode}): {report.refused}{why}{see}")
    if report.errors:
        reason = report.errors[-1]
    else:
        lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
        reason = lines[-1] if lines else "no output"
    see = f"; its console is in {log_path}" if log_path else ""
    return UserError(f"{what} failed (exit {returncode}): {reason}{see}{resume}")


class AisFilesSession(Session):
    """Batches -> .bin files -> `python3 -m ais_bench` per device -> `<stem>_0.bin` results."""

    def __init__(self, om: Path, manifest: Manifest, batch_size: int, dynamic: bool,
                 devices: list[int], workdir: Path, keep_files: bool) -> None:
        super().__init__()
        self.om = om
        self.batch_size = batch_size
        self.dynamic = dynamic
        self.devices = devices
        self.keep_files = keep_files
        self.root = resolved(workdir) / "ascend"
        self.input_root = self.root / "input"
        self.output_root = self.root / "output"
        self.input_names = [t.name for t in manifest.inputs]
        # Output i of the model is ais_bench's `<stem>_<i>.bin`: raw little-endian values of the
        # manifest's dtype and one sample's shape.
        # Dynamic axes: the .om is compiled at their largest sizes, every batch padded up to them.
        self.fixed_axes = FixedAxes(manifest, manifest.largest_sizes()) if manifest.axes else None
        self.outputs = [_ResultFormat(t.name, np.dtype(t.dtype), t.concrete_shape(1, manifest.largest_sizes())[1:])
                        for t in manifest.outputs]
        self.fps: float | None = None

    # The pipeline streams batches; ais_bench wants files, so the base class's per-batch
    # padding is not used: ais_bench pads the last batch itself and writes no padding output.
    def run(self, batches: Iterable[Batch]) -> Iterator[tuple[list[str], dict[str, np.ndarray]]]:
        from modelzoo.steps import (
            write_bin,  # the steps module pulls in the pipeline: not at plugin load
        )

        previous = self._read_state()
        existing = self._results(drop_damaged=True)
        shutil.rmtree(self.input_root, ignore_errors=True)  # inputs of an interrupted run
        digests: dict[str, str] = {}
        order: list[list[str]] = []
        real_sizes: list[dict[str, int]] = []
        shares: dict[int, int] = {d: 0 for d in self.devices}
        sent = 0
        for batch in batches:
            order.append(batch.keys)
            inputs, real = self.fixed_axes.pad(batch.inputs) if self.fixed_axes else (batch.inputs, {})
            real_sizes.append(real)
            for i, name in enumerate(batch.keys):
                rows = [inputs[input_name][i] for input_name in self.input_names]
                digests[name] = _digest(rows)
                # Resume only where the results come from this very input (same .om, same bytes).
                if len(existing.get(name, {})) == len(self.outputs) and previous.get(name) == digests[name]:
                    continue
                for stale in existing.pop(name, {}).values():
                    stale.unlink(missing_ok=True)
                device = self.devices[sent % len(self.devices)]  # round robin over devices
                if not shares[device]:
                    for folder in (self.input_root / f"device{device}", *self._input_dirs(device)):
                        secure_dir(folder)
                for folder, row in zip(self._input_dirs(device), rows):
                    secure_file(write_bin(row, folder, _legal_name(name)))
                shares[device] += 1
                sent += 1
        atomic_write_json(secure_dir(self.root) / STATE_FILE, {"om": self.om.name, "inputs": digests})
        total = sum(len(names) for names in order)
        log.info("ascend: %d of %d images already have results in %s; sending %d", total - sent,
                 total, self.output_root, sent)
        if sent:
            self._infer([d for d in self.devices if shares[d]])
        else:
            self.fps = self._summary_fps()
        results = self._results(drop_damaged=False)
        missing = [(n, i) for names in order for n in names for i in range(len(self.outputs))
                   if i not in results.get(n, {})]
        if missing:
            raise UserError(f"ais_bench wrote no result for {len({n for n, _ in missing})} images (first: "
                            f"{missing[0][0]}_{missing[0][1]}.bin) in {self.output_root}; rerun to resume")
        if not self.keep_files:
            shutil.rmtree(self.input_root, ignore_errors=True)
        for names, real in zip(order, real_sizes):
            self.images += len(names)
            outputs = {out.name: np.stack([out.read(results[n][i]) for n in names]) for i, out in enumerate(self.outputs)}
            yield names, self.fixed_axes.trim(outputs, real) if self.fixed_axes else outputs

    def throughput_fps(self) -> float | None:
        return self.fps

    def _input_dirs(self, device: int) -> list[Path]:
        """The folder of each model input on a device, in the model's input order."""
        root = self.input_root / f"device{device}"
        return [root] if len(self.input_names) == 1 else [root / name for name in self.input_names]

    def _read_state(self) -> dict[str, str]:
        """{stem: input digest} of the last run here; results of another .om are cleared."""
        try:
            state = json.loads((self.root / STATE_FILE).read_text())
            if state["om"] == self.om.name and isinstance(state["inputs"], dict):
                return state["inputs"]
        except (OSError, ValueError, KeyError, TypeError):
            pass
        shutil.rmtree(self.output_root, ignore_errors=True)
        return {}

    def _results(self, drop_damaged: bool) -> dict[str, dict[int, Path]]:
        """{stem: {output index: file}} for every complete `<stem>_<i>.bin` under the output folder."""
        found: dict[str, dict[int, Path]] = {}
        for folder, _, files in os.walk(self.output_root):
            for file in sorted(files):
                match = RESULT_FILE.fullmatch(file)
                if match is None or int(match[2]) >= len(self.outputs):
                    continue
                path = Path(folder) / file
                if path.stat().st_size != self.outputs[int(match[2])].nbytes:
                    if drop_damaged:  # cut short by a crash: infer that sample again
                        path.unlink(missing_ok=True)
                    continue
                found.setdefault(match[1], {})[int(match[2])] = path
        return found

    def _infer(self, devices: list[int]) -> None:
        """One ais_bench process per device, all at once; wait for every one, then report."""
        running: list[tuple[int, subprocess.Popen, Path]] = []
        for folder in (self.root, self.input_root, self.output_root,
                       *(self.output_root / f"device{d}" for d in devices)):
            if folder.exists() or folder == self.output_root:
                secure_dir(folder)  # also what an older run or another umask left
        try:
            for device in devices:
                cmd = ais_bench_command(self.om, self.batch_size, self.dynamic, str(device),
                                        self._input_dirs(device), self.output_root, f"device{device}")
                log_path = self.root / f"ais_bench-device{device}.log"
                log.info("running: %s", shlex.join(cmd))
                with open(log_path, "w") as console:
                    process = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT,
                                               cwd=self.root)
                running.append((device, process, log_path))
        except OSError as exc:
            raise UserError(f"cannot start ais_bench: {exc.strerror or exc}; check the "
                            "ais_bench installation") from None
        finally:
            for _, process, _ in running:
                process.wait()
        failures: list[UserError] = []
        rates: list[float] = []
        for device, process, log_path in running:
            text = log_path.read_text(errors="replace")
            report = parse_console(text)
            if process.returncode != 0:
                done = len(self._results(drop_damaged=False))
                failures.append(ais_failure(
                    f"ais_bench on device {device}", report, text, process.returncode, log_path,
                    f"; {done} images have results, kept in {self.output_root}: rerun the same "
                    "command to infer only the rest"))
                continue
            fps = report.fps if report.fps is not None else self._summary_fps([device])
            if fps is not None:
                rates.append(fps)
        if failures:
            raise failures[0]
        # Devices run side by side, so the total is the sum, as ais_bench's multi-device summary.
        self.fps = sum(rates) if len(rates) == len(running) else None

    def _summary_fps(self, devices: list[int] | None = None) -> float | None:
        rates = []
        for device in devices or self.devices:
            path = find_summary(self.output_root, f"device{device}")
            if path is not None:
                rates.append(parse_summary_json(path.read_text(errors="replace"), path)["throughput"])
        return sum(rates) if rates else None


def _legal_name(name: str) -> str:
    """ais_bench reads an input file only when its path passes the same rules as the folders."""
    if not LEGAL_NAME.fullmatch(name):
        raise UserError(f"image {name!r} would be written as an input file ais_bench refuses (it "
                        "allows only A-Z a-z 0-9 _ - . in names); rename the image or use --io stream")
    return name


@dataclass(frozen=True)
class _ResultFormat:
    name: str
    dtype: np.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def read(self, path: Path) -> np.ndarray:
        return np.fromfile(path, dtype=self.dtype.newbyteorder("<")).astype(self.dtype).reshape(self.shape)


def _digest(rows: list[np.ndarray]) -> str:
    """One sample's inputs, each as the bytes written to its .bin file."""
    h = hashlib.blake2b(digest_size=16)
    for row in rows:
        h.update(np.ascontiguousarray(row, dtype=row.dtype.newbyteorder("<")).tobytes())
    return h.hexdigest()


def pure_inference(om: Path, batch_size: int, dynamic: bool, devices: list[int], loop: int,
                   soc_version: str) -> dict:
    """`python3 -m ais_bench --model M --loop N` on all-zero input: the chip's own figures."""
    if not 1 <= loop <= AIS_LOOP_MAX:
        raise UserError(f"--loop {loop} is outside 1..{AIS_LOOP_MAX}, the range ais_bench takes; "
                        "pass a count in it")
    device = ",".join(str(d) for d in devices)
    cmd = ais_bench_command(om, batch_size, dynamic, device, loop=loop)
    result = run_tool(cmd, "ais_bench", None, hint="install the aclruntime and ais_bench wheels")
    text = result.stdout + "\n" + result.stderr
    report = parse_console(text)
    if result.returncode != 0:
        raise ais_failure("ais_bench pure inference", report, text, result.returncode)
    if report.fps is None or not report.compute_ms:
        raise UserError("ais_bench printed no 'NPU_compute_time' / 'throughput' lines; "
                        "run the logged command by hand to see its output")
    return {"fps": report.fps, "batch_size": batch_size, "loop": loop, "device": device,
            "soc_version": soc_version, "om": str(om),
            "npu_compute_time_ms": report.compute_ms[0],
            "per_device": [{"device": d, "fps": fps, "npu_compute_time_ms": stats}
                           for d, fps, stats in zip(devices, report.throughput, report.compute_ms)]}
