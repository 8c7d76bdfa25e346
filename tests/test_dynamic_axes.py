"""Declared dynamic axes through export, simplification and parity, and the padding of a batch up
to fixed sizes: a real TorchScript export, onnxsim and ONNX Runtime on small models."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import tests.plugins.tinytext.task as text_task
from modelzoo.api import UserError, load_manifest
from modelzoo.backends.base import FixedAxes
from modelzoo.export import example_inputs, export_onnx, measure_parity, simplify_onnx

MANIFEST = """
name = "seqmodel"
summary = "test"
plugin = "tests"
[task]
kind = "classification"
[[inputs]]
name = "x"
dtype = "float32"
shape = ["batch", "seq", 4]
[[outputs]]
name = "y"
dtype = "float32"
shape = ["batch", "seq"]
[axes.seq]
min = 2
max = 40
example = 8
[status]
FuncStatus = "OK"
PrecisionStatus = "OK"
PerfStatus = "OK"
"""


class Honest(torch.nn.Module):
    """Sizes read from the tensor inside the graph: the export follows every length."""

    def forward(self, x):
        position = torch.arange(x.shape[1], dtype=torch.float32)
        return x.sum(-1) / x.shape[1] + position


class BakedArange(torch.nn.Module):
    """int() turns the traced length into a Python constant: the graph's arange is always 8 long."""

    def forward(self, x):
        return x.sum(-1) + torch.arange(int(x.shape[1]), dtype=torch.float32)


class BakedDivisor(torch.nn.Module):
    """The same trap with a silent result: the graph divides by 8 at every length."""

    def forward(self, x):
        return x.sum(-1) / float(int(x.shape[1]))


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "plugin.toml"
    path.write_text(MANIFEST)
    return load_manifest(path)


def exported(model: torch.nn.Module, manifest, folder: Path, batch: int | None) -> Path:
    raw, simple = folder / "raw.onnx", folder / "sim.onnx"
    export_onnx(model, manifest, raw, None, example_inputs(manifest, 2, 0))
    simplify_onnx(raw, simple, manifest, batch)
    return simple


def parity(model, manifest, onnx_path: Path, batch: int | None) -> dict:
    return measure_parity(model, onnx_path, manifest, batch, lambda b, s, sizes: example_inputs(manifest, b, s, sizes))


