"""`modelzoo run lvvit --backend ascend` end to end against the fake atc / npu-smi / ais_bench.

The reference is ONNX Runtime on the same checkpoint and images: the fake ais_bench runs the .om's
ONNX with ONNX Runtime, so every Ascend route (files, stream, old API, two devices, dynamic batch,
a crash and a resume) must give the very same predictions. Timing follows the fake's documented
formula: each execution of a batch-b model takes 2.0 + 0.25 * b ms.
"""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import predicted_classes, run_cli

pytestmark = pytest.mark.slow

IMAGES = 6  # conftest.dataset_dir
STEMS = [f"ILSVRC2012_val_{i:08d}" for i in range(1, IMAGES + 1)]


def fake_fps(batch: int, devices: int = 1) -> float:
    """What the fake ais_bench reports: 1000 * batch / (2.0 + 0.25 * batch) per device."""
    return devices * 1000.0 * batch / (2.0 + 0.25 * batch)


def run_lvvit(output: Path, dataset_dir: Path, weights: Path, cache_dir: Path, *extra: str,
              env: dict[str, str] | None = None):
    return run_cli("run", "lvvit", "--data", str(dataset_dir), "--weights", str(weights),
                   "--cache-dir", str(cache_dir), "--output", str(output), "--workers", "0",
                   *extra, env=env)


def outcome(output: Path) -> tuple[dict, dict]:
    return json.loads((output / "report.json").read_text()), predicted_classes(output)


def one_error_line(stderr: str) -> str:
    """The single `error: ...` line of a failed run; no traceback."""
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr
    assert "Traceback" not in stderr
    return errors[0]


@pytest.fixture(scope="module")
def reference(tmp_path_factory, dataset_dir, spread_checkpoint, cache_dir) -> tuple[dict, dict]:
    output = tmp_path_factory.mktemp("ort")
    result = run_lvvit(output, dataset_dir, spread_checkpoint, cache_dir, "--backend", "onnxruntime",
                       "--bs", "4")
    assert result.returncode == 0, result.stderr
    report, predictions = outcome(output)
    assert len(predictions) == IMAGES
    # The checkpoint spreads predictions, so agreement below is not agreement on one class.
    assert len({classes[0] for classes in predictions.values()}) > 1
    return report, predictions


@pytest.fixture
def lvvit(tmp_path, dataset_dir, spread_checkpoint, cache_dir, fake_ascend):
    """`modelzoo run lvvit` at fp32 (atc --precision_mode=force_fp32): the fake chip then computes
    what ONNX Runtime does, so that predictions can be compared exactly (at atc's default fp16 it
    rounds every op, tests/test_compare.py)."""
    def run(name: str, *extra: str, **switches: str):
        return run_lvvit(tmp_path / name, dataset_dir, spread_checkpoint, cache_dir, "--precision", "fp32",
                         *extra, env=switches)
    return run


# ---------------------------------------------------------------- same results every way


@pytest.mark.parametrize("backend, io, api", [
    ("ascend", "files", "new"),
    ("auto", None, "new"),  # auto picks ascend, and stream because InferSession imports
    ("ascend", "stream", "old"),
])
def test_ascend_matches_onnxruntime(lvvit, reference, tmp_path, backend, io, api) -> None:
    switches = {"MODELZOO_FAKE_AIS_API": "old"} if api == "old" else {}
    result = lvvit("run", "--backend", backend, "--bs", "4", *(["--io", io] if io else []),
                   **switches)
    assert result.returncode == 0, result.stderr
    report, predictions = outcome(tmp_path / "run")
    assert report["backend"] == "ascend"
    assert predictions == reference[1]
    assert report["top1"] == reference[0]["top1"]
    assert report["throughput_fps"] == pytest.approx(fake_fps(4))
    work = tmp_path / "run" / "ascend"
    if io == "files":
        assert sorted(p.name for p in (work / "output" / "device0").iterdir()) == \
            [f"{s}_0.bin" for s in STEMS]
        assert not (work / "input").exists()  # inputs go once the run succeeded (no --keep-bin)
        assert re.search(r"running: \S+ -m ais_bench --model \S+\.om --input ", result.stderr)
    else:
        assert not work.exists()  # stream mode writes no file at all


