"""In-process inference through ais_bench's `InferSession` (--io stream): no files at all.

Both API generations are driven: the current one (`summary().exec_time_list` of (start, end)
pairs, `reset_summaryinfo()`, `free_resource()`, class `finalize()`) and the June 2023 one
(`sumary()` as a list of ms, `reset_sumaryinfo()`, no `free_resource()`: a model is released when
its session object goes, or by that session's `finalize()`, which also finalizes ACL). Several devices get one session each and the
batches go round robin; the results come back in batch order, so they merge by name as usual.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from modelzoo.backends.ascend.ais_cli import ais_bench_command, ais_failure
from modelzoo.backends.ascend.ais_parse import execution_times_ms, parse_console
from modelzoo.backends.ascend.gears import GearedAxes, picture_axes
from modelzoo.backends.ascend.tools import run_tool
from modelzoo.backends.base import Session, axis_sizes
from modelzoo.errors import UserError
from modelzoo.manifest import Manifest

log = logging.getLogger(__name__)

DIAGNOSE_TIMEOUT_S = 600.0
_SESSION_ERRORS = (RuntimeError, ValueError)  # what aclruntime / InferSession raise


def infer_session_class() -> Any:
    try:
        from ais_bench.infer.interface import InferSession
    except ImportError as exc:
        raise UserError(f"cannot import ais_bench.infer.interface ({exc}); install the "
                        "aclruntime and ais_bench wheels, or use --io files") from None
    return InferSession


class AisStreamSession(Session):
    def __init__(self, om: Path, manifest: Manifest, batch_size: int, dynamic: bool, devices: list[int],
                 axes: GearedAxes | None = None) -> None:
        super().__init__()
        self.om = om
        self.input_names = [t.name for t in manifest.inputs]    # feeds go in the model's input order
        self.output_names = [t.name for t in manifest.outputs]
        self.batch_size = batch_size
        # The base class pads a short last batch up to this: the compiled batch, or for a
        # dynamic-batch .om the run's own gear, so that every execution has the same batch.
        self.static_batch = batch_size
        # Dynamic axes: each batch is padded up to the smallest gear that holds it, and run at it.
        self.fixed_axes = axes
        self.manifest = manifest
        self.dynamic = dynamic
        self.mode = "dymbatch" if dynamic else "static"
        if axes is not None and axes.dynamic:
            self.mode = "dymhw" if picture_axes(manifest) else "dymdims"
        self.devices = devices
        self.sessions: list[Any] = []
        self.warm: set[int] = set()
        self.calls = 0
        self.fps: float | None = None
        self.closed = False
        cls = infer_session_class()
        try:
            for device in devices:
                self.sessions.append(self._load(cls, device))
        except BaseException:
            self.close()
            raise

    def _load(self, cls: Any, device: int) -> Any:
        try:
            session = cls(device, str(self.om))
            if self.dynamic:
                # The old API's infer() ignores mode="dymbatch": set the gear explicitly.
                session.set_dynamic_batchsize(self.batch_size)
        except _SESSION_ERRORS as exc:
            raise self._load_error(device, exc) from None
        return session

    def _load_error(self, device: int, exc: Exception) -> UserError:
        """Why loading failed: ACL prints the reason (e.g. a soc mismatch) on the console, not in
        the exception, so load the model once more in `python3 -m ais_bench` and read that."""
        what = f"InferSession could not load {self.om.name} on device {device} ({exc})"
        cmd = ais_bench_command(self.om, self.batch_size, self.dynamic, str(device), loop=1)
        try:
            result = run_tool(cmd, "ais_bench (diagnosing the load failure)", DIAGNOSE_TIMEOUT_S)
        except UserError:
            return UserError(f"{what}; run the logged ais_bench command by hand to see why")
        text = result.stdout + "\n" + result.stderr
        if result.returncode == 0:
            return UserError(f"{what}, although 'python3 -m ais_bench' loads it; try --io files")
        return ais_failure(what, parse_console(text), text, result.returncode)

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        feeds = [inputs[name] for name in self.input_names]
        index = self.calls % len(self.sessions)
        self.calls += 1
        session = self.sessions[index]
        try:
            if self.mode == "dymhw":
                # The June 2023 infer() ignores mode="dymhw": set the gear explicitly (height first).
                height, width = picture_axes(self.manifest)
                sizes = axis_sizes(inputs, self.manifest)
                session.set_dynamic_hw(sizes[height], sizes[width])
            if index not in self.warm:
                # Like ais_bench: one warm-up execution, left out of the timings.
                session.infer(feeds, self.mode)
                _reset_summary(session)
                self.warm.add(index)
            outputs = session.infer(feeds, self.mode)
        except _SESSION_ERRORS as exc:
            # The batches before this one are already recorded by the pipeline.
            raise UserError(f"InferSession failed on device {self.devices[index]} at batch "
                            f"{self.calls} ({exc}); rerun the same command to infer the rest") from None
        return {name: np.asarray(out) for name, out in zip(self.output_names, outputs, strict=True)}

    def throughput_fps(self) -> float | None:
        return self.fps if self.closed else self._fps()

    def _fps(self) -> float | None:
        """Images per second from the NPU's own timings: batch * 1000 / mean ms, summed over
        devices (they run side by side on a real host, as ais_bench's multi-device summary)."""
        rates = []
        for index in sorted(self.warm):
            times = execution_times_ms(_summary(self.sessions[index]))
            mean = sum(times) / len(times) if times else 0.0
            if mean > 0:
                rates.append(self.batch_size * 1000.0 / mean)
        return sum(rates) if rates else None

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            self.fps = self._fps()  # the timings go with the sessions
        except UserError as exc:
            log.warning("%s", exc)
        # finalize() resets every device and finalizes ACL, so every model must be released
        # before it: a model released afterwards fails. The current API releases one with
        # free_resource(); the June 2023 one only when its session object is destroyed (or in
        # its own finalize()), so those are dropped here, the last one left to finalize.
        others, self.sessions = self.sessions, []
        last = others.pop() if others else None
        while others:
            session = others.pop()
            if hasattr(session, "free_resource"):
                _quietly(session.free_resource)
            del session  # the last reference: the June 2023 build unloads the model now
        if last is not None:
            if hasattr(last, "free_resource"):
                _quietly(last.free_resource)
            if hasattr(last, "finalize"):
                _quietly(last.finalize)  # once: it releases every device of the process


def _summary(session: Any) -> Any:
    return session.summary() if hasattr(session, "summary") else session.sumary()


def _reset_summary(session: Any) -> None:
    if hasattr(session, "reset_summaryinfo"):
        session.reset_summaryinfo()
    else:
        session.reset_sumaryinfo()


def _quietly(release: Any) -> None:
    try:
        release()
    except _SESSION_ERRORS as exc:  # releasing must not hide the run's own result or error
        log.warning("ais_bench: %s", exc)