@pytest.mark.parametrize("batch", [None, 3])
def test_the_declared_axis_stays_dynamic_through_onnxsim_and_parity_checks_two_sizes(manifest, tmp_path, batch):
    path = exported(Honest(), manifest, tmp_path, batch)
    dims = [d.dim_param or d.dim_value for d in onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == ["seq", 4] and (dims[0] == batch if batch else isinstance(dims[0], str))
    figures = parity(Honest(), manifest, path, batch)
    assert sorted(figures["sizes"]) == ["seq=40", "seq=8"]
    assert all(f["max_abs_diff"] < 1e-5 for f in figures["sizes"].values())
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.ones((batch or 5, 23, 4), np.float32)
    assert session.run(None, {"x": x})[0].shape == (batch or 5, 23)


@pytest.mark.parametrize("model,symptom", [(BakedArange(), "fails at seq=40"),
                                           (BakedDivisor(), "differs from torch at seq=40")])
def test_a_size_baked_into_the_graph_fails_parity_in_one_line_naming_axis_and_sizes(manifest, tmp_path, model,
                                                                                     symptom):
    path = exported(model, manifest, tmp_path, None)
    with pytest.raises(UserError) as info:
        parity(model, manifest, path, None)
    message = str(info.value)
    assert "\n" not in message and message.startswith("dynamic axes seq: the ONNX traced at seq=8 ")
    assert symptom in message and "baked a size into the graph" in message


def test_padding_up_to_fixed_sizes_never_changes_a_prediction():
    """tinytext's texts, each alone and unpadded in torch, against batches padded to the largest
    gear by FixedAxes (the pad value, 0, is a real token id: only the mask keeps it out)."""
    import tests.plugins.tinytext.plugin as tinytext

    model = tinytext.build("standard")
    tinytext.init_random(model, 4)
    samples = text_task.TextClassification(3).load_dataset(text_task.HERE / "demo").samples
    rows = [text_task.preprocess(s.source) for s in samples]
    with torch.inference_mode():
        alone = [model(torch.from_numpy(r["input_ids"][None]), torch.ones((1, len(r["input_ids"])),
                                                                           dtype=torch.int64)).numpy()
                 for r in rows]
    fixed = FixedAxes(text_task.MANIFEST, text_task.MANIFEST.largest_sizes())
    batch = text_task.collate(rows)
    padded, real = fixed.pad(batch)
    assert padded["input_ids"].shape == (len(rows), 64) and real == {"seq": batch["input_ids"].shape[1]}
    with torch.inference_mode():
        out = model(torch.from_numpy(padded["input_ids"]), torch.from_numpy(padded["attention_mask"])).numpy()
    np.testing.assert_allclose(out, np.concatenate(alone), rtol=1e-5, atol=1e-6)


def test_fixed_axes_pad_with_the_axis_pad_value_and_cut_outputs_back(manifest, tmp_path):
    path = tmp_path / "plugin.toml"
    path.write_text(MANIFEST.replace("example = 8", "example = 8\npad = -1"))
    fixed = FixedAxes(load_manifest(path), {"seq": 40})
    x = np.ones((2, 5, 4), np.float32)
    padded, real = fixed.pad({"x": x})
    assert real == {"seq": 5} and padded["x"].shape == (2, 40, 4)
    assert (padded["x"][:, :5] == 1).all() and (padded["x"][:, 5:] == -1).all()
    assert fixed.trim({"y": np.zeros((2, 40))}, real)["y"].shape == (2, 5)


def test_bench_shapes_are_every_combination_of_the_sizes_asked_and_mistakes_are_one_line(tmp_path):
    from modelzoo.bench import shape_sizes

    path = tmp_path / "plugin.toml"
    path.write_text(MANIFEST.replace('shape = ["batch", "seq", 4]', 'shape = ["batch", "seq", "width"]')
                    + "[axes.width]\nmin = 1\nmax = 8\nexample = 4\n")
    m = load_manifest(path)
    assert shape_sizes(m, []) == [{"seq": 8, "width": 4}]
    assert shape_sizes(m, ["seq=2,40", "width=1"]) == [{"seq": 2, "width": 1}, {"seq": 40, "width": 1}]
    for text, expected in (("len=4", "has no dynamic axis 'len'"), ("seq=41", "41 is outside axis seq's"),
                           ("seq=x", "sizes must be integers")):
        with pytest.raises(UserError, match=expected):
            shape_sizes(m, [text])


def test_bench_measures_a_row_per_size_of_the_dynamic_axis(tmp_path):
    import tests.plugins.tinytext.plugin as tinytext
    from modelzoo.bench import bench
    from tests.conftest import registry_with

    data = bench(registry_with(tinytext), "tinytext", ["onnxruntime"], [2], warmup=1, iters=2, output=tmp_path,
                 cache_dir=tmp_path / "cache", shapes=["seq=8,64"])
    assert [(r["shape"], r["batch_size"]) for r in data["rows"]] == [("seq=8", 2), ("seq=64", 2)]
    assert all(r["fps"] > 0 for r in data["rows"])
    table = (tmp_path / "bench.md").read_text()
    assert "| shape | batch size |" in table and "| seq=64 | 2 * |" in table
    fps = {r["shape"]: f"{r['fps']:.2f}" for r in data["rows"]}
    assert "| backend | precision | batch size | seq=8 | seq=64 |" in table
    assert f"| onnxruntime | fp32 | 2 | {fps['seq=8']} | {fps['seq=64']} |" in table


def test_bucketing_sorts_by_size_within_windows_and_keeps_every_sample_once():
    from modelzoo.core import Sample
    from modelzoo.stream import Padding, batches

    lengths = [9, 1, 5, 7, 2, 8, 3, 6, 4, 10, 30]
    items = [(Sample(f"s{i}", None, 0), {"input_ids": np.ones(n, np.int64)}, None) for i, n in enumerate(lengths)]
    padding = Padding(text_task.MANIFEST)
    made = list(batches(iter(items), 2, ["input_ids"], False, lambda _: None, text_task.collate,
                        plugin="tests", metas={}, bucket_window=4, bucket_bytes=0, padding=padding))
    keys = [k for b in made for k in b.keys]
    assert sorted(keys) == sorted(f"s{i}" for i in range(len(lengths)))
    sizes = [lengths[int(k[1:])] for k in keys]
    assert sizes == sorted(lengths[:4]) + sorted(lengths[4:8]) + sorted(lengths[8:])
    padded = sum(b.inputs["input_ids"].size for b in made)
    # The mask that collate makes is computed at the same sizes as the ids it masks.
    assert padding.figures() == dict.fromkeys(["input_ids", "attention_mask"], round(sum(lengths) / padded, 4))
    unsorted = sum(2 * max(lengths[i:i + 2]) for i in range(0, 10, 2)) + 30
    assert padded < unsorted


def test_a_bucketing_window_grows_by_whole_windows_until_it_holds_the_byte_budget():
    from modelzoo.stream import bucketed

    lengths = [9, 1, 5, 7, 2, 8, 3, 6]
    rows = [(f"s{i}", {"input_ids": np.ones(n, np.int64)}) for i, n in enumerate(lengths)]

    def order(budget: int) -> list[int]:
        return [row["input_ids"].size for _, row in bucketed(iter(rows), 2, budget)]

    assert order(budget=10**6) == sorted(lengths)  # small samples: one window over all of them
    # 8 bytes a token: the first two samples hold 80 bytes, four hold 176, the last four 152.
    assert order(budget=150) == sorted(lengths[:4]) + sorted(lengths[4:])
    assert order(budget=0) == [*sorted(lengths[:2]), *sorted(lengths[2:4]), *sorted(lengths[4:6]),
                               *sorted(lengths[6:])]


def test_a_run_reports_its_padding(tmp_path):
    import tests.plugins.tinytext.plugin as tinytext
    from modelzoo.pipeline import RunOptions, run
    from tests.conftest import registry_with

    report = run(registry_with(tinytext), RunOptions(model="tinytext", backend="onnxruntime", batch_size=4,
                                                     output=tmp_path / "out", cache_dir=tmp_path / "cache",
                                                     workers=0, quiet=True))
    samples = text_task.TextClassification(3).load_dataset(text_task.HERE / "demo").samples
    lengths = sorted(len(text_task.preprocess(s.source)["input_ids"]) for s in samples)
    collated = sum(4 * max(lengths[i:i + 4]) for i in range(0, len(lengths), 4))  # 12 texts: one window
    assert report["padding"] == dict.fromkeys(["input_ids", "attention_mask"], round(sum(lengths) / collated, 4))


def test_padding_counts_what_a_backend_with_gears_computes():
    """A batch padded up to a gear computes the gear's elements: the figure says so."""
    from modelzoo.backends.ascend.gears import GearedAxes, gear_list
    from modelzoo.core import Sample
    from modelzoo.stream import Padding, batches

    lengths = [3, 5, 9, 17]  # gears 8, 16, 32, 64: batches [3, 5] -> 8 and [9, 17] -> 32
    items = [(Sample(f"s{i}", None, 0), {"input_ids": np.ones(n, np.int64)}, None) for i, n in enumerate(lengths)]
    padding = Padding(text_task.MANIFEST, GearedAxes(text_task.MANIFEST, gear_list(text_task.MANIFEST)).sizes_for)
    list(batches(iter(items), 2, ["input_ids"], False, lambda _: None, text_task.collate, plugin="tests",
                 metas={}, padding=padding))
    assert padding.figures() == dict.fromkeys(["input_ids", "attention_mask"], round(34 / (2 * 8 + 2 * 32), 4))


def test_a_sample_larger_than_the_axis_allows_is_one_line_naming_it_or_skipped():
    from modelzoo.core import Sample
    from modelzoo.stream import batches

    items = [(Sample("short", None, 0), {"input_ids": np.ones(3, np.int64)}, None),
             (Sample("long", None, 0), {"input_ids": np.ones(65, np.int64)}, None)]
    with pytest.raises(UserError) as info:
        list(batches(iter(items), 2, ["input_ids"], False, lambda _: None, text_task.collate, plugin="tests",
                     metas={}, manifest=text_task.MANIFEST))
    message = str(info.value)
    assert "\n" not in message and message.startswith("sample long: input 'input_ids' has seq=65, above the "
                                                      "largest size 64 of axis seq")
    skipped = []
    made = list(batches(iter(items), 2, ["input_ids"], True, skipped.append, text_task.collate, plugin="tests",
                        metas={}, manifest=text_task.MANIFEST))
    assert [b.keys for b in made] == [["short"]] and [s["key"] for s in skipped] == ["long"]
