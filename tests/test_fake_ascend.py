"""The fake Ascend toolchain follows the real tools' formats (reference: ascend-tools.md)."""
from __future__ import annotations

import json
import os
import platform
import re
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from modelzoo.testing.fake_ascend import PYTHON_DIR, install  # noqa: E402
from modelzoo.testing.fake_ascend.atc_errors import FAILED_LINE  # noqa: E402
from modelzoo.testing.fake_ascend.npu_smi_variants import (  # noqa: E402
    DEFAULT_VARIANT,
    EXPECTED_M_PARSE,
    EXPECTED_PARSE,
    NPU_SMI_M_VARIANTS,
    NPU_SMI_VARIANTS,
)

SOC = "Ascend310P3"
ATC_OK = ["ATC start working now, please wait for a moment.", "...",
          "ATC run success, welcome to the next use."]


# ---------------------------------------------------------------- helpers


def tiny_onnx(path: Path, batch: int | str = "N") -> Path:
    """image [N,3,4,4] -> features [N,10] via Flatten + MatMul."""
    from onnx import TensorProto, helper, numpy_helper

    weight = (np.arange(48 * 10, dtype=np.float32).reshape(48, 10) - 240) / 100
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["image"], ["flat"], name="Flatten_0", axis=1),
         helper.make_node("MatMul", ["flat", "W"], ["features"], name="MatMul_1")],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 3, 4, 4])],
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, [batch, 10])],
        [numpy_helper.from_array(weight, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def reference(onnx_path: Path, x: np.ndarray) -> np.ndarray:
    """What the chip computes under atc's default force_fp16: ONNX Runtime on the graph with every
    op's inputs and outputs rounded to fp16 (fake_ascend/fp16.py)."""
    from modelzoo.testing.fake_ascend.fp16 import as_fp16_chip

    chip = as_fp16_chip(onnx.load(onnx_path), set(), set())
    session = ort.InferenceSession(chip.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


def run(cmd: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)


def ais_bench(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "ais_bench", *args], cwd, **env)


def atc(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(["atc", *args], cwd, **env)


def convert(cwd: Path, onnx_path: Path, output: str, *extra: str) -> None:
    result = atc(cwd, f"--model={onnx_path}", "--framework=5", f"--output={output}",
                 f"--soc_version={SOC}", *extra)
    assert result.returncode == 0, result.stdout + result.stderr


def samples(directory: Path, count: int, suffix: str = ".bin") -> list[np.ndarray]:
    """count single-image files img_1..img_count holding distinct data."""
    directory.mkdir()
    arrays = []
    for i in range(1, count + 1):
        x = np.random.default_rng(i).standard_normal((1, 3, 4, 4)).astype(np.float32)
        if suffix == ".npy":
            np.save(directory / f"img_{i}.npy", x)
        else:
            x.tofile(directory / f"img_{i}.bin")
        arrays.append(x)
    return arrays


@pytest.fixture
def work(tmp_path: Path, fake_ascend) -> Path:
    """A directory holding tiny.onnx and tiny_bs4.om (static batch 4)."""
    tiny_onnx(tmp_path / "tiny.onnx")
    convert(tmp_path, tmp_path / "tiny.onnx", "tiny_bs4", "--input_shape=image:4,3,4,4")
    return tmp_path


# ---------------------------------------------------------------- install / fixture


def test_install_writes_launchers_for_this_interpreter(tmp_path: Path) -> None:
    env = install(tmp_path / "bin")
    for name in ("atc", "npu-smi"):
        script = tmp_path / "bin" / name
        assert script.read_text().splitlines()[0] == f"#!{sys.executable}"
        assert os.access(script, os.X_OK)
    assert env["PATH"].split(os.pathsep)[0] == str(tmp_path / "bin")
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(PYTHON_DIR)


def test_fixture_puts_the_fakes_first(fake_ascend) -> None:
    import shutil

    import ais_bench

    assert shutil.which("atc") == str(fake_ascend.bin_dir / "atc")
    assert Path(ais_bench.__file__).parent == PYTHON_DIR / "ais_bench"


# ---------------------------------------------------------------- atc


def test_atc_static_conversion_writes_om_with_what_was_asked(work: Path) -> None:
    from ais_bench.om_file import read_om

    result = atc(work, "--model", "tiny.onnx", "--framework", "5", "--output", "out/m",
                 "--input_format=NCHW", "-input_shape=image:2,3,4,4", "--soc_version", SOC,
                 "--log=error", "--precision_mode=allow_mix_precision",
                 "--op_select_implmode=high_performance", "--optypelist_for_implmode=Gelu",
                 "--enable_small_channel=1")
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines() == ATC_OK
    manifest, onnx_bytes = read_om(work / "out" / "m.om")
    assert onnx_bytes == (work / "tiny.onnx").read_bytes()
    assert manifest.soc_version == SOC
    assert [(t.name, t.shape, t.dtype) for t in manifest.inputs] == [
        ("image", [2, 3, 4, 4], "float32")]
    assert [(t.name, t.shape) for t in manifest.outputs] == [("features", [2, 10])]
    assert manifest.argv[0] == "atc" and "--enable_small_channel=1" in manifest.argv
    assert manifest.options["precision_mode"] == "allow_mix_precision"


def test_atc_input_shape_overrides_static_onnx_dims(work: Path) -> None:
    from ais_bench.infer.interface import InferSession

    convert(work, tiny_onnx(work / "bs1.onnx", batch=1), "bs2", "--input_shape=image:2,3,4,4")
    session = InferSession(0, str(work / "bs2.om"))
    assert session.get_outputs()[0].shape == [2, 10]
    x = np.ones((2, 3, 4, 4), np.float32)
    np.testing.assert_array_equal(session.infer([x])[0], reference(work / "tiny.onnx", x))
    InferSession.finalize()


@pytest.mark.parametrize("extra", [
    ["--input_shape=image:-1,3,4,4", "--dynamic_batch_size=1,2,4"],
    ["--input_shape=image:1~8,3,4,4"],
])
def test_atc_dynamic_shapes_name_the_om_after_the_arch(work: Path, extra: list[str]) -> None:
    convert(work, work / "tiny.onnx", "dyn", *extra)
    assert (work / f"dyn_linux_{platform.machine()}.om").is_file()
    assert not (work / "dyn.om").exists()


@pytest.mark.parametrize("args, code, fragment", [
    ([], "E10054", "The requied parameter [--model] for ATC is empty."),
    (["--model=tiny.onnx", "--framework=5", "--output=o"], "E10054",
     "The requied parameter [--soc_version] for ATC is empty."),
    (["--model=tiny.onnx", "--framework=7", "--output=o", f"--soc_version={SOC}"], "E10001",
     "Value [7] for parameter [--framework] is invalid. Reason:"),
    (["--model=tiny.onnx", "--framework=3", "--output=o", f"--soc_version={SOC}"], "E10041",
     "Failed to load the model from [tiny.onnx]."),
    (["--model=missing.onnx", "--framework=5", "--output=o", f"--soc_version={SOC}"], "E10001",
     "Value [missing.onnx] for parameter [--model] is invalid."),
    (["--model=tiny.onnx", "--framework=5", "--output=o", f"--soc_version={SOC}",
      "--input_shape=data:1,3,4,4"], "E10016",
     "Opname [data] specified in [--input_shape] is not found in the model"),
    (["--model=tiny.onnx", "--framework=5", "--output=o", f"--soc_version={SOC}",
      "--input_shape=image:1,3,x,4"], "E10002",
     "Value [image:1,3,x,4] for parameter [--input_shape] is invalid."),
    (["--model=tiny.onnx", "--framework=5", "--output=o", f"--soc_version={SOC}",
      "--input_shape=image:1,3,4,4", "--dynamic_batch_size=1,2"], "E10031",
     "[--dynamic_batch_size]"),
])
def test_atc_failures_print_the_error_block(work: Path, args: list[str], code: str,
                                            fragment: str) -> None:
    result = atc(work, *args)
    lines = result.stdout.splitlines()
    assert result.returncode != 0
    assert lines[0] == ATC_OK[0]
    assert lines[1] == FAILED_LINE
    assert lines[2].startswith(f"{code}: ") and fragment in lines[2]
    assert "        TraceBack (most recent call last):" in lines
    assert any(line.startswith("        Solution: ") for line in lines)
    assert not list(work.glob("o*.om"))


def test_atc_fail_switch_fails_with_the_code_asked_for(work: Path) -> None:
    result = atc(work, "--model=tiny.onnx", "--framework=5", "--output=o", f"--soc_version={SOC}",
                 MODELZOO_FAKE_ATC_FAIL="EZ3003", MODELZOO_FAKE_ATC_PID_PREFIX="1")
    lines = result.stdout.splitlines()
    assert result.returncode != 0 and lines[:3] == [ATC_OK[0], "...", FAILED_LINE]
    assert re.fullmatch(r"EZ3003: \[PID: \d+\] \d{4}-\d\d-\d\d-\d\d:\d\d:\d\d\.\d{3}\.\d{3} "
                        r"No supported Ops kernel and engine are found for \[Flatten_0\], "
                        r"optype \[Flatten\]\.", lines[3])
    assert lines[4].startswith("        Possible Cause: ")
    assert not list(work.glob("o*.om"))


def test_atc_rejects_unknown_flags_like_gflags(work: Path) -> None:
    result = atc(work, "--model=tiny.onnx", "--no_such_flag=1")
    assert result.returncode != 0
    assert "unknown command line flag 'no_such_flag'" in result.stderr


# ---------------------------------------------------------------- npu-smi


def parse_info(text: str) -> list[tuple[int, int, int | None, str]]:
    """A minimal parser written from the reference's description, to check the recorded parses."""
    devices, pending, has_device_column = [], None, False
    for line in text.splitlines():
        if line.startswith("+") or not line.startswith("|"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2:  # the version line
            continue
        if "Process id" in cells[1]:
            break
        words = cells[0].split()
        if words[0] == "Chip":
            has_device_column = len(words) > 1
        if not words[0].isdigit():
            continue
        if pending is None:
            pending = (int(words[0]), words[1])
        else:
            device = int(words[1]) if has_device_column else None
            devices.append((pending[0], int(words[0]), device, pending[1]))
            pending = None
    return devices


def parse_m(text: str) -> list[tuple[int, int, int, str]]:
    chips = []
    for line in text.splitlines()[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        if cells[2] != "-":
            chips.append((int(cells[0]), int(cells[1]), int(cells[2]), cells[-1]))
    return chips


@pytest.mark.parametrize("variant", sorted(NPU_SMI_VARIANTS))
def test_npu_smi_prints_each_variant_and_its_chip_map(fake_ascend, tmp_path: Path,
                                                      variant: str) -> None:
    info = run(["npu-smi", "info"], tmp_path, MODELZOO_FAKE_NPU_SMI=variant)
    mapping = run(["npu-smi", "info", "-m"], tmp_path, MODELZOO_FAKE_NPU_SMI=variant)
    assert info.returncode == 0 and info.stdout == NPU_SMI_VARIANTS[variant]
    assert mapping.returncode == 0 and mapping.stdout == NPU_SMI_M_VARIANTS[variant]
    assert parse_info(info.stdout) == EXPECTED_PARSE[variant]
    assert parse_m(mapping.stdout) == EXPECTED_M_PARSE[variant]
    assert mapping.stdout.startswith("\tNPU ID ")


def test_npu_smi_default_is_the_reference_table(fake_ascend, tmp_path: Path) -> None:
    info = run(["npu-smi", "info"], tmp_path)
    assert info.stdout == NPU_SMI_VARIANTS[DEFAULT_VARIANT]
    assert "| 0       0         | 0000:82:00.0    | 0            1074 / 21534" in info.stdout
    mapping = run(["npu-smi", "info", "-m"], tmp_path).stdout.splitlines()
    assert mapping[1].split()[-2:] == ["Ascend", "310P3"]


# ---------------------------------------------------------------- ais_bench CLI


def expected_console(model: str, prefix: str, batch: int, runs: int, files: int,
                     file_size: int, times: int) -> list[str]:
    t = 2.0 + 0.25 * batch
    return [
        "[INFO] acl init success",
        "[INFO] open device 0 success",
        "[INFO] create new context",
        f"[INFO] load model {model} success",
        "[INFO] create model description success",
        f"[INFO] try get model batchsize:{batch}",
        f"[INFO] output path:{prefix}",
        f"[INFO] get filesperbatch files0 size:{file_size} tensor0size:{file_size * files} "
        f"filesperbatch:{files} runcount:{runs}",
        "[INFO] warm up 1 done",
        f"Inference array Processing: 100%|██████████| {runs}/{runs} "
        f"[00:00<00:00, {runs / (times * t / 1000):.2f}it/s]",
        "[INFO] -----------------Performance Summary------------------",
        f"[INFO] NPU_compute_time (ms): min = {t}, max = {t}, mean = {t}, median = {t}, "
        f"percentile(99%) = {t}",
        f"[INFO] throughput 1000*batchsize.mean({batch})/NPU_compute_time.mean({t}): "
        f"{1000 * batch / t}",
        "[INFO] ------------------------------------------------------",
        "[INFO] unload model success, model Id is 1",
        "[INFO] end to reset device 0",
        "[INFO] end to finalize acl",
    ]


def test_ais_bench_batches_files_and_writes_real_outputs(work: Path) -> None:
    inputs = samples(work / "in", 10)  # 3 batches of 4, the last padded with 2 pseudo files
    result = ais_bench(work, "--model", "tiny_bs4.om", "--input", "in", "--output", "result",
                       "--output_dirname", "sub")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == expected_console(
        "tiny_bs4.om", "result/sub", batch=4, runs=3, files=4, file_size=192, times=3)
    written = sorted(p.name for p in (work / "result" / "sub").iterdir())
    assert written == sorted(f"img_{i}_0.bin" for i in range(1, 11))  # nothing for the padding
    for i, x in enumerate(inputs, start=1):
        out = np.fromfile(work / "result" / "sub" / f"img_{i}_0.bin", dtype=np.float32)
        np.testing.assert_array_equal(out.reshape(1, 10), reference(work / "tiny.onnx", x))

    summary = json.loads((work / "result" / "sub_summary.json").read_text())
    assert set(summary) == {"filesinfo", "args", "NPU_compute_time", "H2D_latency",
                            "D2H_latency", "throughput", "npu_compute_time_list", "pid"}
    assert set(summary["NPU_compute_time"]) == {"min", "max", "mean", "median",
                                                "percentile(99%)", "count"}
    assert summary["NPU_compute_time"]["count"] == 3
    assert summary["npu_compute_time_list"] == [3.0, 3.0, 3.0]
    assert summary["throughput"] == 1000 * 4 / 3.0
    assert summary["filesinfo"]["9"] == {"infiles": ["in/img_10.bin"],
                                         "outfiles": ["result/sub/img_10_0.bin"]}


def test_ais_bench_txt_and_npy_formats(work: Path) -> None:
    inputs = samples(work / "in", 4, suffix=".npy")
    for fmt in ("TXT", "NPY"):
        result = ais_bench(work, "-m", "tiny_bs4.om", "-i", "in", "-o", "r", "--output_dirname",
                           fmt, "--outfmt", fmt)
        assert result.returncode == 0, result.stderr
    expected = reference(work / "tiny.onnx", inputs[0])
    txt = (work / "r" / "TXT" / "img_1_0.txt").read_text()
    assert txt == "".join("%f " % v for v in expected[0]) + "\n"
    np.testing.assert_array_equal(np.load(work / "r" / "NPY" / "img_1_0.npy"), expected)


def test_ais_bench_summary_location_follows_output_dirname(work: Path) -> None:
    inside = ais_bench(work, "-m", "tiny_bs4.om", "-o", "r", "--output_dirname", "in/")
    assert inside.returncode == 0
    assert (work / "r" / "in" / "_summary.json").is_file()
    assert ais_bench(work, "-m", "tiny_bs4.om", "-o", "t").returncode == 0
    (stamp,) = [p.name for p in (work / "t").iterdir() if p.is_dir()]
    assert re.fullmatch(r"\d{4}_\d\d_\d\d-\d\d_\d\d_\d\d", stamp)
    assert (work / "t" / f"{stamp}_summary.json").is_file()


def test_ais_bench_pure_inference_runs_zeros_loop_times(work: Path) -> None:
    result = ais_bench(work, "-m", "tiny_bs4.om", "-o", "r", "--output_dirname", "p",
                       "--loop", "3", "--batchsize", "8")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (work / "r" / "p").iterdir()) == ["pure_infer_data_0.bin"]
    out = np.fromfile(work / "r" / "p" / "pure_infer_data_0.bin", dtype=np.float32)
    zeros = np.zeros((4, 3, 4, 4), np.float32)
    np.testing.assert_array_equal(out.reshape(4, 10), reference(work / "tiny.onnx", zeros))
    summary = json.loads((work / "r" / "p_summary.json").read_text())
    assert summary["NPU_compute_time"]["count"] == 3
    # --batchsize only changes the throughput figure, not the model's compute time.
    assert "[INFO] throughput 1000*batchsize.mean(8)/NPU_compute_time.mean(3.0): " \
           f"{8000 / 3.0}" in result.stdout.splitlines()


def test_ais_bench_dynamic_batch_needs_dymbatch(work: Path) -> None:
    convert(work, work / "tiny.onnx", "dyn", "--input_shape=image:-1,3,4,4",
            "--dynamic_batch_size=1,2,4")
    om = f"dyn_linux_{platform.machine()}.om"
    inputs = samples(work / "in", 3)
    result = ais_bench(work, "-m", om, "-i", "in", "-o", "r", "--output_dirname", "d",
                       "--dymBatch", "2")
    assert result.returncode == 0, result.stderr
    assert "[INFO] throughput 1000*batchsize.mean(2)/NPU_compute_time.mean(2.5): 800.0" \
        in result.stdout.splitlines()
    out = np.fromfile(work / "r" / "d" / "img_3_0.bin", dtype=np.float32)
    np.testing.assert_allclose(out.reshape(1, 10), reference(work / "tiny.onnx", inputs[2]),
                               rtol=1e-6)
    missing = ais_bench(work, "-m", om)
    assert missing.returncode == 1
    assert "dynamic batch om model detected, but dymbatch, dymdims or dymshape not set!" \
        in missing.stderr


def test_ais_bench_multi_device_writes_per_device_folders(work: Path) -> None:
    samples(work / "in", 4)
    result = ais_bench(work, "-m", "tiny_bs4.om", "-i", "in", "-o", "r", "--output_dirname", "m",
                       "--device", "0,1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for i, device in enumerate((0, 1)):
        folder = work / "r" / "m" / f"device{device}_{i}"
        assert sorted(p.name for p in folder.iterdir()) == [f"img_{k}_0.bin" for k in range(1, 5)]
        assert (work / "r" / "m" / f"device{device}_{i}_summary.json").is_file()
        assert any(re.fullmatch(rf"i:{i} device_{device} throughput:{1000 * 4 / 3.0} "
                                r"start_time:[\d.]+ end_time:[\d.]+", line) for line in lines)
    assert lines[-1] == f"[INFO] summary throughput:{2 * 1000 * 4 / 3.0}"


def test_ais_bench_arguments_parse_like_argparse_does(work: Path) -> None:
    ok = ais_bench(work, "-m", "tiny_bs4.om", "--display_all", "TRUE", "--warm", "0",
                   "--debug", "no")
    assert ok.returncode == 0, ok.stderr
    lines = ok.stdout.splitlines()
    assert any(line.startswith("[INFO] H2D_latency (ms): min = ") for line in lines)
    ambiguous = ais_bench(work, "-m", "tiny_bs4.om", "--out", "r")
    assert ambiguous.returncode == 2 and "ambiguous option: --out" in ambiguous.stderr
    bad_bool = ais_bench(work, "-m", "tiny_bs4.om", "--debug", "maybe")
    assert bad_bool.returncode == 2 and "Boolean value expected" in bad_bool.stderr


def test_ais_bench_soc_switch_fails_at_load(work: Path) -> None:
    result = ais_bench(work, "-m", "tiny_bs4.om", MODELZOO_FAKE_AIS_SOC="Ascend910B2")
    assert result.returncode == 1
    assert re.search(r"^\[ACL ERROR\] EE1001: .*ModelCheckCompatibility failed, supported "
                     r"socVersion=Ascend910B2, but the model socVersion=Ascend310P3$",
                     result.stdout, re.M)
    same_chip = ais_bench(work, "-m", "tiny_bs4.om", MODELZOO_FAKE_AIS_SOC=SOC)
    assert same_chip.returncode == 0


def test_ais_bench_crash_switch_keeps_the_first_batches(work: Path) -> None:
    samples(work / "in", 12)
    result = ais_bench(work, "-m", "tiny_bs4.om", "-i", "in", "-o", "r", "--output_dirname", "c",
                       MODELZOO_FAKE_AIS_CRASH_AFTER="2")
    assert result.returncode == 1
    written = sorted(p.name for p in (work / "r" / "c").iterdir())
    assert written == sorted(f"img_{i}_0.bin" for i in range(1, 9))
    assert not (work / "r" / "c_summary.json").exists()


# ---------------------------------------------------------------- InferSession


def test_infer_session_new_api(work: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from ais_bench.infer.interface import InferSession

    session = InferSession(0, str(work / "tiny_bs4.om"))
    (image,) = session.get_inputs()
    assert (image.name, str(image.datatype), image.shape, image.size, image.realsize) == (
        "image", "dtype.float32", [4, 3, 4, 4], 768, 768)
    assert [o.name for o in session.get_outputs()] == ["features"]
    x = np.random.default_rng(0).standard_normal((4, 3, 4, 4)).astype(np.float32)
    (out,) = session.infer([x], mode="static", custom_sizes=100000, out_array=True)
    np.testing.assert_array_equal(out, reference(work / "tiny.onnx", x))
    session.infer([x])
    assert session.summary().exec_time_list == [(0.0, 3.0), (3.0, 6.0)]
    session.reset_summaryinfo()
    assert session.summary().exec_time_list == []
    with pytest.raises(RuntimeError):
        session.infer([x[:1]])  # a static batch-4 model given one image
    assert "needsize:768 not match" in capfd.readouterr().out
    assert not hasattr(session, "sumary")
    session.free_resource()
    InferSession.finalize()
    assert capfd.readouterr().out.splitlines() == [
        "[INFO] unload model success, model Id is 1", "[INFO] end to reset device 0",
        "[INFO] end to finalize acl"]


def test_infer_session_old_api(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELZOO_FAKE_AIS_API", "old")
    from ais_bench.infer.interface import InferSession

    session = InferSession(0, str(work / "tiny_bs4.om"), loop=2)
    session.infer([np.zeros((4, 3, 4, 4), np.float32)])
    assert session.sumary() == [3.0, 3.0]
    assert session.sumary().exec_time_list == [3.0, 3.0]
    session.reset_sumaryinfo()
    assert session.sumary() == []
    for new_only in ("summary", "reset_summaryinfo", "free_resource"):
        assert not hasattr(session, new_only)
    session.finalize()


def test_infer_session_dymbatch_and_switches(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ais_bench.infer.interface import InferSession

    convert(work, work / "tiny.onnx", "dyn", "--input_shape=image:-1,3,4,4",
            "--dynamic_batch_size=1,2,4")
    session = InferSession(0, str(work / f"dyn_linux_{platform.machine()}.om"))
    x = np.ones((2, 3, 4, 4), np.float32)
    np.testing.assert_allclose(session.infer([x], mode="dymbatch")[0],
                               reference(work / "tiny.onnx", x), rtol=1e-6)
    with pytest.raises(RuntimeError):
        session.infer([np.ones((3, 3, 4, 4), np.float32)], mode="dymbatch")  # no such gear

    monkeypatch.setenv("MODELZOO_FAKE_AIS_SOC", "Ascend910B2")
    with pytest.raises(RuntimeError):
        InferSession(0, str(work / "tiny_bs4.om"))
    monkeypatch.delenv("MODELZOO_FAKE_AIS_SOC")
    monkeypatch.setenv("MODELZOO_FAKE_AIS_CRASH_AFTER", "1")
    crashing = InferSession(0, str(work / "tiny_bs4.om"))
    crashing.infer([np.zeros((4, 3, 4, 4), np.float32)])
    with pytest.raises(RuntimeError):
        crashing.infer([np.zeros((4, 3, 4, 4), np.float32)])
    InferSession.finalize()


# ---------------------------------------------------------------- the current front end's path rules


def _loosen(path: Path, mode: int) -> Path:
    path.chmod(mode)
    return path


@pytest.mark.parametrize("prepare, args, refusal, rule", [
    (lambda w: _loosen(w / "tiny_bs4.om", 0o664), ["-m", "tiny_bs4.om"],
     "argument --model/-m: om path:tiny_bs4.om is illegal. Please check.",
     "is group writable, or is others writable, as import file(or directory), permission should "
     "not be over 0o755(rwxr-xr-x)"),
    (lambda w: (w / "link.om").symlink_to(w / "tiny_bs4.om"), ["-m", "link.om"],
     "argument --model/-m: om path:link.om is illegal. Please check.",
     "is a soft link, not supported, please import file(or directory) directly"),
    (lambda w: (w / "tiny.onnx"), ["-m", "tiny.onnx"],
     "argument --model/-m: om path:tiny.onnx is illegal. Please check.", "file type not in ['om']"),
    (lambda w: _loosen(samples(w / "in", 4) and w / "in", 0o775), ["-m", "tiny_bs4.om", "-i", "in"],
     "argument --input/-i: input path:in is illegal. Please check.",
     "as import file(or directory), permission should not be over 0o755(rwxr-xr-x)"),
    (lambda w: (w / "out").mkdir(mode=0o755), ["-m", "tiny_bs4.om", "-o", "out"],
     "argument --output/-o: output path:out is illegal. Please check.",
     "is group writable, or is others writable, as export file(or directory), permission should "
     "not be over 0o750(rwxr-x---)"),
    (lambda w: (w / "a b").mkdir(), ["-m", "tiny_bs4.om", "-o", "a b"],
     "argument --output/-o: output path string is illegal. Please check.",
     "path contains illegal char, legal chars include A-Z a-z 0-9 _ - / ."),
    (lambda w: (w / "file").write_text(""), ["-m", "tiny_bs4.om", "-o", "file"],
     "argument --output/-o: output path is not a directory", None),
    (lambda w: None, ["-m", "tiny_bs4.om", "-o", "r", "--output_dirname", "x" * 256],
     "argument --output_dirname: output path string is illegal. Please check.",
     "file base name length out of range (255), please check the file(or directory) path"),
    (lambda w: None, ["-m", "tiny_bs4.om", "--loop", "100001"],
     "argument --loop/-l: 100001 is an invalid loop size value", None),
])
def test_ais_bench_refuses_paths_like_the_current_front_end(work: Path, prepare, args, refusal,
                                                            rule) -> None:
    prepare(work)
    result = ais_bench(work, *args)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: __main__.py [-h] --model MODEL")
    assert result.stderr.splitlines()[-1] == f"__main__.py: error: {refusal}"
    errors = [ln for ln in result.stdout.splitlines() if ln.startswith("[ERROR]")]
    if rule is not None:
        assert len(errors) == 1 and rule in errors[0], result.stdout
    # The security rules point to their FAQ chapter; the file type check does not.
    solution = "[\033[1;32mSOLUTION\033[0m] visit" in result.stdout
    assert solution == (rule is not None and "file type" not in rule)
    assert "load model" not in result.stdout  # refused before anything ran


def test_ais_bench_checks_output_dirname_against_the_working_folder(work: Path) -> None:
    spaced = work / "my dir"
    spaced.mkdir()
    result = ais_bench(spaced, "-m", str(work / "tiny_bs4.om"), "-o", str(work / "r"),
                       "--output_dirname", "sub")
    assert result.returncode == 2
    assert "argument --output_dirname: output path string is illegal" in result.stderr


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_ais_bench_writes_0750_folders_and_0640_files(work: Path, umask: int) -> None:
    samples(work / "in", 4)
    previous = os.umask(umask)
    try:
        result = ais_bench(work, "-m", "tiny_bs4.om", "-i", "in", "-o", "r/deep",
                           "--output_dirname", "sub")
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stdout + result.stderr
    modes = {p.relative_to(work).as_posix(): stat.S_IMODE(p.stat().st_mode)
             for p in [work / "r", work / "r/deep", work / "r/deep/sub",
                       work / "r/deep/sub_summary.json", *(work / "r/deep/sub").iterdir()]}
    assert modes == {"r": 0o750, "r/deep": 0o750, "r/deep/sub": 0o750,
                     "r/deep/sub_summary.json": 0o640,
                     **{f"r/deep/sub/img_{i}_0.bin": 0o640 for i in range(1, 5)}}


def test_ais_bench_run_time_checks_end_with_a_traceback(work: Path) -> None:
    samples(work / "in", 4)
    (work / "r" / "sub").mkdir(parents=True)
    (work / "r").chmod(0o750)
    (work / "r" / "sub").chmod(0o770)  # an existing result folder is checked as something read
    loose = ais_bench(work, "-m", "tiny_bs4.om", "-i", "in", "-o", "r", "--output_dirname", "sub")
    assert loose.returncode == 1
    assert loose.stderr.splitlines()[-1] == ("ValueError: The path:r/sub is illegal. "
                                             "Please check the error log for more detail.")
    assert f"The file {work}/r/sub is group writable" in loose.stdout
    (work / "in" / "img_4.bin").rename(work / "img_4.bin")
    (work / "in" / "img_4.bin").symlink_to(work / "img_4.bin")
    linked = ais_bench(work, "-m", "tiny_bs4.om", "-i", "in", "-o", "t")
    assert linked.returncode == 1
    # Every entry of an input folder is checked as something read: no links.
    assert linked.stderr.splitlines()[-1] == "RuntimeError: input data:in/img_4.bin is illegal"
    assert f"[ERROR] path :{work}/in/img_4.bin is a soft link" in linked.stdout
    (work / "img_4.bin").rename(work / "in" / "img_4.bin")
    (work / "in" / "img_2.bin").chmod(0o664)  # nor files others could write
    loose_file = ais_bench(work, "-m", "tiny_bs4.om", "-i", "in", "-o", "t")
    assert loose_file.returncode == 1
    assert loose_file.stderr.splitlines()[-1] == "RuntimeError: input data:in/img_2.bin is illegal"
    limit = ais_bench(work, "-m", "tiny_bs4.om", "--batchsize", "4097")
    assert limit.returncode == 1
    assert limit.stderr.splitlines()[-1] == "ValueError: --batchsize: 4097 is over 4096"


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_ais_bench_refuses_a_path_of_another_user(work: Path) -> None:
    (work / "out").mkdir(mode=0o750)
    os.chown(work / "out", 4242, 4242)
    result = ais_bench(work, "-m", "tiny_bs4.om", "-o", "out")
    assert result.returncode == 2
    assert f"current user isn't path:{work}/out's owner or ownergroup" in result.stdout


def test_infer_session_vets_the_model_path_in_the_current_api_only(
        work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (work / "a b").mkdir()
    (work / "tiny_bs4.om").rename(work / "a b" / "tiny_bs4.om")
    spaced = str(work / "a b" / "tiny_bs4.om")
    from ais_bench.infer.interface import InferSession

    with pytest.raises(ValueError, match="The path string is illegal"):
        InferSession(0, spaced)
    monkeypatch.setenv("MODELZOO_FAKE_AIS_API", "old")  # June 2023: no checks at all
    from ais_bench.infer.interface import InferSession as OldInferSession

    OldInferSession(0, spaced).finalize()


def test_old_api_finalize_before_another_release_is_recorded(work: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELZOO_FAKE_AIS_API", "old")
    from ais_bench.backend import RUNTIME
    from ais_bench.infer.interface import InferSession

    first = InferSession(0, str(work / "tiny_bs4.om"))
    second = InferSession(1, str(work / "tiny_bs4.om"))
    second.finalize()  # unloads model 2, resets both devices, finalizes ACL
    del first  # model 1 is released only now, after ACL is gone: that fails
    assert RUNTIME.events == [("load", 1, 0), ("load", 2, 1), ("unload", 2), ("finalize",)]
    assert RUNTIME.late_releases == [1]
