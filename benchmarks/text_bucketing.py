"""Length bucketing for a dynamic axis against padding every text to the model's maximum.

    python benchmarks/text_bucketing.py [--texts 2000] [--bs 8] [--rounds 2] [--backends onnxruntime,openvino]

One text encoder (torch.nn.TransformerEncoder layers: 4, d_model 256, 4 heads; seeded random
weights; benchmarks/plugins/textenc) declared twice: `textenc-dynamic`, whose `seq` axis is dynamic
(8..512; the runner sorts texts by length within windows of batches and each batch is padded to its
longest text), and `textenc-fixed512`, shaped [batch, 512], whose preprocess pads every text to 512
tokens. --texts generated texts (seed 0) whose lengths are uniform over 8..512 tokens go through
`modelzoo run` (each run a fresh process, fp32, the same --bs) for both models on each backend, in
--rounds rounds. Prints and writes, per backend: e2e samples/s (report.json, median over the rounds)
and the ratio of bucketed to padded (target: >= 2x), also per round; padding efficiency (real over
padded tokens: report.json's `padding` for the dynamic run; the fixed model has no dynamic axis to
report, so its figure is the texts' tokens over texts x 512); and whether every run predicts the
same class for every text (predictions.json). Also counted, not timed: the padding and the
multiply-adds with the runner's windows and with windows of a fixed number of texts. Writes
text-bucketing.json and text-bucketing.md into --out.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks.plugins.textenc.model import FEED_FORWARD, LAYERS, WIDTH  # noqa: E402
from benchmarks.plugins.textenc.task import MAX_TOKENS, MIN_TOKENS, write_texts  # noqa: E402
from modelzoo.host import host_description, isa_line  # noqa: E402
from modelzoo.stream import BUCKET_BYTES, bucket_window, bucketed  # noqa: E402

MODELS = {"bucketed": "textenc-dynamic", "padded": "textenc-fixed512"}
PLUGINS = {"textenc-dynamic": "benchmarks.plugins.textenc.dynamic.plugin",
           "textenc-fixed512": "benchmarks.plugins.textenc.fixed512.plugin"}
TARGET = 2.0
# Multiply-adds per token: projections and feed-forward; and per token per position attended.
MACS_PER_TOKEN = LAYERS * (4 * WIDTH * WIDTH + 2 * WIDTH * FEED_FORWARD)
MACS_PER_PAIR = LAYERS * 2 * WIDTH


def plugin_environment(site: Path) -> dict[str, str]:
    """The environment of a `modelzoo` process that finds the two benchmark plugins: a dist-info
    in `site` whose entry points name them (what an installed plugin provides), and the repository
    on the path so that they import."""
    info = site / "modelzoo_textenc_bench-1.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: modelzoo-textenc-bench\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[modelzoo]\n" + "".join(f"{name} = {module}\n" for name, module in PLUGINS.items()))
    path = os.pathsep.join(p for p in (str(site), str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


def run_model(model: str, backend: str, batch_size: int, work: Path, env: dict[str, str]) -> dict:
    """One `modelzoo run` in a fresh process: its report's figures and each text's predicted class."""
    out = work / f"{backend}-{model}"
    load_before = load_average()
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "modelzoo", "--quiet", "run", model, "--backend", backend,
                             "--precision", "fp32", "--bs", str(batch_size), "--data", str(work / "data"),
                             "--output", str(out), "--cache-dir", str(work / "cache"), "--fresh"],
                            cwd=work, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"modelzoo run {model} --backend {backend} failed:\n{result.stderr}")
    report = json.loads((out / "report.json").read_text())
    predictions = json.loads((out / "predictions.json").read_text())
    return {"model": model, "backend": report["backend"], "precision": report["precision"],
            "samples": len(predictions), "e2e_fps": report["e2e_fps"], "throughput_fps": report["throughput_fps"],
            "padding": report["padding"], "process_wall_s": round(wall, 2), "load_before": load_before,
            "preprocess_and_infer_s": report["stages_s"]["preprocess_and_infer"],
            "labels": {key: record["label"] for key, record in predictions.items()},
            "logits": {key: record["logits"] for key, record in predictions.items()}}


def rounds(backends: list[str], count: int, batch_size: int, work: Path, env: dict[str, str]) -> dict:
    """backend -> "bucketed"/"padded" -> one run per round. The two runs of a backend follow each
    other and swap order from round to round and from backend to backend, so that a neighbour's
    load rising or falling on this shared host does not favour one of them."""
    runs: dict[str, dict[str, list[dict]]] = {b: {name: [] for name in MODELS} for b in backends}
    for index in range(count):
        for position, backend in enumerate(backends):
            order = list(MODELS) if (index + position) % 2 == 0 else list(reversed(MODELS))
            for name in order:
                run = {**run_model(MODELS[name], backend, batch_size, work, env), "round": index + 1}
                runs[backend][name].append(run)
                print(f"round {index + 1}: {backend} {name}: {run['e2e_fps']:.1f} samples/s "
                      f"(load {run['load_before']})", flush=True)
    return runs


def compare(runs: dict[str, list[dict]], lengths: list[int]) -> dict:
    """A backend's row: median e2e of each model over the rounds and their ratio, each round's
    ratio, padding efficiency, and whether every run predicts every text's class as the first
    padded run does."""
    reference = runs["padded"][0]
    others = runs["bucketed"] + runs["padded"][1:]
    keys = sorted(reference["labels"])
    same = min(sum(run["labels"].get(k) == reference["labels"][k] for k in keys) for run in others)
    largest = max(abs(a - b) for run in others for k in keys
                  for a, b in zip(run["logits"][k], reference["logits"][k]))
    median = {name: statistics.median(run["e2e_fps"] for run in found) for name, found in runs.items()}
    return {"bucketed_e2e_fps": median["bucketed"], "padded_e2e_fps": median["padded"],
            "ratio": median["bucketed"] / median["padded"],
            "round_ratios": [b["e2e_fps"] / p["e2e_fps"] for b, p in zip(runs["bucketed"], runs["padded"])],
            "bucketed_padding": runs["bucketed"][0]["padding"]["input_ids"],
            "padded_padding": round(sum(lengths) / (len(lengths) * MAX_TOKENS), 4),
            "identical_predictions": same == len(keys) and all(len(run["labels"]) == len(keys) for run in others),
            "same_class": same, "texts": len(keys), "max_abs_logit_diff": largest,
            "runs": {name: [{k: v for k, v in run.items() if k not in ("labels", "logits")} for run in found]
                     for name, found in runs.items()}}


def batch_lengths(lengths: list[int], batch_size: int, window: int, budget: int) -> list[tuple[int, int]]:
    """(texts, padded length) of each batch the runner makes when it buckets these texts' token ids
    (int64, as textenc-dynamic's preprocess returns them) within windows of `window` texts grown
    while under `budget` bytes: its own `bucketed`."""
    rows = ((str(i), {"input_ids": np.empty(n, np.int64)}) for i, n in enumerate(lengths))
    order = [row["input_ids"].size for _, row in bucketed(rows, window, budget)]
    return [(len(order[i:i + batch_size]), max(MIN_TOKENS, *order[i:i + batch_size]))
            for i in range(0, len(order), batch_size)]


def bucketing_ceiling(lengths: list[int], batch_size: int) -> dict:
    """What bucketing can give at most, counted not timed: padding efficiency and the padded run's
    multiply-adds over the bucketed run's, with the runner's windows and with fixed windows of
    several sizes."""
    def figures(batches: list[tuple[int, int]]) -> dict:
        def macs(found: list[tuple[int, int]]) -> int:
            return sum(n * (length * MACS_PER_TOKEN + length * length * MACS_PER_PAIR) for n, length in found)
        return {"padding": round(sum(lengths) / sum(n * length for n, length in batches), 4),
                "macs_ratio": round(macs([(1, MAX_TOKENS)] * len(lengths)) / macs(batches), 3)}

    window = bucket_window(batch_size)
    found = {"runner": figures(batch_lengths(lengths, batch_size, window, BUCKET_BYTES))}
    for fixed in sorted({w for w in (window, 4 * window) if w < len(lengths)} | {len(lengths)}):
        found[str(fixed)] = figures(batch_lengths(lengths, batch_size, fixed, budget=0))
    return found


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def markdown(measured: dict) -> str:
    host = measured["host"]
    lines = [
        "# Length bucketing for a dynamic axis vs padding to 512",
        "",
        f"Host: {host['cpu']}, {host['cpus']} CPUs; ISA: {isa_line(host)}. Written by benchmarks/text_bucketing.py "
        f"in {measured['wall_s']:.0f} s; load average (1, 5, 15 min) {measured['load_start']} at the start and "
        f"{measured['load_end']} at the end (the host is shared).",
        f"{measured['texts']} generated texts, lengths uniform over 8..512 tokens (mean "
        f"{measured['mean_tokens']:.1f}); text encoder with 4 torch.nn.TransformerEncoder layers, d_model 256, "
        f"seeded random weights; `modelzoo run --precision fp32 --bs {measured['batch_size']}`, each run a fresh "
        f"process, {measured['rounds']} rounds (each backend's two runs back to back, their order swapped every "
        "round). bucketed: `textenc-dynamic` (runner sorts by length within windows of "
        f"{measured['bucket_window']} texts, grown while they take under {measured['bucket_mib']:g} MiB: these "
        f"texts' token ids take {measured['token_mib']:.1f} MiB; batches padded to their longest); padded: "
        "`textenc-fixed512`. "
        "e2e: report.json's e2e_fps (samples/s), median over the rounds; ratio: of those medians, and "
        "per round. padding: real over padded tokens. same class: texts whose "
        f"predicted class is the same in every run. Target: bucketed >= {TARGET:g}x padded.",
        "",
        "| backend | bucketed samples/s | padded samples/s | ratio | per round | padding bucketed | padding padded "
        "| same class | max abs logit diff |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for backend, row in measured["backends"].items():
        met = "" if row["ratio"] >= TARGET else " (below target)"
        lines.append(f"| {backend} | {row['bucketed_e2e_fps']:.1f} | {row['padded_e2e_fps']:.1f} | "
                     f"{row['ratio']:.2f}x{met} | {', '.join(f'{r:.2f}' for r in row['round_ratios'])} | "
                     f"{row['bucketed_padding']:.3f} | {row['padded_padding']:.3f} | "
                     f"{row['same_class']}/{row['texts']} | {row['max_abs_logit_diff']:.1e} |")
    lines += ["", "Counted, not timed: padding efficiency and the padded run's multiply-adds over the bucketed "
              "run's, with the runner's windows and with windows of a fixed number of texts (the runner's own "
              "sort over these texts):", "",
              "| window (texts) | padding | multiply-adds padded / bucketed |", "|---|---|---|"]
    for window, figures in measured["ceiling_by_window"].items():
        name = "the runner's" if window == "runner" else f"{window}, fixed"
        lines.append(f"| {name} | {figures['padding']:.3f} | {figures['macs_ratio']:.2f}x |")
    ceiling = measured["ceiling_by_window"]["runner"]["macs_ratio"]
    lines += ["", f"The runner's windows bound the e2e ratio at about {ceiling:.2f}x: the padded run does that many "
              "times the bucketed run's multiply-adds, and the rest of a run (reading, collating, writing results) "
              "costs the same per text in both."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--bs", type=int, default=8)
    parser.add_argument("--backends", default="onnxruntime,openvino")
    parser.add_argument("--rounds", type=int, default=2, help="runs of each model per backend")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()
    started, load_start = time.perf_counter(), load_average()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        lengths = write_texts(work / "data", args.texts)
        env = plugin_environment(work / "site")
        measured_runs = rounds(args.backends.split(","), args.rounds, args.bs, work, env)
        rows = {backend: compare(runs, lengths) for backend, runs in measured_runs.items()}
        for backend, row in rows.items():
            print(f"{backend}: bucketed {row['bucketed_e2e_fps']:.1f} samples/s, padded "
                  f"{row['padded_e2e_fps']:.1f} samples/s, ratio {row['ratio']:.2f}x; padding efficiency "
                  f"{row['bucketed_padding']:.3f} vs {row['padded_padding']:.3f}; predictions identical: "
                  f"{row['identical_predictions']} ({row['same_class']}/{row['texts']}, max |logit diff| "
                  f"{row['max_abs_logit_diff']:.1e})", flush=True)
    measured = {"texts": args.texts, "batch_size": args.bs, "rounds": args.rounds,
                "bucket_window": bucket_window(args.bs), "bucket_mib": BUCKET_BYTES / 2**20,
                "token_mib": 8 * sum(lengths) / 2**20, "mean_tokens": sum(lengths) / len(lengths),
                "target_ratio": TARGET,
                "ceiling_by_window": bucketing_ceiling(lengths, args.bs), "host": host_description(),
                "load_start": load_start, "load_end": load_average(), "wall_s": time.perf_counter() - started,
                "backends": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "text-bucketing.json").write_text(json.dumps(measured, indent=2) + "\n")
    text = markdown(measured)
    (args.out / "text-bucketing.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
