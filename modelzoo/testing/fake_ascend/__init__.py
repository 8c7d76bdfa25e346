"""A fake Ascend toolchain (atc, npu-smi, ais_bench) for tests on machines without an NPU.

The fakes reproduce the real tools' command lines, console lines, file names and file formats
(see /work/shared/reference/ascend-tools.md), so the runner code that drives the real tools can be
tested as is. `atc` checks its flags like ATC and writes a fake .om that carries the ONNX model;
`python -m ais_bench` and `ais_bench.infer.interface.InferSession` run that ONNX model with ONNX
Runtime, so their outputs are real numbers.

Use it through `install(bin_dir)` (or the pytest fixture in `fixture.py`).

Timing is deterministic: every model execution takes
    NPU_compute_time = 2.0 + 0.25 * batch  milliseconds
where batch is the model's batch for that execution (dim 0 of its first input; the gear chosen by
--dymBatch for dynamic batch). So `throughput = 1000 * batchsize / (2.0 + 0.25 * batch)`, e.g.
444.44... for a batch-1 model and 3555.55... for batch 64. (`ais_bench.backend.compute_time_ms`.)

Switches (environment variables, read when a tool runs):
  MODELZOO_FAKE_NPU_SMI=<variant>     which `npu-smi info` table to print (default "310P3x2"; the
                                      variants are in npu_smi_variants.NPU_SMI_VARIANTS).
  MODELZOO_FAKE_ATC_FAIL=<code>       atc fails with that error block (E10001, E10002, E10016,
                                      E10054, E19010, EZ3003, E19999, ...) after its checks pass.
  MODELZOO_FAKE_ATC_PID_PREFIX=1      atc error messages carry newer CANN's
                                      "[PID: n] yyyy-mm-dd-hh:mm:ss.mmm.uuu " prefix.
  MODELZOO_FAKE_AIS_SOC=<soc>         ais_bench runs on a chip of that soc_version: loading an .om
                                      built for another soc fails (EE1001 ModelCheckCompatibility
                                      line; the CLI exits 1, InferSession raises RuntimeError).
  MODELZOO_FAKE_AIS_CRASH_AFTER=<K>   ais_bench fails after K batches (executions since the
                                      session was created or last reset), with the outputs of
                                      those K batches written.
  MODELZOO_FAKE_AIS_API=old           InferSession emulates the June 2023 API: `sumary()` (a list of
                                      ms that also has `.exec_time_list`), `reset_sumaryinfo()`,
                                      instance `finalize()`, `infer()` without `out_array`, and no
                                      `summary()`, `reset_summaryinfo()` or `free_resource()`.
"""
from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
# Holds the fake `ais_bench` package; put it on sys.path / PYTHONPATH to import it.
PYTHON_DIR = PACKAGE_DIR / "python"
# The directory holding the `modelzoo` package, so launchers import this copy of it.
_SOURCE_ROOT = PACKAGE_DIR.parents[2]

_LAUNCHERS = {"atc": "modelzoo.testing.fake_ascend.atc",
              "npu-smi": "modelzoo.testing.fake_ascend.npu_smi"}


def install(bin_dir: Path) -> dict[str, str]:
    """Write `atc` and `npu-smi` into bin_dir; return the environment variables that enable them.

    The launchers run under this interpreter (sys.executable), which has onnx and onnxruntime.
    The returned PATH puts bin_dir first and PYTHONPATH puts the fake ais_bench first, so
    `python -m ais_bench` finds it.
    """
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, module in _LAUNCHERS.items():
        script = bin_dir / name
        script.write_text(
            f"#!{sys.executable}\n"
            "import sys\n"
            f"sys.path[:0] = [{str(_SOURCE_ROOT)!r}, {str(PYTHON_DIR)!r}]\n"
            f"from {module} import main\n"
            "sys.exit(main())\n"
        )
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return {
        "PATH": _prepend(str(bin_dir), os.environ.get("PATH", "")),
        "PYTHONPATH": _prepend(str(PYTHON_DIR), os.environ.get("PYTHONPATH", "")),
    }


def _prepend(entry: str, current: str) -> str:
    return entry + os.pathsep + current if current else entry
