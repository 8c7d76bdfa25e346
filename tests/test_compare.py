"""`modelzoo compare` on the tinytrap plugin, whose two precision traps are planted: it must name
the planted op, and --fix must find it and prove by running the fixed model that agreement is back."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

import tests.plugins.tinytrap.plugin as tinytrap
from modelzoo.backends.ascend.options import AscendOptions
from modelzoo.compare.command import CompareOptions, compare
from modelzoo.testing.fake_ascend.fp16 import as_fp16_chip, read_keep_dtype
from tests.conftest import REPO, install_plugin, registry_with, run_cli


@pytest.fixture(scope="module")
def registry():
    return registry_with(tinytrap)


def options(backend, precision, tiny_data, cache_dir, tmp_path, **extra) -> CompareOptions:
    return CompareOptions(model="tinytrap", backend=backend, precision=precision, data=tiny_data,
                          cache_dir=cache_dir, output=tmp_path / "out", backend_options={"ascend": AscendOptions(soc_version="Ascend310P3")}, quiet=True,
                          **extra)


def meets(figures: dict, target: dict) -> bool:
    return (figures["cosine"] is not None and figures["cosine"] >= target["cosine"]
            and figures["top1_agreement"] >= target["top1_agreement"])


def test_fake_ascend_fp16_names_the_overflow_and_keep_dtype_fixes_it_minimally(
        registry, tiny_data, cache_dir, tmp_path, fake_ascend) -> None:
    result = compare(options("ascend", "fp16", tiny_data, cache_dir, tmp_path, fix=True), registry)
    first = result["first_divergent"]
    assert first["op"] == "/blowup/Gemm" and first["inf"] > 0
    # Kept alone, blowup hands its fp32 output to an fp16 shrink through a cast: both are needed.
    assert result["fix"] == ["/blowup/Gemm", "/shrink/Gemm"]
    assert not meets(result["agreement_before"], result["target"])
    assert meets(result["agreement_after"], result["target"])
    written = json.loads((tmp_path / "out" / "compare.json").read_text())
    assert written["fix"] == result["fix"] and (tmp_path / "out" / "compare.png").stat().st_size > 0
    assert "`/blowup/Gemm`" in (tmp_path / "out" / "compare.md").read_text()


def test_openvino_int8_names_the_outlier_consumer_and_the_fix_is_it_alone(
        registry, tiny_data, cache_dir, tmp_path) -> None:
    pytest.importorskip("nncf")
    result = compare(options("openvino", "int8", tiny_data, cache_dir, tmp_path, fix=True), registry)
    assert result["first_divergent"]["op"] == "/mix/Gemm"
    rows = {row["op"]: row for row in result["ops"]}
    assert rows["/widen/Gemm"]["cosine"] >= 0.99  # the op before it is still fine
    # Every other layer's int8 noise together leaves the output above the target (cosine 0.9995 on an
    # AVX2-only host, whose weights are 7-bit): the planted op alone is the fix.
    assert result["fix"] == ["/mix/Gemm"]
    assert not meets(result["agreement_before"], result["target"])
    assert meets(result["agreement_after"], result["target"])


def test_nncf_activation_ranges_hold_every_calibration_sample(registry, tiny_data, cache_dir) -> None:
    """NNCF's default range is the mean of the samples' extremes, which clips the samples beyond it
    (on tinytrap half of some ranges): the runner's ranges hold every value calibrated on, to a step."""
    pytest.importorskip("nncf")
    import openvino as ov

    from modelzoo.artifacts import Artifacts
    from modelzoo.cache import Cache
    from modelzoo.calibration import choose_calibration
    from modelzoo.compare.graph import float_tensors
    from modelzoo.compare.sides import OrtSide
    from modelzoo.pipeline import load_dataset
    from modelzoo.quantize import nncf_quantize
    from modelzoo.weights import resolve_weights

    entry = registry.model("tinytrap")
    fp32 = Artifacts(entry, resolve_weights(entry.manifest, None), Cache(cache_dir), quiet=True).onnx(1)
    calibration = choose_calibration(entry, 300, None, load_dataset(entry, tiny_data, None))
    ranges = {}
    for op in nncf_quantize(ov.Core().read_model(str(fp32)), calibration).get_ordered_ops():
        source = op.input_value(0).get_node() if op.get_type_name() == "FakeQuantize" else None
        if source is not None and source.get_type_name() != "Constant":  # an activation's quantiser
            low, high = (float(op.input_value(i).get_node().get_data().min()) for i in (1, 2))
            ranges[source.get_friendly_name()] = (low, high, (high - low) / (op.get_levels() - 1))
    model = onnx.load(fp32)
    tensors = {t.op: t.name for t in float_tensors(model)}
    batches = list(calibration)
    values = OrtSide(model, list(tensors.values())).run(batches)
    assert len(ranges) >= 4
    for producer, (low, high, step) in ranges.items():
        seen = values[tensors[producer]] if producer in tensors else np.concatenate([b[producer] for b in batches])
        assert low - step <= seen.min() and seen.max() <= high + step, producer


