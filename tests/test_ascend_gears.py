"""Ascend's dynamic gears (modelzoo/backends/ascend/gears.py): which gears a manifest's `[axes]`
make, atc's --dynamic_dims / --dynamic_image_size for them, the gear a batch runs at, ais_bench's
--dymDims / --dymHW, and --dynamic-batch refused on a model with dynamic axes."""
from __future__ import annotations

from pathlib import Path

import pytest

from modelzoo.api import UserError, load_manifest
from modelzoo.backends.ascend import gears
from modelzoo.backends.ascend.options import AscendOptions
from tests.test_generic_plugins import cache, registry, run_model, weights  # noqa: F401 - fixtures

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


@pytest.mark.parametrize(("low", "high", "expected"), [
    (1, 64, (1, 2, 4, 8, 16, 32, 64)),
    (3, 100, (4, 8, 16, 32, 64, 100)),
    (5, 5, (5,)),
])
def test_without_gears_an_axis_gears_at_powers_of_two_from_min_and_at_max(tmp_path, low, high, expected):
    manifest = text_manifest(tmp_path, low, high)
    assert gears.axis_gears(manifest, "seq") == expected
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
