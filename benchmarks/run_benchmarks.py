"""Reproduces the performance tables in one run: figures, ratios and the targets they are held to.

    python benchmarks/run_benchmarks.py [--rounds 5] [--out benchmarks/results]

LV-ViT-S at batch size 4 with random weights (speed does not depend on the values):
1. Pure inference. Every cell runs in a fresh process and the cells take turns, round after
   round, so that a noisy neighbour slows all of them alike; tables show medians over rounds.
   References, the same simplified ONNX driven by OpenVINO directly (THROUGHPUT hint, async
   queue): "OpenVINO defaults" (its own precision choice, as a user gets it) and "OpenVINO f32".
   Then `modelzoo bench`: the default (--precision auto), --precision fp32, --precision int8
   (NNCF, calibrated on the generated photographs) and ONNX Runtime's dynamic int8.
2. End to end, in the same rounds: `modelzoo run` at auto and at int8 on 1,000 generated JPEG
   photographs (so that filling and draining the pipeline, a batch time each, is a small share,
   as it is on a real dataset); e2e over the pure figure of the same backend and precision in
   that round.
3. Memory: peak RSS of `modelzoo run` on 100 and on 1,000 images.
4. Warm start: a rerun with every artifact cached, from process start to the first result.
Writes <host kind>.json and <host kind>.md (host, ISA flags, versions) into --out, where the host
kind is named by the ISA flags that decide speed, so each kind of machine keeps its own table.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

BATCH = 4
E2E_IMAGES = 1000
CALIBRATION = ["--calibration", "100"]
# name -> how to measure it: ("reference", OpenVINO precision hint or "default") or bench arguments
PURE = {
    "openvino defaults": ("reference", "default"),
    "openvino f32": ("reference", "f32"),
    "modelzoo default (auto)": ("bench", ["--precision", "auto"]),
    "modelzoo fp32": ("bench", ["--backend", "openvino", "--precision", "fp32"]),
    "modelzoo int8 (NNCF)": ("bench", ["--backend", "openvino", "--precision", "int8", *CALIBRATION]),
    "onnxruntime int8 (dynamic)": ("bench", ["--backend", "onnxruntime", "--precision", "int8"]),
}
E2E = {"auto": "modelzoo default (auto)", "int8": "modelzoo int8 (NNCF)"}
E2E_GOAL = {"auto": 0.9, "int8": 0.85}


def modelzoo(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "modelzoo", "--quiet", *args], cwd=cwd,
                            capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"modelzoo {' '.join(args)} failed:\n{result.stderr}")
    return result


def photographs(directory: Path, count: int) -> Path:
    """JPEG files of typical ImageNet size (about 500x375) with photo-like content and a label file."""
    images = directory / "images"
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(count):
        w, h = (500, 375) if i % 3 else (375, 500)
        y, x = np.mgrid[0:h, 0:w] / 50.0
        base = np.stack([np.sin(x * rng.uniform(0.5, 3) + c) + np.cos(y * rng.uniform(0.5, 3)) for c in range(3)], -1)
        pixels = (127 + 60 * base + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
        name = f"ILSVRC2012_val_{i + 1:08d}.JPEG"
        Image.fromarray(pixels).save(images / name, quality=90)
        lines.append(f"{name} {rng.integers(0, 1000)}\n")
    (directory / "val_label.txt").write_text("".join(lines))
    return directory


def reference(onnx_path: str, hint: str, warmup: int, iters: int, cache: str) -> dict:
    """OpenVINO driven directly, as its docs show for throughput: images completed after the
    warm-up over the wall time since the warm-up's last result (as `modelzoo bench` counts)."""
    import openvino as ov

    core = ov.Core()
    core.set_property({"CACHE_DIR": cache})
    config = {"PERFORMANCE_HINT": "THROUGHPUT"}
    if hint != "default":
        config["INFERENCE_PRECISION_HINT"] = hint
    compiled = core.compile_model(onnx_path, "CPU", config)
    queue = ov.AsyncInferQueue(compiled, compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
    done: list[float] = []
    queue.set_callback(lambda request, _: done.append(time.perf_counter()))
    data = np.random.default_rng(0).standard_normal((BATCH, 3, 224, 224)).astype(np.float32)
    for _ in range(warmup + iters):
        queue.start_async(data)
    queue.wait_all()
    done.sort()
    return {"fps": iters * BATCH / (done[-1] - done[warmup - 1]),
            "precision": compiled.get_property("INFERENCE_PRECISION_HINT").to_string()}


def pure_cell(name: str, work: Path, out: Path, iters: int) -> dict:
    kind, spec = PURE[name]
    if kind == "reference":
        onnx_path = next((work / "cache").glob(f"lvvit-standard-bs{BATCH}-sim-*.onnx"))
        result = subprocess.run([sys.executable, __file__, "--reference", str(onnx_path), spec, str(iters),
                                 str(work / "reference-cache")], capture_output=True, text=True, check=True)
        return json.loads(result.stdout)
    modelzoo("bench", "lvvit", *spec, "--bs", str(BATCH), "--warmup", "3", "--iters", str(iters),
             "--output", str(out), "--cache-dir", str(work / "cache"),
             "--calibration-data", str(work / "data"), cwd=work)
    data = json.loads((out / "bench.json").read_text())
    row = data["rows"][0]
    return {"fps": row["fps"], "precision": row["precision"], "backend": row["backend"],
            "latency_ms_p50": row["latency_ms_p50"], "latency_ms_p99": row["latency_ms_p99"],
            "host": data["host"], "versions": data["versions"]}


def e2e_cell(precision: str, work: Path, out: Path) -> dict:
    extra = CALIBRATION if precision == "int8" else []
    modelzoo("run", "lvvit", "--bs", str(BATCH), "--precision", precision, *extra,
             "--data", str(work / "data"), "--calibration-data", str(work / "data"),
             "--limit", str(E2E_IMAGES), "--output", str(out), "--cache-dir", str(work / "cache"), "--fresh",
             cwd=work)
    report = json.loads((out / "report.json").read_text())
    return {key: report[key] for key in ("backend", "precision", "images", "e2e_fps", "throughput_fps",
                                         "agreement", "backend_choice")}


def rounds(work: Path, count: int, iters: int) -> dict:
    pure: dict[str, list[dict]] = {name: [] for name in PURE}
    e2e: dict[str, list[dict]] = {p: [] for p in E2E}
    for index in range(count):
        for name in PURE:
            cell = pure_cell(name, work, work / f"bench-{index}-{len(pure[name])}-{name.split()[0]}", iters)
            pure[name].append(cell)
            print(f"round {index + 1}: {name}: {cell['fps']:.2f} img/s ({cell['precision']})", flush=True)
        for precision, pure_name in E2E.items():
            cell = e2e_cell(precision, work, work / f"e2e-{precision}-{index}")
            cell["pure_fps"] = pure[pure_name][-1]["fps"]
            cell["ratio"] = cell["e2e_fps"] / cell["pure_fps"]
            e2e[precision].append(cell)
            print(f"round {index + 1}: e2e {precision}: {cell['e2e_fps']:.2f} img/s = {cell['ratio']:.2f}x pure",
                  flush=True)
    return {"pure": pure, "e2e": e2e}


def memory(work: Path) -> dict:
    peaks = {}
    for limit in (100, 1000):
        out = work / f"rss-{limit}"
        modelzoo("run", "lvvit", "--bs", str(BATCH), "--data", str(work / "data"), "--limit", str(limit),
                 "--output", str(out), "--cache-dir", str(work / "cache"), "--fresh", cwd=work)
        peaks[limit] = json.loads((out / "report.json").read_text())["peak_rss_mb"]
    return {"peak_rss_mb_100": peaks[100], "peak_rss_mb_1000": peaks[1000]}


def warm_start(work: Path) -> dict:
    out = work / "warm"
    args = ["run", "lvvit", "--bs", str(BATCH), "--data", str(work / "data"), "--limit", "8", "--output",
            str(out), "--cache-dir", str(work / "cache"), "--fresh"]
    modelzoo(*args, cwd=work)  # builds what the backend needs
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        modelzoo(*args, cwd=work)
        wall = time.perf_counter() - started
        stages = json.loads((out / "report.json").read_text())["stages_s"]
        timings.append({"process_wall_s": wall, "first_result_after_run_start_s": stages["first_result_after_start"]})
    return {"runs": timings}


def summary(measured: dict) -> dict:
    """Medians, ratios and targets."""
    median = {name: statistics.median(c["fps"] for c in cells) for name, cells in measured["pure"].items()}
    host = measured["pure"]["modelzoo default (auto)"][0]["host"]
    vnni = host["isa"]["avx512_vnni"] or host["isa"]["amx_int8"]
    e2e = {p: statistics.median(c["ratio"] for c in cells) for p, cells in measured["e2e"].items()}
    mem = measured["memory"]
    targets = [
        ("default run pure >= 0.97x OpenVINO defaults",
         median["modelzoo default (auto)"] / median["openvino defaults"], 0.97),
        ("--precision fp32 >= 0.97x OpenVINO f32", median["modelzoo fp32"] / median["openvino f32"], 0.97),
        ("e2e >= 0.9x pure at the default precision", e2e["auto"], E2E_GOAL["auto"]),
        ("e2e >= 0.85x pure at int8", e2e["int8"], E2E_GOAL["int8"]),
        ("peak RSS 1,000 images <= 1.05x 100 images", mem["peak_rss_mb_100"] * 1.05 / mem["peak_rss_mb_1000"], 1.0),
    ]
    if vnni:
        targets.insert(2, ("--precision int8 >= 1.5x the default (VNNI host)",
                           median["modelzoo int8 (NNCF)"] / median["modelzoo default (auto)"], 1.5))
    return {"median_fps": median, "e2e_ratio": e2e, "host": host,
            "targets": [{"target": t, "ratio": r, "goal": g, "met": r >= g} for t, r, g in targets]}


def host_kind(host: dict) -> str:
    isa = host["isa"]
    if isa["amx_bf16"]:
        return "amx"
    if isa["avx512_bf16"]:
        return "avx512-bf16-vnni" if isa["avx512_vnni"] else "avx512-bf16"
    return "avx512" if isa["avx512f"] else "avx2"


def markdown(results: dict) -> str:
    s, measured = results["summary"], results["measured"]
    host = s["host"]
    isa = " ".join(f for f, on in host["isa"].items() if on)
    versions = measured["pure"]["modelzoo default (auto)"][0]["versions"]
    lines = [f"# LV-ViT-S, bs{BATCH}, on {host['cpu']} ({host['cpus']} CPUs; ISA: {isa})", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())) + f". Load average "
             f"before the run: {results['load_before']}.",
             f"Pure inference, images/s over the steady state, {results['rounds']} interleaved rounds "
             "(each cell a fresh process); ratio to OpenVINO with its defaults.", "",
             "| what | precision run | " + " | ".join(f"round {i + 1}" for i in range(results["rounds"]))
             + " | median | ratio |", "|---|---|" + "---|" * (results["rounds"] + 2)]
    base = s["median_fps"]["openvino defaults"]
    for name, cells in measured["pure"].items():
        rounds = " | ".join(f"{c['fps']:.2f}" for c in cells)
        value = s["median_fps"][name]
        lines.append(f"| {name} | {cells[0]['precision']} | {rounds} | {value:.2f} | {value / base:.2f}x |")
    lines += ["", f"End to end, `modelzoo run` on {E2E_IMAGES} JPEG photographs (about 500x375), e2e_fps over the "
              "pure figure of the same precision in the same round:", "",
              "| precision | " + " | ".join(f"round {i + 1}" for i in range(results["rounds"])) + " | median |",
              "|---|" + "---|" * (results["rounds"] + 1)]
    for precision, cells in measured["e2e"].items():
        rounds = " | ".join(f"{c['e2e_fps']:.2f} ({c['ratio']:.2f}x)" for c in cells)
        lines.append(f"| {cells[0]['precision']} ({precision}) | {rounds} | {s['e2e_ratio'][precision]:.2f}x |")
    int8 = measured["e2e"]["int8"][-1]["agreement"]
    auto = measured["e2e"]["auto"][-1]["agreement"]
    mem, warm = measured["memory"], measured["warm"]
    lines += ["", "Agreement with torch fp32 on the first 64 photographs of the run (random weights: a drift "
              "measure, not accuracy): " + "; ".join(
                  f"{name} top-1 {a['run_samples']['top1_agreement']:.0%}, cosine {a['run_samples']['cosine']:.4f}"
                  for name, a in (("default", auto), ("int8", int8)) if a and a.get("run_samples")) + ".",
              f"Peak RSS: {mem['peak_rss_mb_100']} MiB for 100 images, {mem['peak_rss_mb_1000']} MiB for 1,000.",
              "Warm rerun, first result after run start: " + ", ".join(
                  f"{r['first_result_after_run_start_s']:.2f} s (process {r['process_wall_s']:.2f} s)"
                  for r in warm["runs"]), "", "| target | ratio | met |", "|---|---|---|"]
    for t in s["targets"]:
        lines.append(f"| {t['target']} | {t['ratio']:.2f} | {'yes' if t['met'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--reference":
        onnx_path, hint, iters, cache = sys.argv[2:6]
        print(json.dumps(reference(onnx_path, hint, 3, int(iters), cache)))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=40, help="timed batches per pure cell")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    parser.add_argument("--work", type=Path, help="keep the work files (data, cache) here")
    args = parser.parse_args()
    started = time.perf_counter()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        if not (work / "data" / "val_label.txt").exists():
            photographs(work / "data", 1000)
        # Builds the ONNX export, the int8 model and the run-sample references once, untimed.
        e2e_cell("int8", work, work / "prepare")
        modelzoo("bench", "lvvit", "--bs", str(BATCH), "--iters", "1", "--output", str(work / "prepare-bench"),
                 "--cache-dir", str(work / "cache"), cwd=work)
        measured = rounds(work, args.rounds, args.iters)
        measured["memory"] = memory(work)
        measured["warm"] = warm_start(work)
    results = {"rounds": args.rounds, "load_before": load, "measured": measured,
               "wall_s": round(time.perf_counter() - started)}
    results["summary"] = summary(measured)
    kind = host_kind(results["summary"]["host"])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{kind}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{kind}.md").write_text(markdown(results))
    print(markdown(results))
    print(f"wrote {args.out / kind}.json and .md in {results['wall_s']} s")


if __name__ == "__main__":
    main()