@pytest.mark.parametrize("io", ["files", "stream"])
def test_two_devices_share_the_images(lvvit, reference, tmp_path, io) -> None:
    result = lvvit("run", "--backend", "ascend", "--bs", "4", "--io", io, "--device", "0,1")
    assert result.returncode == 0, result.stderr
    report, predictions = outcome(tmp_path / "run")
    assert predictions == reference[1]
    # Both devices worked side by side: their figures add up.
    assert report["throughput_fps"] == pytest.approx(fake_fps(4, devices=2))
    if io == "files":
        output = tmp_path / "run" / "ascend" / "output"
        counts = [len(list((output / f"device{d}").glob("*_0.bin"))) for d in (0, 1)]
        assert counts == [IMAGES // 2, IMAGES // 2]
        assert re.search(r"ais_bench .*--device 1", result.stderr)


@pytest.mark.parametrize("io, api", [("files", "new"), ("stream", "old")])
def test_dynamic_batch(lvvit, reference, tmp_path, cache_dir, io, api) -> None:
    from ais_bench.om_file import read_om  # the fake .om records the atc command line

    switches = {"MODELZOO_FAKE_AIS_API": "old"} if api == "old" else {}
    result = lvvit("run", "--backend", "ascend", "--bs", "4", "--io", io, "--dynamic-batch", "8,1,4",
                   **switches)
    assert result.returncode == 0, result.stderr
    report, predictions = outcome(tmp_path / "run")
    assert predictions == reference[1]
    assert report["throughput_fps"] == pytest.approx(fake_fps(4))  # run at gear 4, padded
    [om] = cache_dir.glob("lvvit-ascend-Ascend310P3-dyn*.om")
    argv = read_om(om)[0].argv
    dynamic_onnx = next(a for a in argv if a.startswith("--model=")).removeprefix("--model=")
    assert Path(dynamic_onnx).name.startswith("lvvit-ascend-bsdynamic-sim-")
    assert argv[2:3] + argv[4:] == ["--framework=5", "--input_format=NCHW",
                                    "--input_shape=image:-1,3,224,224", "--dynamic_batch_size=1,4,8",
                                    "--soc_version=Ascend310P3", "--log=error",
                                    "--precision_mode=force_fp32"]
    if io == "files":
        assert re.search(r"running: \S+ -m ais_bench .*--batchsize 4 --device 0 --dymBatch 4",
                         result.stderr)


# ---------------------------------------------------------------- the compiled model and its command line


def lvvit_artifacts(spread_checkpoint: Path, cache_dir: Path):
    from modelzoo.artifacts import Artifacts
    from modelzoo.cache import Cache
    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry
    from modelzoo.weights import resolve_weights

    entry = Registry(get_plugin_manager()).model("lvvit")
    return Artifacts(entry, resolve_weights(entry.manifest, spread_checkpoint), Cache(cache_dir),
                     variant="ascend")


def test_static_om_atc_command_line(fake_ascend, spread_checkpoint, cache_dir) -> None:
    from ais_bench.om_file import read_om

    from modelzoo.backends.ascend.atc import compile_om

    artifacts = lvvit_artifacts(spread_checkpoint, cache_dir)
    om = compile_om(artifacts, 4, "Ascend310P3")
    argv = read_om(om)[0].argv
    assert argv[:3] == ["atc", f"--model={artifacts.onnx(4).resolve()}", "--framework=5"]
    assert re.fullmatch(r"--output=/.+/\.atc-[^/]+/model", argv[3])  # a scratch folder, then cached
    assert argv[4:] == ["--input_format=NCHW", "--input_shape=image:4,3,224,224",
                        "--soc_version=Ascend310P3", "--log=error"]
    assert compile_om(artifacts, 4, "Ascend310P3") == om  # cached: atc does not run twice
    assert compile_om(artifacts, 4, "Ascend310P1") != om  # another chip, another .om


@pytest.mark.parametrize("devices", ["0", "0,1"])
def test_bench_reports_the_chips_own_figures(fake_ascend, spread_checkpoint, cache_dir, tmp_path, devices) -> None:
    """`modelzoo bench --backend ascend`: the seed's table from ais_bench's pure-inference mode."""
    import json

    from tests.conftest import run_cli

    result = run_cli("bench", "lvvit", "--backend", "ascend", "--bs", "1,4", "--iters", "5", "--device", devices,
                     "--weights", str(spread_checkpoint), "--cache-dir", str(cache_dir),
                     "--output", str(tmp_path), env=fake_ascend.env)
    assert result.returncode == 0, result.stderr
    count = len(devices.split(","))
    rows = json.loads((tmp_path / "bench.json").read_text())["rows"]
    assert [(r["batch_size"], r["chip"]) for r in rows] == [(1, "Ascend310P3"), (4, "Ascend310P3")]
    for row in rows:
        assert row["fps"] == pytest.approx(fake_fps(row["batch_size"], count))
        assert row["latency_ms_p50"] == pytest.approx(2.0 + 0.25 * row["batch_size"])
        assert row["precision"] == "fp16"  # atc's default, which auto keeps
    assert "| Ascend310P3 | ascend | fp16 (auto) | 4 * |" in (tmp_path / "bench.md").read_text()


# ---------------------------------------------------------------- availability


def test_available_only_with_the_whole_toolchain(tmp_path, monkeypatch) -> None:
    from modelzoo.backends.ascend.backend import AscendBackend
    from modelzoo.testing.fake_ascend import install

    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    reason = AscendBackend().unavailable_reason()
    assert reason is not None
    assert "npu-smi and atc not on PATH" in reason and "set_env.sh" in reason
    assert "ais_bench is not importable" in reason and "wheels" in reason
    install(tmp_path / "bin")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    reason = AscendBackend().unavailable_reason()
    assert reason is not None and "PATH" not in reason and "ais_bench" in reason


def test_available_with_fakes_and_versions(fake_ascend) -> None:
    from modelzoo.backends.ascend.backend import AscendBackend, _io_mode

    backend = AscendBackend()
    assert backend.unavailable_reason() is None
    assert backend.versions()["npu-smi"] == "23.0.0"
    assert _io_mode("auto") == "stream"


def test_io_auto_falls_back_to_files_without_infer_session(monkeypatch) -> None:
    import builtins

    from modelzoo.backends.ascend.backend import _io_mode

    real_import = builtins.__import__

    def no_ais_bench(name, *args, **kwargs):
        if name.startswith("ais_bench"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ais_bench)
    assert _io_mode("auto") == "files"


def test_batch_size_must_be_a_gear(lvvit) -> None:
    result = lvvit("run", "--backend", "ascend", "--bs", "3", "--dynamic-batch", "1,4,8")
    assert result.returncode == 2
    assert "--bs 3 is not one of --dynamic-batch 1,4,8" in one_error_line(result.stderr)


# ---------------------------------------------------------------- failures: one line, resumable


@pytest.mark.parametrize("code, pid_prefix", [("E10001", ""), ("EZ3003", "1")])
def test_atc_failure_shows_its_error_block(lvvit, cache_dir, code, pid_prefix) -> None:
    # A chip no other test compiles for, so that atc really runs (the ONNX comes from the cache).
    result = lvvit("run", "--backend", "ascend", "--bs", "4", "--soc-version", "Ascend310B1",
                   MODELZOO_FAKE_ATC_FAIL=code, MODELZOO_FAKE_ATC_PID_PREFIX=pid_prefix)
    assert result.returncode == 2
    first = one_error_line(result.stderr)
    assert first.startswith(f"error: atc failed ({code}): ")
    assert "[PID:" not in first
    block = result.stderr[result.stderr.index(first):].splitlines()
    assert any("Solution:" in line for line in block[1:])  # ATC's own block follows
    assert "running: atc --model=" in result.stderr
    assert not list(cache_dir.glob("*Ascend310B1*.om"))


@pytest.mark.parametrize("io", ["files", "stream"])
def test_soc_mismatch_says_how_to_recompile(lvvit, reference, tmp_path, io) -> None:
    chip = {"MODELZOO_FAKE_AIS_SOC": "Ascend910B2"}
    result = lvvit("run", "--backend", "ascend", "--bs", "4", "--io", io, **chip)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "compiled for Ascend310P3 but the chip is Ascend910B2" in line
    assert "--soc-version Ascend910B2" in line
    if io == "files":
        # Doing what the line says works.
        result = lvvit("run", "--backend", "ascend", "--bs", "4", "--io", io,
                       "--soc-version", "Ascend910B2", **chip)
        assert result.returncode == 0, result.stderr
        assert outcome(tmp_path / "run")[1] == reference[1]


def test_files_crash_resumes_with_the_remaining_images(lvvit, reference, tmp_path) -> None:
    work = tmp_path / "run" / "ascend"
    result = lvvit("run", "--backend", "ascend", "--bs", "4", "--io", "files",
                   MODELZOO_FAKE_AIS_CRASH_AFTER="1")
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert "ais_bench on device 0 failed (exit 1)" in line and "rerun" in line
    first = sorted(p.name.removesuffix("_0.bin") for p in (work / "output" / "device0").glob("*_0.bin"))
    assert first == STEMS[:4]  # the one batch before the crash
    assert len(list((work / "input" / "device0").glob("*.bin"))) == IMAGES  # inputs stay

    result = lvvit("run", "--backend", "ascend", "--bs", "4", "--io", "files", "--keep-bin")
    assert result.returncode == 0, result.stderr
    sent = sorted(p.stem for p in (work / "input" / "device0").glob("*.bin"))
    assert sent == STEMS[4:]  # only the images without a result went to ais_bench again
    assert "4 of 6 images already have results" in result.stderr
    assert outcome(tmp_path / "run")[1] == reference[1]

    # Started over (--fresh) on the same inputs: every result is still valid, nothing is sent,
    # and the throughput is the one ais_bench recorded in its summary JSON.
    result = lvvit("run", "--backend", "ascend", "--bs", "4", "--io", "files", "--fresh")
    assert result.returncode == 0, result.stderr
    assert "6 of 6 images already have results" in result.stderr
    assert "-m ais_bench" not in result.stderr
    report, predictions = outcome(tmp_path / "run")
    assert predictions == reference[1]
    assert report["throughput_fps"] == pytest.approx(fake_fps(4))


def test_files_rerun_resends_an_image_whose_input_changed(lvvit, tmp_path, dataset_dir) -> None:
    """A result is reused only for the very input it came from."""
    data = tmp_path / "data"
    shutil.copytree(dataset_dir, data)
    work = tmp_path / "run" / "ascend"
    args = ("--backend", "ascend", "--bs", "4", "--io", "files", "--keep-bin", "--data", str(data))
    assert lvvit("run", *args, MODELZOO_FAKE_AIS_CRASH_AFTER="1").returncode == 2
    # Swap two images: same names, other pixels.
    a, b = (data / "images" / f"{STEMS[i]}.JPEG" for i in (0, 5))
    a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
    a.write_bytes(b_bytes)
    b.write_bytes(a_bytes)
    result = lvvit("run", *args, "--fresh")
    assert result.returncode == 0, result.stderr
    sent = sorted(p.stem for p in (work / "input" / "device0").glob("*.bin"))
    assert sent == [STEMS[0], *STEMS[4:]]
