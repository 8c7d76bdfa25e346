"""--precision: what auto means on a host (from its ISA flags), what a run reports it used, how far
that is from fp32 torch, NNCF int8 calibrated on images and cached, and the errors a user can meet."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelzoo.backends.base import BackendSettings
from modelzoo.backends.openvino import auto_precision
from modelzoo.calibration import choose_calibration
from modelzoo.errors import UserError
from modelzoo import host
from modelzoo.host import has_int8_dot_products, host_description, isa_line, native_float_precision, parse_cpuinfo
from modelzoo.pipeline import RunOptions, run
from modelzoo.precision import PRECISIONS, parse_precisions
from modelzoo.quantize import nncf_overflow_fix
from tests.conftest import run_cli, write_photo

ZEN3 = "fpu sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2"
ZEN4 = ZEN3 + " avx512f avx512dq avx512bw avx512vl avx512_bf16 avx512_vnni avx512vbmi"
SAPPHIRE_RAPIDS = ZEN4 + " amx_bf16 amx_tile amx_int8"
OV_CAPABILITIES = ["BF16", "WINOGRAD", "FP32", "INT8", "BIN", "EXPORT_IMPORT"]


def cpuinfo(model: str, flags: str) -> str:
    return "".join(f"processor\t: {i}\nvendor_id\t: AuthenticAMD\nmodel name\t: {model}\nflags\t\t: {flags}\n\n"
                   for i in range(2))


# ------------------------------------------------------------------ host facts and the auto decision

@pytest.mark.parametrize("flags, native, ov_auto, int8_fast, overflow_fix", [
    (ZEN3, "fp32", "fp32", False, "enable"),   # AVX2 only: auto must stay fp32; int8 sums saturate
    (ZEN4, "bf16", "bf16", True, "first_layer_only"),
    (SAPPHIRE_RAPIDS, "bf16", "bf16", True, "first_layer_only"),
    (ZEN3 + " avx_vnni", "fp32", "fp32", True, "first_layer_only"),
])
def test_auto_precision_follows_the_isa_flags(flags, native, ov_auto, int8_fast, overflow_fix):
    model, parsed = parse_cpuinfo(cpuinfo("AMD EPYC 9R14", flags))
    assert model == "AMD EPYC 9R14" and "avx2" in parsed
    assert native_float_precision(parsed) == native
    assert auto_precision(parsed, OV_CAPABILITIES) == ov_auto
    assert has_int8_dot_products(parsed) is int8_fast
    assert nncf_overflow_fix(parsed) == overflow_fix


def test_auto_asks_for_fp32_when_openvino_offers_no_bf16_even_on_a_bf16_cpu():
    _, parsed = parse_cpuinfo(cpuinfo("x", ZEN4))
    assert auto_precision(parsed, ["FP32", "INT8"]) == "fp32"


def test_the_host_description_carries_the_isa_flags_of_this_machine():
    host = host_description()
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            break
    assert host["isa"] == {f: f in flags for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16",
                                                   "amx_bf16", "amx_int8")}
    assert "FP32" in host["openvino_capabilities"]
    line = isa_line(host)
    assert all((f in line.split(" (no")[0].split()) == on for f, on in host["isa"].items())


def test_precision_lists():
    assert parse_precisions("all") == ("fp32", "bf16", "fp16", "int8")
    assert parse_precisions("int8, fp32,int8") == ("int8", "fp32")
    with pytest.raises(UserError, match=r"unknown precision fp64; use auto, fp32, bf16, fp16, int8"):
        parse_precisions("fp32,fp64")
    assert PRECISIONS[0] == "auto"


# ------------------------------------------------------------------ runs report what they used

@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_registry, tiny_data, tiny_weights):
    """One tinycnn run per precision on OpenVINO, sharing a cache."""
    root = tmp_path_factory.mktemp("precision")

    def go(precision: str, name: str | None = None, **extra) -> dict:
        return run(tiny_registry, RunOptions(
            model="tinycnn", backend="openvino", batch_size=2, data=tiny_data, weights=tiny_weights,
            output=root / (name or precision), cache_dir=root / "cache", workers=0, quiet=True,
            precision=precision, **{"fresh": True, **extra}))
    return go, root


def test_auto_reports_what_openvino_compiled_and_its_agreement_with_torch(runs, tiny_registry):
    go, root = runs
    report = go("auto")
    import openvino as ov

    # What OpenVINO compiles by itself when asked for this host's native precision, asked independently.
    expected = native_float_precision(parse_cpuinfo(Path("/proc/cpuinfo").read_text())[1])
    if "BF16" not in ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        expected = "fp32"
    assert report["precision"] == expected and report["precision_requested"] == "auto"
    assert report["precision_note"].startswith(f"OpenVINO compiled {expected}")
    assert report["host"]["isa"]["avx2"] in (True, False) and "measures" in report
    assert "throughput_fps" in report["measures"] and "bench" in report["measures"]["throughput_fps"]
    parity = report["agreement"]["parity_inputs"]
    assert report["agreement"]["reference"] == "torch fp32"
    assert parity["images"] == 4 and 0.99 < parity["cosine"] <= 1 + 1e-9 and 0 <= parity["top1_agreement"] <= 1
    if expected == "fp32":
        assert parity["max_abs_diff"] < 1e-4 and report["agreement"]["run_samples"] is None
    else:  # bf16 keeps 8 bits of mantissa: close, not equal, and compared on the run's own images too
        assert 0 < parity["max_abs_diff"] < 0.5
        samples = report["agreement"]["run_samples"]
        assert samples["images"] == 7 and 0.99 < samples["cosine"] <= 1 + 1e-9
    assert report["latency_ms"]["p50"] <= report["latency_ms"]["p90"] <= report["latency_ms"]["p99"]
    assert report["backend_choice"] == {"requested": "openvino", "reason": "--backend openvino", "figures": None,
                                        "probe_s": None}


def test_fp32_is_exact_fp32(runs):
    go, _ = runs
    report = go("fp32")
    assert report["precision"] == "fp32" and report["agreement"]["run_samples"] is None
    assert report["agreement"]["parity_inputs"]["max_abs_diff"] < 1e-4
    scores = report["agreement"]["parity_inputs"]["outputs"]["scores"]  # near ties within the error left out
    assert scores["decisive_positions"] > 0 and scores["decisive_agreement"] == 1.0


def test_openvino_compiles_the_hint_asked_for(tiny_registry, tiny_weights, tmp_path):
    from modelzoo.artifacts import Artifacts
    from modelzoo.cache import Cache
    from modelzoo.weights import resolve_weights

    entry = tiny_registry.model("tinycnn")
    artifacts = Artifacts(entry, resolve_weights(entry.manifest, tiny_weights), Cache(tmp_path), quiet=True)
    session = tiny_registry.backend("openvino").open(artifacts, 2, BackendSettings(tmp_path, precision="fp32"))
    assert session.compiled.get_property("INFERENCE_PRECISION_HINT").to_string() == "f32"
    assert session.precision == "fp32"


def test_int8_is_calibrated_on_the_data_cached_and_compared_on_the_run(runs, caplog):
    go, root = runs
    with caplog.at_level(logging.INFO, logger="modelzoo"):
        first = go("int8", "int8-a", calibration=5, agreement_samples=3)  # whole batches of 2: 4
    assert first["precision"] == "int8" and "NNCF static int8" in first["precision_note"]
    calibration = first["calibration"]
    assert calibration["source"] == "data" and calibration["images"] == 5 and calibration["reused"] is False
    assert calibration["overflow_fix"] == nncf_overflow_fix(host.cpu()[1])  # this host's rule, recorded
    assert "quantising" in caplog.text and "of the samples being scored" in caplog.text
    samples = first["agreement"]["run_samples"]
    assert samples["images"] == 4 and 0.9 < samples["cosine"] <= 1 + 1e-9 and 0 <= samples["top1_agreement"] <= 1
    built = sorted((root / "cache").glob("*-nncf-int8-*.ov"))
    assert len(built) == 1 and (built[0] / "model.xml").is_file()
    stamp = (built[0] / "model.bin").stat().st_mtime_ns

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="modelzoo"):
        second = go("int8", "int8-b", calibration=5, agreement_samples=3)
    assert "quantising" not in caplog.text  # no recalibration
    assert second["calibration"]["reused"] is True and second["calibration"]["digest"] == calibration["digest"]
    assert (built[0] / "model.bin").stat().st_mtime_ns == stamp
    assert second["agreement"] == first["agreement"]  # remembered, not measured again


def test_calibration_data_keeps_the_scored_images_apart(runs, tmp_path):
    go, root = runs
    elsewhere = tmp_path / "calibration"
    elsewhere.mkdir()
    for i in range(4):
        write_photo(elsewhere / f"other{i}.png", (48, 40), seed=100 + i)
    report = go("int8", "int8-c", calibration=10, calibration_data=elsewhere)
    assert report["calibration"]["source"] == "calibration-data" and report["calibration"]["images"] == 4
    assert report["calibration"]["path"] == str(elsewhere.resolve())
    assert len(list((root / "cache").glob("*-nncf-int8-*.ov"))) >= 2  # another calibration, another model


def test_calibration_falls_back_to_the_demo_set_and_says_so(caplog):
    from modelzoo.pipeline import load_dataset
    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry

    entry = Registry(get_plugin_manager()).model("lvvit")
    demo = load_dataset(entry, None, None)
    chosen = choose_calibration(entry, 300, None, demo)
    assert chosen.source == "demo" and len(chosen.samples) == len(demo.samples) == 8
    with caplog.at_level(logging.WARNING, logger="modelzoo"):
        chosen.announce()
    assert "demo set" in caplog.text and "--calibration-data" in caplog.text
    spread = choose_calibration(entry, 3, None, demo)
    assert [s.key for s in spread.samples] == [demo.samples[i].key for i in (0, 2, 5)]  # spread, not the first 3
    with pytest.raises(UserError, match="--calibration must be at least 1"):
        choose_calibration(entry, 0, None, demo)


def test_calibration_data_needs_no_labels(tiny_registry, tmp_path):
    for i in range(3):
        write_photo(tmp_path / f"shot{i}.jpg", (40, 44), seed=i)
    chosen = choose_calibration(tiny_registry.model("tinycnn"), 10, tmp_path, None)
    assert [s.key for s in chosen.samples] == ["shot0", "shot1", "shot2"]
    inputs = list(chosen)
    assert len(inputs) == 3 and inputs[0]["pixels"].shape == (1, 3, 32, 32)  # one sample per batch


def test_a_rerun_with_nothing_left_keeps_the_precision_figures(runs):
    go, _ = runs
    first = go("auto", "rerun")
    again = go("auto", "rerun", fresh=False)
    assert again["resumed_images"] == 7
    for key in ("precision", "precision_note", "agreement", "latency_ms"):
        assert again[key] == first[key] and first[key] is not None


# ------------------------------------------------------------------ errors and the ascend mapping

def test_a_precision_the_backend_cannot_run_is_one_line(tmp_path):
    result = run_cli("run", "lvvit", "--backend", "torch", "--precision", "int8", "--output", str(tmp_path))
    assert result.returncode == 2
    lines = [l for l in result.stderr.splitlines() if l.startswith("error: ")]
    assert lines == [l for l in result.stderr.splitlines() if l.strip()][-1:] and "Traceback" not in result.stderr
    assert "backend 'torch' cannot run int8 here: it runs auto, fp32" in lines[0] and "--backend" in lines[0]
    bench = run_cli("bench", "lvvit", "--precision", "fp32,fp64", "--output", str(tmp_path))
    assert bench.returncode == 2 and "error: unknown precision fp64" in bench.stderr


def test_atc_precision_mode_follows_the_precision():
    from modelzoo.backends.ascend.atc import atc_command, precision_mode
    from modelzoo.manifest import load_manifest
    from modelzoo_lvvit.plugin import MANIFEST_PATH

    MANIFEST = load_manifest(MANIFEST_PATH)

    def flags(precision: str, manifest=MANIFEST) -> list[str]:
        cmd = atc_command(manifest, Path("m.onnx"), Path("out"), "Ascend310P3", 4, precision=precision)
        return [f for f in cmd if f.startswith("--precision_mode")]

    assert flags("auto") == [] and precision_mode(MANIFEST, "auto") == "force_fp16"  # atc's own default
    assert flags("fp32") == ["--precision_mode=force_fp32"]
    assert flags("fp16") == ["--precision_mode=force_fp16"]
    import dataclasses

    mixed = dataclasses.replace(MANIFEST, atc={**MANIFEST.atc, "extra_flags": ["--precision_mode=allow_mix_precision"]})
    assert flags("auto", mixed) == ["--precision_mode=allow_mix_precision"]
    assert precision_mode(mixed, "auto") == "allow_mix_precision"
    assert flags("fp32", mixed) == ["--precision_mode=force_fp32"]  # the run's explicit choice wins


def test_openvino_refuses_fp16_where_its_cpu_plugin_offers_none(tiny_registry):
    import openvino as ov

    capabilities = ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")
    if "FP16" in capabilities:
        pytest.skip("OpenVINO computes fp16 on this CPU (AVX512-FP16, AMX-FP16 or ARM)")
    with pytest.raises(UserError) as info:
        tiny_registry.backend("openvino", "fp16")
    assert "backend 'openvino' cannot run fp16 here: OpenVINO's CPU plugin computes no fp16" in str(info.value)
    assert "--precision auto or fp32" in str(info.value)
