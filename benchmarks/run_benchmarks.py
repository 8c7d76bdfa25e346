"""Reproduces the performance table in one run and prints each figure with its ratio to the fastest.

    python benchmarks/run_benchmarks.py [--rounds 2] [--out benchmarks/results]

1. Pure inference, LV-ViT-S fp32 (and ONNX Runtime int8), batch sizes 1, 4, 16: torch eager,
   ONNX Runtime, OpenVINO, and what `--backend auto` picks. Every cell runs in a fresh
   `modelzoo bench` process and the backends take turns, round after round, so that a noisy
   neighbour slows all of them alike; the table shows the median over rounds.
2. End to end: `modelzoo run` on generated JPEG photographs, e2e images/s against the pure
   inference figure of the same backend and batch size.
3. Memory: peak RSS of `modelzoo run` on 100 and on 1,000 images.
4. Warm start: a rerun with every artifact cached, from process start to the first result.
Writes results.json and results.md (with host and versions) into --out.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

BATCH_SIZES = (1, 4, 16)
CELLS = [("torch", "fp32"), ("onnxruntime", "fp32"), ("openvino", "fp32"), ("auto", "fp32"),
         ("onnxruntime", "int8")]


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


def pure_inference(work: Path, rounds: int, iters: int) -> dict:
    figures: dict[tuple[str, str, int], list[float]] = {}
    versions: dict[str, str] = {"python": sys.version.split()[0]}
    auto_name = None
    for round_index in range(rounds):
        for backend, precision in CELLS:
            for bs in BATCH_SIZES:
                out = work / f"bench-{backend}-{precision}-{bs}-{round_index}"
                modelzoo("bench", "lvvit", "--backend", backend, "--precision", precision, "--bs", str(bs),
                         "--warmup", "1", "--iters", str(iters), "--output", str(out),
                         "--cache-dir", str(work / "cache"), cwd=work)
                data = json.loads((out / "bench.json").read_text())
                versions.update(data["versions"])
                row = data["rows"][0]
                if backend == "auto":
                    auto_name = row["backend"]
                figures.setdefault((backend, precision, bs), []).append(row["fps_median"])
                print(f"round {round_index + 1}: {backend} {precision} bs{bs}: {row['fps_median']:.2f} img/s",
                      flush=True)
    return {"auto_is": auto_name, "host": data["host"], "versions": versions,
            "cells": {f"{b} {p} bs{bs}": {"rounds": v, "median": statistics.median(v)}
                      for (b, p, bs), v in figures.items()}}


def end_to_end(work: Path, data: Path, pure: dict) -> dict:
    out = work / "e2e"
    modelzoo("run", "lvvit", "--bs", "4", "--data", str(data), "--limit", "200", "--output", str(out),
             "--cache-dir", str(work / "cache"), cwd=work)
    report = json.loads((out / "report.json").read_text())
    reference = pure["cells"][f"auto fp32 bs4"]["median"]
    return {"backend": report["backend"], "images": report["images"], "e2e_fps": report["e2e_fps"],
            "run_throughput_fps": report["throughput_fps"], "bench_pure_fps": reference,
            "ratio_to_pure": report["e2e_fps"] / reference}


def memory(work: Path, data: Path) -> dict:
    peaks = {}
    for limit in (100, 1000):
        out = work / f"rss-{limit}"
        modelzoo("run", "lvvit", "--bs", "4", "--data", str(data), "--limit", str(limit), "--output", str(out),
                 "--cache-dir", str(work / "cache"), cwd=work)
        peaks[limit] = json.loads((out / "report.json").read_text())["peak_rss_mb"]
    return {"peak_rss_mb_100": peaks[100], "peak_rss_mb_1000": peaks[1000]}


def warm_start(work: Path, data: Path) -> dict:
    out = work / "warm"
    args = ["run", "lvvit", "--bs", "4", "--data", str(data), "--limit", "8", "--output", str(out),
            "--cache-dir", str(work / "cache"), "--fresh"]
    modelzoo(*args, cwd=work)  # builds what the backend needs
    timings = []
    for _ in range(3):
        started = time.perf_counter()
        modelzoo(*args, cwd=work)
        wall = time.perf_counter() - started
        stages = json.loads((out / "report.json").read_text())["stages_s"]
        timings.append({"process_wall_s": wall, "first_result_after_run_start_s": stages["first_result_after_start"]})
    return {"runs": timings}


def markdown(results: dict) -> str:
    pure = results["pure"]
    fp32 = {k: v["median"] for k, v in pure["cells"].items() if " fp32 " in k}
    lines = [f"# LV-ViT-S on {pure['host']['cpu']} ({pure['host']['cpus']} CPUs)", "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in sorted(pure["versions"].items())) + ".",
             f"Pure inference, images/s, median of {results['rounds']} interleaved rounds; ratio to the "
             f"fastest fp32 cell of the same batch size. `auto` picked **{pure['auto_is']}**.", "",
             "| backend | " + " | ".join(f"bs{bs}" for bs in BATCH_SIZES) + " |",
             "|---|" + "---|" * len(BATCH_SIZES)]
    for backend, precision in CELLS:
        cells = []
        for bs in BATCH_SIZES:
            value = pure["cells"][f"{backend} {precision} bs{bs}"]["median"]
            fastest = max(v for k, v in fp32.items() if k.endswith(f" bs{bs}"))
            cells.append(f"{value:.2f} ({value / fastest:.2f}×)")
        lines.append(f"| {backend} {precision} | " + " | ".join(cells) + " |")
    e2e, mem, warm = results["e2e"], results["memory"], results["warm"]
    lines += ["", f"End to end ({e2e['backend']}, bs4, {e2e['images']} JPEG files): {e2e['e2e_fps']:.2f} img/s = "
              f"{e2e['ratio_to_pure']:.2f}× the pure-inference figure ({e2e['bench_pure_fps']:.2f}).",
              f"Peak RSS: {mem['peak_rss_mb_100']} MiB for 100 images, {mem['peak_rss_mb_1000']} MiB for 1,000.",
              "Warm rerun, first result after run start: " + ", ".join(
                  f"{r['first_result_after_run_start_s']:.2f} s (process {r['process_wall_s']:.2f} s)" for r in warm["runs"]),
              ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iters", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        data = photographs(work / "data", 1000)
        results = {"rounds": args.rounds, "pure": pure_inference(work, args.rounds, args.iters)}
        results["e2e"] = end_to_end(work, data, results["pure"])
        results["memory"] = memory(work, data)
        results["warm"] = warm_start(work, data)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
