"""The Ascend backend's readers of tool output and its atc command line, without running a model."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelzoo.backends.ascend.ais_parse import (
    execution_times_ms,
    find_summary,
    parse_console,
    parse_summary_json,
)
from modelzoo.backends.ascend.atc import atc_command, atc_failure
from modelzoo.backends.ascend.npu_smi import choose_soc, parse_npu_smi, read_chips
from modelzoo.backends.ascend.tools import parse_devices
from modelzoo.errors import UserError
from modelzoo.manifest import load_manifest
from modelzoo.testing.fake_ascend.npu_smi_variants import (
    EXPECTED_PARSE,
    NPU_SMI_VARIANTS,
)

LVVIT_MANIFEST = Path(__file__).resolve().parents[1] / "modelzoo_lvvit" / "plugin.toml"

# The console of a real run, as given in ascend-tools.md (long lines as printed).
REAL_CONSOLE = """\
[INFO] acl init success
[INFO] open device 0 success
[INFO] create new context
[INFO] load model ./resnet50_bs64.om success
[INFO] create model description success
[INFO] try get model batchsize:64
[INFO] output path:./result
[INFO] get filesperbatch files0 size:196608 tensor0size:12582912 filesperbatch:64 runcount:782
[INFO] warm up 1 done
Inference array Processing: 100%|\u2588| 782/782 [03:54<00:00,  3.33it/s]
[INFO] -----------------Performance Summary------------------
[INFO] NPU_compute_time (ms): min = 13.38, max = 13.64, mean = 13.476432624680307, median = 13.4765625, percentile(99%) = 13.55142578125
[INFO] throughput 1000*batchsize.mean(64)/NPU_compute_time.mean(13.476432624680307): 4749.03127425521
[INFO] ------------------------------------------------------
[INFO] unload model success, model Id is 1
[INFO] end to reset device 0
[INFO] end to finalize acl
"""


# ---------------------------------------------------------------- npu-smi


@pytest.mark.parametrize("variant", sorted(NPU_SMI_VARIANTS))
def test_npu_smi_every_recorded_variant(variant: str) -> None:
    chips = parse_npu_smi(NPU_SMI_VARIANTS[variant])
    assert [(c.npu_id, c.chip_id, c.device_id, c.name) for c in chips] == EXPECTED_PARSE[variant]


def test_npu_smi_soc_version_is_ascend_plus_name() -> None:
    assert {c.soc_version for c in parse_npu_smi(NPU_SMI_VARIANTS["310P3x2"])} == {"Ascend310P3"}
    assert {c.soc_version for c in parse_npu_smi(NPU_SMI_VARIANTS["910B2Cx2"])} == {"Ascend910B2C"}
    # A name that already carries the prefix is not doubled.
    assert {c.soc_version for c in parse_npu_smi(NPU_SMI_VARIANTS["Ascend910_driver25"])} == {"Ascend910"}


@pytest.mark.parametrize("text", [
    "",
    "bash: npu-smi: command not found\n",
    "| NPU     Name      | Health |\n| x       310P3     | OK     |\n| 0       0         | 0000:82:00.0 |\n",
    "| NPU     Name      | Health |\n| 0       310P3     | OK     |\n",  # a chip without its second row
    "| NPU     Name      | Health |\n| 0       310P3     | OK     |\n| 0   zero  | 0000:82:00.0 |\n",
    "| NPU     Name      | Health |\n| 0 310P3 extra   | OK     |\n| 0       0         | bus |\n",
    "| NPU     Name      | Health |\n| 0       310P3     \n",
], ids=["empty", "not-found", "bad-npu-id", "half-entry", "bad-device", "three-words", "one-cell"])
def test_npu_smi_garbage_is_one_user_error(text: str) -> None:
    with pytest.raises(UserError) as info:
        parse_npu_smi(text)
    assert "\n" not in str(info.value)
    assert "npu-smi" in str(info.value)


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_npu_smi_arbitrary_text_only_raises_user_error(text: str) -> None:
    try:
        parse_npu_smi(text)
    except UserError:
        pass


@given(st.sampled_from(sorted(NPU_SMI_VARIANTS)), st.data())
@settings(max_examples=300, deadline=None)
def test_npu_smi_damaged_tables_only_raise_user_error(variant: str, data) -> None:
    # Near-misses reach deeper than random text: overwrite a stretch of a real table.
    text = NPU_SMI_VARIANTS[variant]
    start = data.draw(st.integers(0, len(text)))
    end = data.draw(st.integers(start, min(len(text), start + 40)))
    text = text[:start] + data.draw(st.text(max_size=20)) + text[end:]
    try:
        chips = parse_npu_smi(text)
    except UserError:
        return
    assert all(isinstance(c.npu_id, int) and c.name for c in chips)


def test_choose_soc_uses_only_the_run_devices_on_a_mixed_host() -> None:
    chips = parse_npu_smi(NPU_SMI_VARIANTS["mixed_310P3_910B4"])
    assert choose_soc(chips, [0]) == "Ascend310P3"
    assert choose_soc(chips, [1]) == "Ascend910B4"
    with pytest.raises(UserError, match="Ascend310P3, Ascend910B4.*--soc-version"):
        choose_soc(chips, [0, 1])


def test_choose_soc_errors() -> None:
    with pytest.raises(UserError, match="no NPU"):
        choose_soc(parse_npu_smi(NPU_SMI_VARIANTS["no_devices"]), [0])
    with pytest.raises(UserError, match="device 7 is not in"):
        choose_soc(parse_npu_smi(NPU_SMI_VARIANTS["310P3x2"]), [7])
    # 910B tables have no device column: every chip counts.
    assert choose_soc(parse_npu_smi(NPU_SMI_VARIANTS["910B2Cx2"]), [5]) == "Ascend910B2C"


def test_read_chips_runs_npu_smi(fake_ascend, monkeypatch) -> None:
    monkeypatch.setenv("MODELZOO_FAKE_NPU_SMI", "large_npu_ids")
    chips, version = read_chips()
    assert [c.npu_id for c in chips] == [32896, 32897]
    assert version == "23.0.0"


def test_read_chips_hang_and_absence_are_one_line(tmp_path: Path, monkeypatch) -> None:
    from modelzoo.backends.ascend import npu_smi

    script = tmp_path / "npu-smi"
    script.write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 30\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(npu_smi, "NPU_SMI_TIMEOUT_S", 0.5)
    with pytest.raises(UserError, match="did not finish within 0.5 s"):
        read_chips()
    script.unlink()
    with pytest.raises(UserError, match="'npu-smi' not found.*set_env.sh"):
        read_chips()


def test_parse_devices() -> None:
    assert parse_devices("0") == [0]
    assert parse_devices("0,1") == [0, 1]
    for bad in ("", "a", "0,0", "-1", "1,,2", "256"):
        with pytest.raises(UserError, match="--device"):
            parse_devices(bad)


# ---------------------------------------------------------------- ais_bench console and summary


def test_console_of_a_real_run() -> None:
    report = parse_console(REAL_CONSOLE)
    assert report.compute_ms == [{"min": 13.38, "max": 13.64, "mean": 13.476432624680307,
                                  "median": 13.4765625, "p99": 13.55142578125}]
    assert report.batchsize == 64
    assert report.fps == 4749.03127425521
    assert report.soc_mismatch is None and report.errors == []


def test_console_multi_thread_multi_device_and_errors() -> None:
    text = ("[INFO] NPU_compute_time (ms): mean = 2.5\n"
            "[INFO] throughput 1000*batchsize.mean(2.0)/NPU_compute_time.mean(2.5): 800.0\n"
            "[INFO] NPU_compute_time (ms): mean = 5.0\n"
            "[INFO] throughput 1000*batchsize.mean(2.0)/NPU_compute_time.mean(5.0): 400.0\n"
            "i:0 device_1 throughput:800.0 start_time:1.0 end_time:2.0\n"
            "[INFO] summary throughput:1200.0\n")
    report = parse_console(text)
    assert [s["mean"] for s in report.compute_ms] == [2.5, 5.0]
    assert report.throughput == [800.0, 400.0]
    assert report.fps == 1200.0  # the multi-device total wins over the per-device lines
    mismatch = ("[ACL ERROR] EE1001: The argument is invalid.Reason: ModelCheckCompatibility failed, "
                "supported socVersion=Ascend910B2, but the model socVersion=Ascend910B\n"
                "[ERROR] load model from file failed, model file is m.om\n")
    report = parse_console(mismatch)
    assert report.soc_mismatch == ("Ascend910B2", "Ascend910B")
    assert report.errors[-1] == "load model from file failed, model file is m.om"
    assert report.fps is None


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_console_arbitrary_text_never_raises(text: str) -> None:
    parse_console(text)


@given(st.data())
@settings(max_examples=300, deadline=None)
def test_console_damaged_real_output_never_raises(data) -> None:
    start = data.draw(st.integers(0, len(REAL_CONSOLE)))
    end = data.draw(st.integers(start, min(len(REAL_CONSOLE), start + 30)))
    parse_console(REAL_CONSOLE[:start] + data.draw(st.text(max_size=20)) + REAL_CONSOLE[end:])


def test_summary_json() -> None:
    summary = {"filesinfo": {}, "NPU_compute_time": {"min": 3.0, "max": 3.0, "mean": 3.0, "median": 3.0,
                                                      "percentile(99%)": 3.0, "count": 2},
               "throughput": 1333.3333333333333, "pid": 12}
    parsed = parse_summary_json(json.dumps(summary))
    assert parsed["throughput"] == 1333.3333333333333
    assert parsed["compute_ms"] == {"min": 3.0, "max": 3.0, "mean": 3.0, "median": 3.0, "p99": 3.0}
    assert parsed["count"] == 2
    for bad in ("", "[]", "{}", '{"throughput": "fast"}', '{"throughput": true}', "[" * 100000):
        with pytest.raises(UserError, match="not an ais_bench summary"):
            parse_summary_json(bad)


JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@given(st.one_of(st.text(), JSON.map(json.dumps),
                 st.dictionaries(st.sampled_from(["throughput", "NPU_compute_time", "x"]), JSON)
                 .map(json.dumps)))
@settings(max_examples=300, deadline=None)
def test_summary_arbitrary_text_only_raises_user_error(text: str) -> None:
    try:
        parsed = parse_summary_json(text)
    except UserError:
        return
    assert isinstance(parsed["throughput"], float)


def test_find_summary_beside_or_inside(tmp_path: Path) -> None:
    (tmp_path / "device0").mkdir()
    assert find_summary(tmp_path, "device0") is None
    (tmp_path / "device0" / "_summary.json").write_text("{}")  # output_dirname ending in '/'
    assert find_summary(tmp_path, "device0") == tmp_path / "device0" / "_summary.json"
    (tmp_path / "device0_summary.json").write_text("{}")  # the usual place
    assert find_summary(tmp_path, "device0") == tmp_path / "device0_summary.json"


def test_execution_times_both_apis() -> None:
    class New:
        def __init__(self) -> None:
            self.exec_time_list = [(0.0, 3.0), (3.0, 6.5)]

    assert execution_times_ms(New()) == [3.0, 3.5]
    assert execution_times_ms([3.0, 3.5]) == [3.0, 3.5]  # old sumary(): plain ms
    with pytest.raises(UserError, match="--io files"):
        execution_times_ms([("a", "b", "c")])


# ---------------------------------------------------------------- atc


def test_atc_command_static_lvvit_exactly() -> None:
    manifest = load_manifest(LVVIT_MANIFEST)
    cmd = atc_command(manifest, Path("/c/lvvit-bs4-sim.onnx"), Path("/c/tmp/model"), "Ascend310P3", 4)
    assert cmd == ["atc", "--model=/c/lvvit-bs4-sim.onnx", "--framework=5", "--output=/c/tmp/model",
                   "--input_format=NCHW", "--input_shape=image:4,3,224,224",
                   "--soc_version=Ascend310P3", "--log=error"]


def test_atc_command_dynamic_lvvit_exactly() -> None:
    manifest = load_manifest(LVVIT_MANIFEST)
    cmd = atc_command(manifest, Path("/c/dyn.onnx"), Path("/c/tmp/model"), "Ascend310P3", 4, (1, 4, 8))
    assert cmd == ["atc", "--model=/c/dyn.onnx", "--framework=5", "--output=/c/tmp/model",
                   "--input_format=NCHW", "--input_shape=image:-1,3,224,224",
                   "--dynamic_batch_size=1,4,8", "--soc_version=Ascend310P3", "--log=error"]


def test_atc_command_appends_extra_flags() -> None:
    from dataclasses import replace

    manifest = load_manifest(LVVIT_MANIFEST)
    manifest = replace(manifest, atc={**manifest.atc, "extra_flags": [
        "--enable_small_channel=1", "--optypelist_for_implmode=Gelu"]})
    cmd = atc_command(manifest, Path("m.onnx"), Path("out"), "Ascend310P3", 1)
    assert cmd[-3:] == ["--log=error", "--enable_small_channel=1", "--optypelist_for_implmode=Gelu"]


@pytest.mark.parametrize("pid_prefix", [False, True])
@pytest.mark.parametrize("code", ["E10001", "E10002", "E10016", "E10054", "E19010", "EZ3003", "E19999"])
def test_atc_failure_block(code: str, pid_prefix: bool) -> None:
    from modelzoo.testing.fake_ascend.atc_errors import CATALOGUE, FAILED_LINE, AtcError

    args = {"value": "x", "parameter": "--p", "reason": "bad.", "opname": "Gelu_1", "optype": "Gelu",
            "path": "m.onnx", "count": "1", "minimum": "2"}
    block = AtcError(code, args).block(with_pid_prefix=pid_prefix)
    output = "ATC start working now, please wait for a moment.\n...\n" + FAILED_LINE + "\n" + block
    message = atc_failure(output, 255)
    lines = message.splitlines()
    assert lines[0].startswith(f"atc failed ({code}): ")
    assert "[PID:" not in message
    assert lines[0] == f"atc failed ({code}): " + CATALOGUE[code][0].format(**args)
    # Every line of ATC's block after the first is kept, Possible Cause / Solution included.
    assert [ln.strip() for ln in lines[1:]] == [ln.strip() for ln in block.splitlines()[1:]]


def test_atc_failure_without_a_code_is_one_line() -> None:
    message = atc_failure("ATC start working now, please wait for a moment.\nSegmentation fault\n", 139)
    assert message == ("atc failed (exit 139, no error code): Segmentation fault; "
                       "see the ATC log under ~/ascend/log")


def test_atc_output_format_assumptions_hold_for_the_fake(fake_ascend, tmp_path: Path) -> None:
    """A failing atc on PATH gives a block that atc_failure turns into `atc failed (E10001)`."""
    import subprocess

    env = {**os.environ, "MODELZOO_FAKE_ATC_PID_PREFIX": "1"}
    result = subprocess.run(["atc", "--model=missing.onnx", "--framework=5", "--output=out",
                             "--soc_version=Ascend310P3"], capture_output=True, text=True, env=env,
                            cwd=tmp_path, timeout=120, check=False)
    assert result.returncode != 0
    message = atc_failure(result.stdout + result.stderr, result.returncode)
    assert message.startswith("atc failed (E10001): Value [missing.onnx] for parameter [--model]")
