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
from modelzoo.backends.ascend.gears import Gear, GearedAxes, ais_args
from modelzoo.backends.ascend.gears import tag as gear_tag
from modelzoo.backends.ascend.paths import resolved, secure_dir, secure_file
from modelzoo.backends.ascend.tools import run_tool
from modelzoo.backends.base import FixedAxes, Session
from modelzoo.core import Arrays, Batch
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
                      dirname: str | None = None, loop: int | None = None,
                      gear_args: list[str] | None = None) -> list[str]:
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
    return cmd + (gear_args or [])  # the axis gear of this call: --dymDims or --dymHW


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
    """Batches -> .bin files -> `python3 -m ais_bench` per device (and per gear) -> results."""

    def __init__(self, om: Path, manifest: Manifest, batch_size: int, dynamic: bool,
                 devices: list[int], workdir: Path, keep_files: bool, axes: GearedAxes | None = None) -> None:
        super().__init__()
        self.om = om
        self.manifest = manifest
        self.batch_size = batch_size
        self.dynamic = dynamic
        self.devices = devices
        self.keep_files = keep_files
        self.root = resolved(workdir) / "ascend"
        self.input_root = self.root / "input"
        self.output_root = self.root / "output"
        self.input_names = [t.name for t in manifest.inputs]
        # Dynamic axes: each batch is padded up to the smallest gear that holds it; the samples of
        # a gear go through their own ais_bench call (folders `device<D>-<gear>`).
        self.axes = axes
        self.fps: float | None = None

    def _formats(self, gear: Gear | None) -> list[_ResultFormat]:
        """Output i of the model is ais_bench's `<stem>_<i>.bin`: raw little-endian values of the
        manifest's dtype and one sample's shape at the gear."""
        return [_ResultFormat(t.name, np.dtype(t.dtype), t.concrete_shape(1, gear)[1:]) for t in self.manifest.outputs]

    def _gear(self, dirname: str) -> Gear | None:
        """The gear of a folder `device<D>` or `device<D>-<gear tag>`."""
        if self.axes is None:
            return None
        wanted = dirname.partition("-")[2]
        return next((g for g in self.axes.gears if gear_tag(g) == wanted), self.axes.gears[-1])

    def sizes_for(self, inputs: Arrays) -> Gear | None:
        return self.axes.gear_of(inputs) if self.axes else None

    def _dirname(self, device: int, gear: Gear | None) -> str:
        return f"device{device}-{gear_tag(gear)}" if gear else f"device{device}"

    # The pipeline streams batches; ais_bench wants files, so the base class's per-batch
    # padding is not used: ais_bench pads the last batch itself and writes no padding output.
    def run(self, batches: Iterable[Batch]) -> Iterator[tuple[list[str], dict[str, np.ndarray]]]:
        previous = self._read_state()
        existing = self._results(drop_damaged=True)
        shutil.rmtree(self.input_root, ignore_errors=True)  # inputs of an interrupted run
        digests: dict[str, str] = {}
        order: list[tuple[list[str], dict[str, int], Gear | None]] = []
        shares: dict[tuple[int, str], int] = {}
        sent = 0
        for batch in batches:
            gear = self.axes.gear_of(batch.inputs) if self.axes else None
            inputs, real = FixedAxes(self.manifest, gear).pad(batch.inputs) if gear else (batch.inputs, {})
            order.append((batch.keys, real, gear))
            for i, name in enumerate(batch.keys):
                rows = [inputs[input_name][i] for input_name in self.input_names]
                digests[name] = _digest(rows)
                # Resume only where the results come from this very input (same .om, same bytes).
                if len(existing.get(name, {})) == len(self.manifest.outputs) and previous.get(name) == digests[name]:
                    continue
                for stale in existing.pop(name, {}).values():
                    stale.unlink(missing_ok=True)
                device = self.devices[sent % len(self.devices)]  # round robin over devices
                self._write(device, gear, rows, name, first=(device, self._dirname(device, gear)) not in shares)
                share = (device, self._dirname(device, gear))
                shares[share] = shares.get(share, 0) + 1
                sent += 1
        atomic_write_json(secure_dir(self.root) / STATE_FILE, {"om": self.om.name, "inputs": digests})
        total = sum(len(names) for names, _, _ in order)
        log.info("ascend: %d of %d images already have results in %s; sending %d", total - sent,
                 total, self.output_root, sent)
        self.fps = self._infer_all(shares) if sent else self._summary_fps()
        yield from self._collect(order)

    def _write(self, device: int, gear: Gear | None, rows: list[np.ndarray], name: str, first: bool) -> None:
        from modelzoo.steps import (
            write_bin,  # the steps module pulls in the pipeline: not at plugin load
        )

        dirs = self._input_dirs(device, gear)
        if first:
            for folder in (self.input_root / f"device{device}", dirs[0].parent if gear and len(dirs) > 1 else None,
                           *dirs):
                if folder is not None:
                    secure_dir(folder)
        for folder, row in zip(dirs, rows):
            secure_file(write_bin(row, folder, _legal_name(name)))

    def _infer_all(self, shares: dict[tuple[int, str], int]) -> float | None:
        """One round of ais_bench calls per gear used (its devices side by side); the images per
        second of the whole: samples over the summed time of the rounds."""
        rounds: dict[str, list[int]] = {}
        for device, dirname in shares:
            rounds.setdefault(dirname.partition("-")[2], []).append(device)
        seconds = 0.0
        for tag, devices in rounds.items():
            fps = self._infer(devices, self._gear(f"device-{tag}") if tag else None)
            if fps is None:
                return None
            seconds += sum(n for (d, name), n in shares.items() if name.partition("-")[2] == tag) / fps
        return sum(shares.values()) / seconds if seconds else None

    def _collect(self, order: list[tuple[list[str], dict[str, int], Gear | None]]
                 ) -> Iterator[tuple[list[str], dict[str, np.ndarray]]]:
        results = self._results(drop_damaged=False)
        outputs_count = len(self.manifest.outputs)
        missing = [(n, i) for names, _, _ in order for n in names for i in range(outputs_count)
                   if i not in results.get(n, {})]
        if missing:
            raise UserError(f"ais_bench wrote no result for {len({n for n, _ in missing})} images (first: "
                            f"{missing[0][0]}_{missing[0][1]}.bin) in {self.output_root}; rerun to resume")
        if not self.keep_files:
            shutil.rmtree(self.input_root, ignore_errors=True)
        for names, real, gear in order:
            self.images += len(names)
            formats = self._formats(gear)
            outputs = {out.name: np.stack([out.read(results[n][i]) for n in names]) for i, out in enumerate(formats)}
            yield names, FixedAxes(self.manifest, real).trim(outputs, real) if gear else outputs

    def throughput_fps(self) -> float | None:
        return self.fps

    def _input_dirs(self, device: int, gear: Gear | None) -> list[Path]:
        """The folder of each model input on a device (and gear), in the model's input order."""
        root = self.input_root / f"device{device}"
        root = root / gear_tag(gear) if gear else root
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
            formats = self._formats(self._gear(Path(folder).name))
            for file in sorted(files):
                match = RESULT_FILE.fullmatch(file)
                if match is None or int(match[2]) >= len(formats):
                    continue
                path = Path(folder) / file
                if path.stat().st_size != formats[int(match[2])].nbytes:
                    if drop_damaged:  # cut short by a crash: infer that sample again
                        path.unlink(missing_ok=True)
                    continue
                found.setdefault(match[1], {})[int(match[2])] = path
        return found

    def _infer(self, devices: list[int], gear: Gear | None) -> float | None:
        """One ais_bench process per device, all at once, at one gear; wait for every one, then
        report; the images per second of the devices together."""
        running: list[tuple[int, subprocess.Popen, Path]] = []
        for folder in (self.root, self.input_root, self.output_root,
                       *(self.output_root / self._dirname(d, gear) for d in devices)):
            if folder.exists() or folder == self.output_root:
                secure_dir(folder)  # also what an older run or another umask left
        gear_args = ais_args(self.manifest, self.batch_size, gear) if gear and self.axes.dynamic else None
        try:
            for device in devices:
                dirname = self._dirname(device, gear)
                cmd = ais_bench_command(self.om, self.batch_size, self.dynamic, str(device),
                                        self._input_dirs(device, gear), self.output_root, dirname,
                                        gear_args=gear_args)
                log_path = self.root / f"ais_bench-{dirname}.log"
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
            fps = report.fps if report.fps is not None else self._summary_fps([self._dirname(device, gear)])
            if fps is not None:
                rates.append(fps)
        if failures:
            raise failures[0]
        # Devices run side by side, so the total is the sum, as ais_bench's multi-device summary.
        return sum(rates) if len(rates) == len(running) else None

    def _summary_fps(self, dirnames: list[str] | None = None) -> float | None:
        """ais_bench's throughput from its summaries; a geared run's earlier calls cannot be
        combined without their sample counts, so a resumed geared run reports none."""
        if dirnames is None and self.axes is not None:
            return None
        rates = []
        for dirname in dirnames or [f"device{d}" for d in self.devices]:
            path = find_summary(self.output_root, dirname)
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
                   soc_version: str, axes: GearedAxes | None = None) -> dict:
    """`python3 -m ais_bench --model M --loop N` on all-zero input: the chip's own figures (a
    geared model at its largest gear)."""
    if not 1 <= loop <= AIS_LOOP_MAX:
        raise UserError(f"--loop {loop} is outside 1..{AIS_LOOP_MAX}, the range ais_bench takes; "
                        "pass a count in it")
    device = ",".join(str(d) for d in devices)
    gear_args = ais_args(axes.manifest, batch_size, axes.gears[-1]) if axes and axes.dynamic else None
    cmd = ais_bench_command(om, batch_size, dynamic, device, loop=loop, gear_args=gear_args)
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
