"""Ascend's dynamic gears (modelzoo/backends/ascend/gears.py): which gears a manifest's `[axes]`
make, atc's --dynamic_dims / --dynamic_image_size for them, the gear a batch runs at, ais_bench's
--dymDims / --dymHW, and --dynamic-batch refused on a model with dynamic axes."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modelzoo.api import UserError, load_manifest
from modelzoo.backends.ascend import gears
from modelzoo.backends.ascend.atc import atc_command
from modelzoo.backends.ascend.options import AscendOptions
from tests.test_generic_plugins import (  # noqa: F401 - fixtures
    assert_matches,
    cache,
    expected,
    registry,
    run_model,
    weights,
)

PLUGIN_DIR = Path(__file__).parent / "plugins"

TEXT = """
name = "text"
summary = "test"
plugin = "tests"
[task]
kind = "classification"
[[inputs]]
name = "ids"
dtype = "int64"
shape = ["batch", "seq"]
[[inputs]]
name = "mask"
dtype = "int64"
shape = ["batch", "seq"]
[[outputs]]
name = "y"
dtype = "float32"
shape = ["batch", 3]
[axes.seq]
min = {min}
max = {max}
example = {min}
{extra}
[status]
FuncStatus = "OK"
PrecisionStatus = "OK"
PerfStatus = "OK"
"""


def text_manifest(tmp_path, low: int, high: int, extra: str = ""):
    path = tmp_path / "plugin.toml"
    path.write_text(TEXT.format(min=low, max=high, extra=extra))
    return load_manifest(path)


def plugin_manifest(name: str):
    return load_manifest(PLUGIN_DIR / name / "plugin.toml")


@pytest.mark.parametrize(("low", "high", "sizes"), [
    (1, 64, (1, 2, 4, 8, 16, 32, 64)),
    (3, 100, (4, 8, 16, 32, 64, 100)),
    (5, 5, (5,)),
])
def test_without_gears_an_axis_gears_at_powers_of_two_from_min_and_at_max(tmp_path, low, high, sizes):
    manifest = text_manifest(tmp_path, low, high)
    assert gears.axis_gears(manifest, "seq") == sizes
    for size in range(low, high + 1):  # every size the axis allows fits a gear
        assert gears.choose(gears.gear_list(manifest), {"seq": size})["seq"] >= size


def test_a_batch_runs_at_the_smallest_gear_that_holds_it(tmp_path):
    manifest = text_manifest(tmp_path, 1, 64, "gears = [64, 8, 32, 16]")
    table = gears.gear_list(manifest)
    assert [g["seq"] for g in table] == [8, 16, 32, 64]
    assert gears.choose(table, {"seq": 9}) == {"seq": 16}
    assert gears.choose(table, {"seq": 8}) == {"seq": 8}
    assert gears.choose(table, {"seq": 65}) is None


def test_tinytext_gears_are_dims_gears_with_one_value_per_minus_one():
    manifest = plugin_manifest("tinytext")
    table = gears.gear_list(manifest)
    flag = gears.atc_flag(manifest, table)
    # two inputs with one -1 each: every gear lists the seq size twice, in --input_shape's order
    assert flag == "--dynamic_dims=8,8;16,16;32,32;64,64"
    assert gears.dym_dims_arg(manifest, 4, {"seq": 16}) == "input_ids:4,16;attention_mask:4,16"


@pytest.mark.parametrize(("name", "shape", "flag"), [
    ("tinytext", "--input_shape=input_ids:4,-1;attention_mask:4,-1", "--dynamic_dims=8,8;16,16;32,32;64,64"),
    ("tinyseg", "--input_shape=pixels:4,3,-1,-1", "--dynamic_image_size=16,16;16,32;32,16;"),
])
def test_the_atc_command_line_of_a_geared_model(tmp_path, name, shape, flag):
    manifest = plugin_manifest(name)
    cmd = atc_command(manifest, tmp_path / "m.onnx", tmp_path / "m", "Ascend310P3", 4,
                      axis_gears=gears.gear_list(manifest))
    assert shape in cmd
    [geared] = [arg for arg in cmd if arg.startswith("--dynamic_")]
    assert geared.startswith(flag)
    assert not any(arg.startswith("--dynamic_batch_size") for arg in cmd)


def test_tinyseg_gears_are_image_sizes_height_first():
    manifest = plugin_manifest("tinyseg")
    assert gears.picture_axes(manifest) == ("height", "width")
    table = gears.gear_list(manifest)
    heights = gears.axis_gears(manifest, "height")
    widths = gears.axis_gears(manifest, "width")
    assert len(table) == len(heights) * len(widths)
    flag = gears.atc_flag(manifest, table)
    assert flag.startswith("--dynamic_image_size=")
    pairs = [tuple(map(int, p.split(","))) for p in flag.split("=", 1)[1].split(";")]
    assert pairs == [(g["height"], g["width"]) for g in table]
    assert gears.dym_hw_arg(manifest, {"height": 16, "width": 48}) == "16,48"


def two_axes(tmp_path, seq_extra: str, feat_extra: str):
    """ids is ["batch", "seq"], mask ["batch", "seq", "feat"]."""
    text = TEXT.replace('shape = ["batch", "seq"]\n[[outputs]]', 'shape = ["batch", "seq", "feat"]\n[[outputs]]')
    path = tmp_path / "two.toml"
    path.write_text(text.format(min=1, max=4096, extra=f"{seq_extra}\n[axes.feat]\nmin = 1\nmax = 4096\n"
                                                       f"example = 1\n{feat_extra}"))
    return load_manifest(path)


def test_derived_gears_are_thinned_to_atcs_limit_keeping_every_max(tmp_path):
    manifest = two_axes(tmp_path, "", "")  # 13 powers of two each: 169 combinations
    table = gears.gear_list(manifest)
    assert len(table) <= gears.MAX_GEARS
    assert {"seq": 4096, "feat": 4096} in table
    assert gears.choose(table, {"seq": 3000, "feat": 1}) is not None
    # --dynamic_dims: a value per -1 of --input_shape (ids: seq; mask: seq, feat)
    assert gears.atc_flag(manifest, table[-1:]) == "--dynamic_dims=4096,4096,4096"


def test_declared_gears_over_atcs_limit_are_one_line(tmp_path):
    eleven = "gears = [" + ",".join(str(2 ** k) for k in range(11)) + "]"
    with pytest.raises(UserError, match="121 combinations, above atc's 100"):
        gears.gear_list(two_axes(tmp_path, eleven, eleven))


def test_dynamic_batch_on_a_model_with_dynamic_axes_is_one_line(registry, weights, cache, tmp_path,  # noqa: F811
                                                                  fake_ascend):
    with pytest.raises(UserError) as info:
        run_model(registry, weights, cache, "tinytext", tmp_path, backend="ascend",
                  backend_options={"ascend": AscendOptions(dynamic_batch=(1, 4, 8))})
    message = str(info.value)
    assert "\n" not in message
    assert "--dynamic-batch cannot be combined with the dynamic axes of" in message
    assert "tinytext" in message and "drop --dynamic-batch" in message


# ---------------------------------------------------------------- the fake toolchain's gear grammar


def two_input_onnx(path: Path) -> Path:
    """a [1, S] and b [1, T] (float) -> Concat along axis 1: [1, S + T]."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Concat", ["a", "b"], ["ab"], name="Concat_0", axis=1)], "two",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, [1, "S"]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, [1, "T"])],
        [helper.make_tensor_value_info("ab", TensorProto.FLOAT, [1, "ST"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def picture_onnx(path: Path) -> Path:
    """x [1, 3, H, W] -> Neg: the same shape."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Neg", ["x"], ["y"], name="Neg_0")], "picture",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "H", "W"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, "H", "W"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def fake_atc(cwd: Path, model: Path, output: str, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["atc", f"--model={model}", "--framework=5", f"--output={output}",
                           "--soc_version=Ascend310P3", "--precision_mode=force_fp32", *flags],
                          cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize(("flags", "refusal"), [
    (["--input_format=ND", "--input_shape=a:1,-1;b:1,-1", "--dynamic_dims=4;8"],
     "The profile [4] has 1 values but --input_shape has 2 -1 placeholders."),
    (["--input_format=ND", "--input_shape=a:1,-1;b:1,-1", "--dynamic_dims=4,4;8,8", "--dynamic_batch_size=1,2"],
     "[--dynamic_batch_size] and [--dynamic_dims] are mutually exclusive"),
    (["--input_format=ND", "--input_shape=a:1,-1;b:1,-1", "--dynamic_dims=4,4"],
     "has [1] profiles, which is less than the minimum ([2])"),
    (["--input_format=ND", "--input_shape=a:1,4;b:1,4", "--dynamic_dims=4,4;8,8"],
     "must have -1 axes"),
    (["--input_format=NCHW", "--input_shape=a:1,-1;b:1,-1", "--dynamic_image_size=4,4;8,8"],
     "only the height and width of an NCHW or NHWC input may be -1"),
])
def test_the_fake_atc_refuses_gears_that_do_not_fit_the_input_shape(tmp_path, fake_ascend, flags, refusal):
    result = fake_atc(tmp_path, two_input_onnx(tmp_path / "two.onnx"), "m", *flags)
    assert result.returncode != 0
    assert refusal in result.stdout
    assert not list(tmp_path.glob("m*.om"))


def test_dims_gears_follow_the_input_shape_order_not_the_graph_order(tmp_path, fake_ascend):
    from ais_bench.infer.interface import InferSession

    # --input_shape lists b before a: each gear gives b's -1, then a's.
    result = fake_atc(tmp_path, two_input_onnx(tmp_path / "two.onnx"), "m", "--input_format=ND",
                      "--input_shape=b:1,-1;a:1,-1", "--dynamic_dims=2,3;4,5")
    assert result.returncode == 0, result.stdout
    [om] = tmp_path.glob("m*.om")
    session = InferSession(0, str(om))
    a, b = np.full((1, 3), 1.0, np.float32), np.full((1, 2), 2.0, np.float32)
    with pytest.raises(RuntimeError):
        session.set_dynamic_dims("a:1,3;b:1,2")  # the graph's order: [1,3,1,2] is no gear
    session.set_dynamic_dims("b:1,2;a:1,3")      # --input_shape's order: gear 0 (b=2, a=3)
    (out,) = session.run([a, b], out_array=True)
    np.testing.assert_array_equal(out, np.concatenate([a, b], axis=1))
    with pytest.raises(RuntimeError):
        session.set_dynamic_dims("b:1,2;a:1,5")  # not a compiled gear
    session.free_resource()
    InferSession.finalize()


def test_the_fake_ais_bench_cli_refuses_a_dymdims_that_is_no_gear(tmp_path, fake_ascend):
    fake_atc(tmp_path, two_input_onnx(tmp_path / "two.onnx"), "m", "--input_format=ND",
             "--input_shape=a:1,-1;b:1,-1", "--dynamic_dims=2,2;4,4")
    [om] = tmp_path.glob("m*.om")
    result = subprocess.run([sys.executable, "-m", "ais_bench", "--model", str(om), "--loop", "1",
                             "--dymDims", "a:1,3;b:1,3"], cwd=tmp_path, capture_output=True, text=True,
                            check=False)
    assert result.returncode != 0
    assert "the dynamic_dims parameter is not correct" in result.stdout + result.stderr
    good = subprocess.run([sys.executable, "-m", "ais_bench", "--model", str(om), "--loop", "1",
                           "--dymDims", "a:1,4;b:1,4"], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert good.returncode == 0, good.stdout + good.stderr


@pytest.mark.parametrize("api", ["new", "old"])
def test_image_size_gears_take_the_height_first_in_both_apis(tmp_path, fake_ascend, monkeypatch, api):
    monkeypatch.setenv("MODELZOO_FAKE_AIS_API", api)
    from ais_bench.infer.interface import InferSession

    result = fake_atc(tmp_path, picture_onnx(tmp_path / "p.onnx"), "m", "--input_format=NCHW",
                      "--input_shape=x:1,3,-1,-1", "--dynamic_image_size=4,6;8,8")
    assert result.returncode == 0, result.stdout
    [om] = tmp_path.glob("m*.om")
    session = InferSession(0, str(om))
    x = np.arange(72, dtype=np.float32).reshape(1, 3, 4, 6)  # height 4, width 6
    with pytest.raises(RuntimeError):
        session.set_dynamic_hw(6, 4)  # width first: no such gear
    session.set_dynamic_hw(4, 6)
    (out,) = session.infer([x], mode="dymhw")
    np.testing.assert_array_equal(out, -x)
    if api == "old":
        session.finalize()
    else:
        session.free_resource()
        InferSession.finalize()


@pytest.mark.parametrize("name", ["tinytext", "tinyseg"])
def test_stream_mode_runs_gears_through_the_june_2023_api_too(registry, weights, cache, expected,  # noqa: F811
                                                              tmp_path, fake_ascend, monkeypatch, name):
    monkeypatch.setenv("MODELZOO_FAKE_AIS_API", "old")
    report = run_model(registry, weights, cache, name, tmp_path, backend="ascend", precision="fp32",
                       backend_options={"ascend": AscendOptions(io="stream")})
    assert_matches(name, tmp_path, report, expected)
