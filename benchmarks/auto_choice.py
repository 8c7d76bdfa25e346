"""`--backend auto` against the fastest backend, per model: does the probe pick a backend within 0.9x?

    python benchmarks/auto_choice.py [--bs 8] [--seconds 3] [--out benchmarks/results/auto-choice.md]

For LV-ViT and each model in tests/plugins, with random weights (speed does not depend on them):
1. The probe, as `modelzoo run --backend auto` makes it, in a fresh cache whose exports are built
   first (any backend needs them; the probe's own cost is what is timed): auto's choice and the
   probe's seconds.
2. `modelzoo bench` of every available CPU backend at the same batch size, about --seconds of timed
   batches each, in another cache (so that its figures cannot feed the probe): images/s per backend.
The table shows the bench figure of auto's choice over the fastest bench figure (target >= 0.9).
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from modelzoo import autochoice  # noqa: E402
from modelzoo.artifacts import Artifacts  # noqa: E402
from modelzoo.backends.base import BackendSettings  # noqa: E402
from modelzoo.bench import bench  # noqa: E402
from modelzoo.cache import Cache  # noqa: E402
from modelzoo.host import host_description, isa_line  # noqa: E402
from modelzoo.plugins import get_plugin_manager  # noqa: E402
from modelzoo.registry import Registry  # noqa: E402
from modelzoo.weights import resolve_weights  # noqa: E402

TEST_PLUGINS = ("tests.plugins.tinycnn.plugin", "tests.plugins.tinytext.plugin", "tests.plugins.tinyseg.plugin")
TARGET = 0.9


def registry() -> Registry:
    import importlib

    pm = get_plugin_manager(load_entrypoints=True)  # LV-ViT through its entry point
    for module in TEST_PLUGINS:
        pm.register(importlib.import_module(module))
    return Registry(pm)


def probe(reg: Registry, model: str, batch_size: int, root: Path) -> autochoice.Choice:
    entry = reg.model(model)
    cache = Cache(root / "probe-cache")
    weights = resolve_weights(entry.manifest, None)
    artifacts_for = lambda backend: Artifacts(entry, weights, cache, variant=backend.export_variant,  # noqa: E731
                                              quiet=True)
    settings = BackendSettings(workdir=root / "probe")
    for backend in reg.candidates("auto")[0]:
        backend.prepare(artifacts_for(backend), batch_size, settings)  # the exports, before the clock starts
    choice = autochoice.choose(reg, entry, batch_size, settings, artifacts_for, cache.root)
    if choice.session is not None:
        choice.session.close()
    return choice


def measure(reg: Registry, model: str, batch_size: int, seconds: float, root: Path) -> dict:
    choice = probe(reg, model, batch_size, root)
    fps = {}
    for name, probed in choice.report["figures"].items():
        # About `seconds` of timed batches per backend, sized by its probe (at least 10 batches).
        iters = max(10, math.ceil(seconds * probed["fps"] / batch_size))
        result = bench(reg, model, [name], [batch_size], 2, iters, root / "bench" / name, root / "bench-cache")
        fps[name] = result["rows"][0]["fps"]
    fastest = max(fps, key=fps.get)
    return {"model": model, "batch_size": batch_size, "auto": choice.backend.name,
            "probe_s": choice.report["probe_s"],
            "probe_fps": {name: f["fps"] for name, f in choice.report["figures"].items()},
            "bench_fps": fps, "fastest": fastest, "ratio": fps[choice.backend.name] / fps[fastest]}


def markdown(rows: list[dict], seconds: float) -> str:
    host = host_description()
    backends = sorted({name for row in rows for name in row["bench_fps"]})
    lines = [
        "# `--backend auto` against the fastest backend",
        "",
        f"Host: {host['cpu']}, {host['cpus']} CPUs; ISA: {isa_line(host)}. Written by benchmarks/auto_choice.py.",
        f"auto: the probe's choice (one warm-up batch, then {autochoice.PROBE_SECONDS:g} s of batches per "
        "backend, exports built beforehand); probe s: what the probe took. img/s: `modelzoo bench` "
        f"(2 warm-up batches, then about {seconds:g} s of batches) in a separate cache. ratio: bench img/s "
        "of auto's choice over "
        f"the fastest; target >= {TARGET}.",
        "",
        f"| model | batch size | auto | probe s | {' | '.join(f'{b} img/s' for b in backends)} | fastest | ratio |",
        "|---|---|---|---|" + "---|" * len(backends) + "---|---|",
    ]
    for row in rows:
        cells = " | ".join(f"{row['bench_fps'][b]:.1f}" if b in row["bench_fps"] else "n/a" for b in backends)
        lines.append(f"| {row['model']} | {row['batch_size']} | {row['auto']} | {row['probe_s']:.2f} | {cells} | "
                     f"{row['fastest']} | {row['ratio']:.2f}{'' if row['ratio'] >= TARGET else ' (below target)'} |")
    lines += ["", "The probe's own figures (img/s), for comparison:", ""]
    for row in rows:
        probed = ", ".join(f"{name} {fps:.1f}" for name, fps in row["probe_fps"].items())
        lines.append(f"- {row['model']}: {probed}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bs", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed bench seconds per backend")
    parser.add_argument("--models", default="tinycnn,tinytext,tinyseg,lvvit")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "auto-choice.md")
    args = parser.parse_args()
    reg = registry()
    rows = []
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            rows.append(measure(reg, model, args.bs, args.seconds, Path(tmp)))
        print(rows[-1], flush=True)
    text = markdown(rows, args.seconds)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