def test_onnxruntime_int8_fix_is_the_planted_op_alone(registry, tiny_data, cache_dir, tmp_path) -> None:
    result = compare(options("onnxruntime", "int8", tiny_data, cache_dir, tmp_path, fix=True), registry)
    assert result["first_divergent"]["op"] == "/mix/Gemm"
    assert result["fix"] == ["/mix/Gemm"]
    assert meets(result["agreement_after"], result["target"])


def test_the_cli_writes_the_table_and_names_the_op(tiny_data, cache_dir, tmp_path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    env = install_plugin(site, "tinytrap", "tinytrap = tests.plugins.tinytrap.plugin")
    done = run_cli("compare", "tinytrap", "--backend", "onnxruntime", "--precision", "int8", "--data",
                   str(tiny_data), "--cache-dir", str(cache_dir), "--output", str(tmp_path / "out"), env=env)
    assert done.returncode == 0, done.stderr
    assert "first divergent op: /mix/Gemm" in done.stdout
    written = json.loads((tmp_path / "out" / "compare.json").read_text())
    # Without --fix too: the outputs' agreement, which the planted outlier has broken.
    assert written["agreement"]["cosine"] < 0.999 and 0 <= written["agreement"]["top1_agreement"] <= 1
    assert f"output agreement: cosine {written['agreement']['cosine']:.6f}" in done.stdout
    table = written["ops"]
    assert [row["op"] for row in table][:2] == ["/features/features.0/Flatten", "/features/features.1/Gemm"]


def test_compare_refuses_fp32(registry, tiny_data, cache_dir, tmp_path) -> None:
    from modelzoo.errors import UserError

    with pytest.raises(UserError, match="reduced precision"):
        compare(options("onnxruntime", "fp32", tiny_data, cache_dir, tmp_path), registry)


@pytest.mark.parametrize(("backend", "precision"), [("onnxruntime", "int8"), ("openvino", "int8"), ("ascend", "fp16")])
def test_a_model_with_dynamic_axes_compares_batches_of_several_lengths(cache_dir, tmp_path, fake_ascend, backend,
                                                                      precision) -> None:
    """tinytext's batches differ in length: each is padded to the longest, so that every tensor is one
    array over all samples and the .om is compiled for that one shape."""
    import tests.plugins.tinytext.plugin as tinytext
    import tests.plugins.tinytext.task as text_task

    if backend == "openvino":
        pytest.importorskip("nncf")
    result = compare(CompareOptions(model="tinytext", backend=backend, precision=precision, batch_size=4,
                                    cache_dir=cache_dir, output=tmp_path, quiet=True, samples=12,
                                    backend_options={"ascend": AscendOptions(soc_version="Ascend310P3")}),
                     registry_with(tinytext))
    longest = max(text_task.SEQ.example, *(len(text_task.preprocess(s.source)["input_ids"])
                  for s in text_task.TextClassification(3).load_dataset(text_task.HERE / "demo").samples))
    assert result["samples"] == 4 + 12 and result["observable"] == result["tensors"] > 0
    gathered = [row["shape"] for row in result["ops"] if len(row["shape"]) == 3]
    assert gathered and all(shape[:2] == [16, longest] for shape in gathered)  # [samples, seq, width]
    assert result["ops"][-1]["cosine"] is not None


def chain() -> onnx.ModelProto:
    """x -> big (x1000) -> small (x0.001) -> out."""
    nodes = [helper.make_node("MatMul", ["x", "w_big"], ["y"], name="big"),
             helper.make_node("MatMul", ["y", "w_small"], ["out"], name="small")]
    weights = [numpy_helper.from_array(np.array([[1000.0]], np.float32), "w_big"),
               numpy_helper.from_array(np.array([[0.001]], np.float32), "w_small")]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 1])], weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("keep, expected", [(set(), np.inf), ({"big"}, np.inf), ({"big", "small"}, 70.1234)])
