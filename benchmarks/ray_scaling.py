"""Figures behind docs/scaling.md: what one session actor does, and what the driver can take in.

    unshare -n sh -c 'ip link set lo up && exec python benchmarks/ray_scaling.py'   # as root

It starts a Ray cluster of its own on loopback (hence the network namespace), then measures:
1. driver: the driver's ceiling. A no-op backend registered here answers every batch at once with
   zeros, and its model's preprocessing reads nothing, so the actors outpace the driver: the
   results it records per second (batch lines appended and fsync'ed to results.jsonl) is the
   most any cluster can deliver to one driver. Two runs of different length per batch size; the
   slope between them cancels start-up.
2. actor: LV-ViT-S through `--engine ray` with one session actor on a node that has all of this
   host's CPUs, against a local run of the same images (pure and end-to-end images/s).
3. ci: `modelzoo ci` of one LV-ViT-S (fresh cache: export, parity, smoke) and of a tiny model,
   locally and as Ray tasks: the seconds one model's checks take, and what a task adds.
Prints every figure and writes them to benchmarks/results/ray_scaling.json with `uptime` (`--parts`
runs some parts only and keeps the others' figures in that file).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]

from modelzoo.backends.base import Backend, Session  # noqa: E402
from modelzoo.hookspecs import hookimpl  # noqa: E402


class NoopSession(Session):
    def __init__(self, outputs) -> None:
        super().__init__()
        self.outputs = outputs  # the manifest's output tensors

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        rows = len(next(iter(inputs.values())))
        return {t.name: np.zeros(t.concrete_shape(rows), t.dtype) for t in self.outputs}


class NoopBackend(Backend):
    name = "noop"
    description = "answers at once with zeros (driver benchmark)"

    def prepare(self, artifacts, batch_size, settings) -> None:
        pass

    def open(self, artifacts, batch_size, settings) -> Session:
        return NoopSession(artifacts.manifest.outputs)


class NoopPlugin:
    @hookimpl
    def modelzoo_register_backends(self, register):
        register(NoopBackend())


def read_nothing(path: Path) -> np.ndarray:
    return np.zeros((3, 1, 1), np.float32)


def registry():
    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry

    pm = get_plugin_manager()
    pm.register(NoopPlugin())
    return Registry(pm)


def empty_images(root: Path, count: int) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    names = [f"ILSVRC2012_val_{i + 1:08d}.JPEG" for i in range(count)]
    for name in names:
        (root / "images" / name).touch()
    (root / "val_label.txt").write_text("".join(f"{n} {i % 1000}\n" for i, n in enumerate(names)))
    return root


# Two no-op actors feed the driver: if one actor were the limit, a second would raise the rate.
ACTORS = 2


def driver_ceiling(work: Path, address: str) -> list[dict]:
    from modelzoo.pipeline import RunOptions, run

    reg = registry()
    reg.models["lvvit"] = replace(reg.models["lvvit"], preprocess=read_nothing)
    rows = []
    for batch_size, counts in ((1, (300, 1500)), (16, (1000, 5000)), (64, (2000, 10000))):
        seconds = []
        for count in counts:
            data = empty_images(work / f"empty{count}", count)
            report = run(reg, RunOptions(model="lvvit", backend="noop", batch_size=batch_size, data=data,
                                         output=work / f"noop-bs{batch_size}-{count}", engine="ray",
                                         address=address, quiet=True, fresh=True, cache_dir=work / "cache",
                                         actors_per_node=ACTORS))
            seconds.append(report["stages_s"]["preprocess_and_infer"])
        rate = (counts[1] - counts[0]) / (seconds[1] - seconds[0])
        rows.append({"batch_size": batch_size, "actors": ACTORS, "images": list(counts), "seconds": seconds,
                     "images_per_s": rate, "batches_per_s": rate / batch_size})
        print(f"driver ceiling bs{batch_size}: {rate:.0f} images/s, {rate / batch_size:.0f} batches/s "
              f"({counts} images in {seconds[0]:.2f} s / {seconds[1]:.2f} s)", flush=True)
    return rows


def modelzoo(*args: str, env: dict | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "modelzoo", "--quiet", *args], capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    if result.returncode not in (0, 1):
        sys.exit(f"modelzoo {' '.join(args)} failed:\n{result.stderr}")
    return time.perf_counter() - started


def per_actor(work: Path, address: str, images: int) -> dict:
    from run_benchmarks import photographs

    data = photographs(work / "photos", images)
    found = {}
    for engine in ("local", "ray"):
        out = work / f"lvvit-{engine}"
        args = ["run", "lvvit", "--bs", "4", "--data", str(data), "--output", str(out), "--fresh",
                "--cache-dir", str(work / "cache"), "--engine", engine]
        modelzoo(*args, *(["--address", address] if engine == "ray" else []))
        report = json.loads((out / "report.json").read_text())
        found[engine] = {k: report[k] for k in ("backend", "images", "throughput_fps", "e2e_fps")}
        found[engine]["open_s"] = report["stages_s"]["open"]
        print(f"LV-ViT-S bs4 {engine}: {report['backend']}, {report['throughput_fps']:.2f} img/s pure, "
              f"{report['e2e_fps']:.2f} img/s end to end over {report['images']} images", flush=True)
    return found


def ci_seconds(work: Path, address: str) -> dict:
    """A tiny model from a tree and the installed LV-ViT-S, each with a fresh cache."""
    from tests.test_zoo_ci import write_plugin

    tiny = work / "tiny-plugin"
    write_plugin(tiny, "bench_tiny")
    found = {}
    for engine in ("local", "ray"):
        shutil.rmtree(work / "home" / "cluster-cache", ignore_errors=True)  # the node exports afresh too
        out = work / f"ci-{engine}"
        extra = ["--address", address] if engine == "ray" else []
        wall = modelzoo("ci", str(tiny), "--output", str(out), "--engine", engine, *extra)
        models = json.loads((out / "ci.json").read_text())["models"]
        found[engine] = {"wall_s": wall, "models": {
            name: {c: k["seconds"] for c, k in m["checks"].items()} for name, m in models.items()}}
        print(f"ci {engine}: {wall:.1f} s wall, check seconds {found[engine]['models']}", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="driver,actor,ci")
    parser.add_argument("--images", type=int, default=48, help="LV-ViT images for the actor part")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "ray_scaling.json")
    args = parser.parse_args()
    if [name for _, name in socket.if_nameindex()] != ["lo"]:
        sys.exit("run this inside a loopback-only network namespace (see the docstring)")
    from ray.cluster_utils import Cluster

    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(dir=REPO) as tmp:  # on the disk the results go to: fsync is real
        work = Path(tmp)
        os.environ["MODELZOO_HOME"] = str(work / "home")
        cluster = Cluster(initialize_head=True, head_node_args={
            "num_cpus": cpus, "node_ip_address": "127.0.0.1", "include_dashboard": False})
        try:
            figures = {"uptime": subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
                       "cpus": cpus}
            print(figures["uptime"], flush=True)
            parts = args.parts.split(",")
            if "driver" in parts:
                figures["driver"] = driver_ceiling(work, cluster.address)
            if "actor" in parts:
                figures["actor"] = per_actor(work, cluster.address, args.images)
            if "ci" in parts:
                figures["ci"] = ci_seconds(work, cluster.address)
            figures["uptime_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
            print(figures["uptime_after"])
        finally:
            cluster.shutdown()
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    args.out.write_text(json.dumps({**earlier, **figures}, indent=2) + "\n")  # parts run alone add up
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