def test_the_fp16_chip_overflows_above_65504_unless_both_ends_are_kept(keep, expected) -> None:
    session = ort.InferenceSession(as_fp16_chip(chain(), keep, set()).SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    # 70.1234 x 1000 is above 65504; both ops kept compute it in fp32 throughout.
    (out,) = session.run(None, {"x": np.array([[70.1234]], np.float32)})
    assert out[0, 0] == pytest.approx(expected, rel=1e-5)


def test_keep_dtype_file_holds_names_and_optypes(tmp_path) -> None:
    cfg = tmp_path / "keep.cfg"
    cfg.write_text("# names\n/blowup/Gemm\n\nOpType::Softmax\n")
    assert read_keep_dtype(cfg) == ({"/blowup/Gemm"}, {"Softmax"})


def run_tinytrap(tmp_path, tiny_data, cache_dir, *extra: str):
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    env = install_plugin(site, "tinytrap", "tinytrap = tests.plugins.tinytrap.plugin") \
        if not (site / "tinytrap-1.0.dist-info").exists() else \
        {"PYTHONPATH": os.pathsep.join([str(site), str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / f"run{len(list(tmp_path.glob('run*')))}"
    done = run_cli("run", "tinytrap", "--data", str(tiny_data), "--cache-dir", str(cache_dir), "--output", str(out),
                   "--workers", "0", *extra, env=env)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "report.json").read_text()), done.stderr


def test_run_on_the_fp16_chip_collapses_loudly_and_keep_fp32_repairs_it(tiny_data, cache_dir, tmp_path,
                                                                      fake_ascend) -> None:
    report, stderr = run_tinytrap(tmp_path, tiny_data, cache_dir, "--backend", "ascend")
    assert "PRECISION COLLAPSED" in stderr
    assert "`modelzoo compare tinytrap --backend ascend --precision fp16 --fix`" in report["precision_warning"]
    assert report["kept_ops"] == []

    report, stderr = run_tinytrap(tmp_path, tiny_data, cache_dir, "--backend", "ascend",
                                  "--keep-fp32", "/blowup/Gemm,/shrink/Gemm")
    assert report["precision_warning"] is None and "PRECISION COLLAPSED" not in stderr
    assert report["kept_ops"] == ["/blowup/Gemm", "/shrink/Gemm"]
    assert report["agreement"]["parity_inputs"]["cosine"] > 0.999
    # The fixed .om is an artifact of its own beside the plain one.
    assert len(list(cache_dir.glob("tinytrap-ascend-Ascend310P3-bs1*.om"))) == 2


def openvino_runs(precision: str) -> None:
    """Skip unless OpenVINO's CPU plugin computes `precision` on this host (fp16 needs AVX512-FP16
    or AMX-FP16, bf16 AVX512-BF16 or AMX): the tests below need the real thing."""
    from modelzoo.backends.openvino import OpenVinoBackend

    problem = OpenVinoBackend().precision_problem(precision)
    if problem:
        pytest.skip(f"openvino {precision}: {problem}")


def test_openvino_fp16_names_the_overflow_and_the_fix_keeps_both_ends_in_f32(
        registry, tiny_data, cache_dir, tmp_path) -> None:
    openvino_runs("fp16")
    result = compare(options("openvino", "fp16", tiny_data, cache_dir, tmp_path, fix=True), registry)
    assert result["first_divergent"]["op"] == "/blowup/Gemm" and result["first_divergent"]["inf"] > 0
    # As on the fp16 chip: blowup kept alone hands shrink an input above 65504 through a convert.
    assert result["fix"] == ["/blowup/Gemm", "/shrink/Gemm"] and result["fix_minimal"]
    assert not meets(result["agreement_before"], result["target"])
    assert meets(result["agreement_after"], result["target"])


def test_openvino_fp16_run_collapses_after_an_fp32_run_in_the_same_cache_and_keep_fp32_repairs_it(
        tiny_data, cache_dir, tmp_path) -> None:
    openvino_runs("fp16")
    # An fp32 run first: its compiled blob must not be what the fp16 run gets.
    report, _ = run_tinytrap(tmp_path, tiny_data, cache_dir, "--backend", "openvino", "--precision", "fp32")
    assert report["precision"] == "fp32" and report["precision_warning"] is None
    report, stderr = run_tinytrap(tmp_path, tiny_data, cache_dir, "--backend", "openvino", "--precision", "fp16")
    assert report["precision"] == "fp16" and "PRECISION COLLAPSED" in stderr

    report, stderr = run_tinytrap(tmp_path, tiny_data, cache_dir, "--backend", "openvino", "--precision", "fp16",
                                  "--keep-fp32", "/blowup/Gemm,/shrink/Gemm")
    assert report["precision_warning"] is None and "PRECISION COLLAPSED" not in stderr
    assert report["kept_ops"] == ["/blowup/Gemm", "/shrink/Gemm"]
    assert report["agreement"]["parity_inputs"]["cosine"] > 0.999


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_an_openvino_run_reports_only_the_ops_its_compiled_model_kept_in_f32(
        precision, tiny_data, cache_dir, tmp_path) -> None:
    openvino_runs(precision)
    report, stderr = run_tinytrap(tmp_path, tiny_data, cache_dir, "--backend", "openvino", "--precision", precision,
                                  "--keep-fp32", "/blowup/Gemm")
    kept = report["kept_ops"]
    assert kept in ([], ["/blowup/Gemm"])
    if not kept:  # OpenVINO computed it at the reduced precision anyway: said, not claimed
        assert (f"--keep-fp32 ops still computed at {precision} (its CPU plugin did not honour the per-op mark at "
                "this precision): /blowup/Gemm") in stderr
    # What the exec graph of the same model, compiled the same way, shows for blowup's FullyConnected.
    import openvino as ov

    from modelzoo.backends.openvino import OV_HINTS
    from modelzoo.openvino_precision import keep_float

    onnx_path = next(cache_dir.glob("tinytrap-standard-bs1-sim-*.onnx"))
    model = keep_float(ov.Core().read_model(str(onnx_path)), ["/blowup/Gemm"], precision)
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": OV_HINTS[precision]})
    ran = {op.get_friendly_name(): str(op.get_rt_info()["runtimePrecision"].astype(str))
           for op in compiled.get_runtime_model().get_ordered_ops()}
    assert (ran["/blowup/Gemm"] == "f32") == bool(kept)


def test_int8_ignored_in_the_manifest_is_applied(tiny_data, cache_dir, tmp_path, monkeypatch) -> None:
    from modelzoo.api import load_manifest

    toml = (Path(tinytrap.__file__).with_name("plugin.toml")).read_text()
    path = tmp_path / "plugin.toml"
    path.write_text(toml + '\n[int8]\nignored = ["/mix/Gemm"]\n')
    manifest = load_manifest(path)
    assert manifest.int8["ignored"] == ["/mix/Gemm"] and manifest.atc["keep_dtype"] == []
    monkeypatch.setattr(tinytrap, "MANIFEST", manifest)
    from modelzoo.pipeline import RunOptions, run

    report = run(registry_with(tinytrap), RunOptions(model="tinytrap", backend="onnxruntime", precision="int8",
                                                     data=tiny_data, cache_dir=cache_dir, output=tmp_path / "out",
                                                     workers=0, quiet=True))
    assert report["kept_ops"] == ["/mix/Gemm"]
    assert report["precision_warning"] is None
    assert report["agreement"]["parity_inputs"]["cosine"] > 0.99


def scalar_graph() -> onnx.ModelProto:
    """x -> scale (x Constant 2) -> mean over everything (a scalar) -> shift (scaled x + mean)."""
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    nodes = [helper.make_node("Constant", [], ["c"], name="const", value=two),
             helper.make_node("Mul", ["x", "c"], ["y"], name="scale"),
             helper.make_node("ReduceMean", ["y"], ["m"], name="mean", keepdims=0),
             helper.make_node("Add", ["y", "m"], ["out"], name="shift")]
    graph = helper.make_graph(nodes, "scalar", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 2])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n", 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def test_constants_are_not_rows_and_a_scalar_tensor_gives_one_value_per_batch() -> None:
    from modelzoo.compare.graph import float_tensors
    from modelzoo.compare.sides import OrtSide

    model = scalar_graph()
    tensors = float_tensors(model)
    assert [t.op for t in tensors] == ["scale", "mean", "shift"]
    batches = [{"x": np.array([[1, 2], [3, 4]], np.float32)}, {"x": np.array([[5, 6], [7, 8]], np.float32)}]
    got = OrtSide(model, [t.name for t in tensors]).run(batches)
    np.testing.assert_allclose(got["m"], [5.0, 13.0])
    assert got["out"].shape == (4, 2)


def test_onnxruntime_quantiser_info_lines_are_dropped(tmp_path, caplog) -> None:
    from modelzoo.quantize import dynamic_int8

    # proj has a weight to quantise; attn multiplies two activations, which the quantiser skips
    # with an info line.
    weight = numpy_helper.from_array(np.eye(4, dtype=np.float32), "w")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["a"], name="proj"),
             helper.make_node("Transpose", ["x"], ["xt"], name="flip"),
             helper.make_node("MatMul", ["a", "xt"], ["out"], name="attn")]
    graph = helper.make_graph(nodes, "attn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [2, 2])], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), tmp_path / "fp32.onnx")
    caplog.set_level("INFO")
    dynamic_int8(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
    assert "MatMulInteger" in {node.op_type for node in onnx.load(tmp_path / "int8.onnx").graph.node}
    assert not [r for r in caplog.records if "onnxruntime" in r.pathname], caplog.text


def test_openvino_int8_compares_at_a_batch_above_one(registry, tiny_data, cache_dir, tmp_path) -> None:
    pytest.importorskip("nncf")
    # NNCF calibrates one sample a batch; the int8 model must still take --bs 2 batches.
    result = compare(options("openvino", "int8", tiny_data, cache_dir, tmp_path, batch_size=2), registry)
    assert result["first_divergent"]["op"] == "/mix/Gemm"
    assert result["observable"] == result["tensors"]


@pytest.mark.slow
def test_openvino_int8_lvvit_logits_do_not_move_when_its_stem_is_exposed(cache_dir) -> None:
    # Reproduces only on a real stem: OpenVINO 2026.4 with a dynamic batch gave zeros after LV-ViT's
    # second conv and moved the logits once the stem's tensors were outputs; tiny CNNs were unaffected.
    pytest.importorskip("nncf")
    import modelzoo_lvvit.plugin as lvvit
    from modelzoo.artifacts import Artifacts
    from modelzoo.cache import Cache
    from modelzoo.calibration import choose_calibration
    from modelzoo.compare.graph import float_tensors
    from modelzoo.compare.sides import openvino_int8
    from modelzoo.pipeline import load_dataset
    from modelzoo.weights import resolve_weights

    entry = registry_with(lvvit).model("lvvit")
    artifacts = Artifacts(entry, resolve_weights(entry.manifest, None), Cache(cache_dir), quiet=True)
    static = onnx.load(artifacts.onnx(2))
    calibration = choose_calibration(entry, 2, None, load_dataset(entry, None, None))
    inputs = artifacts.example_inputs(2, 0)
    shapes = {name: list(array.shape) for name, array in inputs.items()}
    stem = [t.name for t in float_tensors(static)][:4]  # conv1, relu, conv2, relu_1
    exposed = openvino_int8(artifacts, calibration, stem, [], shapes)
    plain = openvino_int8(artifacts, calibration, [], [], shapes)
    assert set(stem) <= exposed.observable
    got, want = exposed.infer(inputs), plain.infer(inputs)
    assert np.abs(got[stem[2]]).max() > 0
    np.testing.assert_allclose(got["features"], want["features"], rtol=1e-4, atol=1e-5)


def test_figures_over_batches_are_the_figures_of_their_concatenation() -> None:
    """compare accumulates each tensor batch by batch instead of holding all samples' tensors."""
    from modelzoo.compare.metrics import Figures, tensor_figures

    rng = np.random.default_rng(0)
    golden = [rng.normal(size=(4, 3, 5)), rng.normal(size=(2, 3, 5))]
    other = [g + rng.normal(scale=0.1, size=g.shape) for g in golden]
    figures = Figures()
    for g, o in zip(golden, other):
        figures.add(g, o)
    whole = tensor_figures(np.concatenate(golden), np.concatenate(other))
    streamed = figures.figures()
    assert streamed.pop("shape") == whole.pop("shape") == [6, 3, 5]
    assert streamed == pytest.approx(whole)
    assert 0.9 < whole["cosine"] < 1
    other[1][0, 0, 0] = np.inf
    figures.add(golden[1], other[1])
    assert figures.figures()["cosine"] is None and figures.figures()["inf"] == 1


def test_the_fix_search_keeps_what_is_needed_and_stops_at_its_run_budget() -> None:
    """A model that meets the target exactly when ops c and f are kept."""
    from modelzoo.compare.fix import search

    ops = list("abcdefgh")
    runs = []

    def evaluate(keep: list[str]) -> dict:
        runs.append(keep)
        return {"cosine": 1.0 if {"c", "f"} <= set(keep) else 0.5}

    def passes(figures: dict) -> bool:
        return figures["cosine"] >= 0.999

    found = search(ops, evaluate, passes, max_runs=100)
    assert found.kept == ["c", "f"] and found.minimal and found.runs == len(runs)
    runs.clear()
    cut = search(ops, evaluate, passes, max_runs=5)
    assert cut.runs == len(runs) == 5 and not cut.minimal
    assert {"c", "f"} <= set(cut.kept) and passes(cut.figures) and len(cut.kept) > 2
    assert search(ops, lambda keep: {"cosine": 0.5}, passes, max_runs=100) is None
