"""`--engine ray` on a real three-node Ray cluster: same report as a local run, faults lose nothing.

One cluster for the module, on loopback only (see conftest.py): a head and a worker with one CPU
each, and a node with one CPU, two fake NPUs and the fake Ascend toolchain. Every node has its own
MODELZOO_HOME, so artifacts reach a node only by being shipped there. The nodes slow the tiny
model's preprocessing down, so that a fault can strike in the middle of a run.
"""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from modelzoo.pipeline import RunOptions, run
from modelzoo.testing.fake_ascend import install as install_fake_ascend
from modelzoo.zoo_ci import run_ci
from tests.conftest import write_photo
from tests.margins import assert_records_agree
from tests.plugins.tinycnn.plugin import DELAY_ENV

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parent.parent
IMAGES = 40
BATCH = 2
# Figures that measure this particular process, not the evaluation.
# agreement: a cluster run does not compare its sessions with torch (they run on other nodes).
# preprocessing: where it ran (a local run's workers; a cluster's actors).
# (padding is compared: an actor sorts its chunk of samples by size as a local run sorts its window.)
TIMING_KEYS = {"throughput_fps", "e2e_fps", "latency_ms", "stages_s", "peak_rss_mb", "created", "resumed_images",
               "cluster", "agreement", "preprocessing"}


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory) -> Path:
    """The tiny plugin installed for subprocesses: a dist-info with its entry point."""
    site = tmp_path_factory.mktemp("site")
    info = site / "tinycnn_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tinycnn-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[modelzoo]\ntinycnn = tests.plugins.tinycnn.plugin\n")
    return site


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, tiny_site):
    homes = tmp_path_factory.mktemp("node-homes")
    pythonpath = os.pathsep.join([str(tiny_site), str(REPO), os.environ.get("PYTHONPATH", "")])

    def env(name: str, **extra: str) -> dict[str, str]:
        """A node's own MODELZOO_HOME and temporary folder (what its actors leave stays with the test)."""
        (homes / name / "tmp").mkdir(parents=True, exist_ok=True)
        return {"PYTHONPATH": pythonpath, "MODELZOO_HOME": str(homes / name), "TMPDIR": str(homes / name / "tmp"),
                DELAY_ENV: "0.3", **extra}

    fake_bin = tmp_path_factory.mktemp("fake-ascend-bin")
    fake = install_fake_ascend(fake_bin)

    def add_npu_node(name: str, npus: int = 2):
        """A node with fake NPUs whose `atc` notes each run in HOME/atc-runs before it compiles."""
        counting = homes / name / "bin"
        counting.mkdir(parents=True)
        (counting / "atc").write_text(f'#!/bin/sh\necho run >> "{homes / name / "atc-runs"}"\n'
                                      f'exec "{fake_bin / "atc"}" "$@"\n')
        (counting / "atc").chmod(0o755)
        return made.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={"NPU": npus}, env_vars=env(
            name, PATH=os.pathsep.join([str(counting), fake["PATH"]]),
            PYTHONPATH=os.pathsep.join([fake["PYTHONPATH"], pythonpath])))

    made = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False, "env_vars": env("head")})
    made.add_node(num_cpus=1, node_ip_address="127.0.0.1", env_vars=env("worker"))
    made.npu_node = add_npu_node("npu")
    made.add_npu_node = add_npu_node
    ray.init(address=made.address)
    made.homes = homes
    try:
        nodes = ray.nodes()
        assert len(nodes) == 3 and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}
        yield made
    finally:
        ray.shutdown()
        made.shutdown()


@pytest.fixture(scope="module")
def many_pictures(tmp_path_factory) -> Path:
    data = tmp_path_factory.mktemp("many-pictures")
    (data / "pictures").mkdir()
    for i in range(IMAGES):
        write_photo(data / "pictures" / f"pic{i:02d}.png", (36 + i % 9, 40), seed=i)
    (data / "classes.txt").write_text("".join(f"pic{i:02d}.png {i % 10}\n" for i in range(IMAGES)))
    return data


@pytest.fixture(scope="module")
def driver_cache(tmp_path_factory) -> Path:
    """The drivers' artifact cache: exported once for the module (the nodes have caches of their own)."""
    return tmp_path_factory.mktemp("driver-cache")


def options(data: Path, weights: Path, output: Path, cache: Path, **extra) -> RunOptions:
    return RunOptions(**{"model": "tinycnn", "backend": "onnxruntime", "batch_size": BATCH, "weights": weights,
                         "data": data, "output": output, "cache_dir": cache, "quiet": True, "workers": 0, **extra})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_registry, many_pictures, tiny_weights) -> Path:
    """The local run every cluster run must match."""
    output = tmp_path_factory.mktemp("local")
    run(tiny_registry, options(many_pictures, tiny_weights, output, tmp_path_factory.mktemp("local-cache")))
    return output


def comparable(output: Path) -> tuple[dict, dict]:
    report = json.loads((output / "report.json").read_text())
    return {k: v for k, v in report.items() if k not in TIMING_KEYS}, \
        json.loads((output / "predictions.json").read_text())


def assert_agrees_with(output: Path, reference: Path, atol: float = 1e-4) -> None:
    """An Ascend run (the fake runs its own graph layout) agrees with the local ONNX Runtime run:
    scores within `atol`, classes as far as the reference's margins exceed twice that (tests.margins)."""
    def records(folder: Path) -> dict:
        return json.loads((folder / "predictions.json").read_text())

    assert len(assert_records_agree(records(reference), records(output), atol=atol)) >= IMAGES // 4


def recorded(output: Path) -> tuple[list[str], dict[str, list[float]]]:
    """Every sample key results.jsonl holds, in order of appearance, and its top-5 scores."""
    lines = [json.loads(line) for line in (output / "results.jsonl").read_text().splitlines()[1:]]
    keys = [k for line in lines for k in line.get("keys", [])]
    scores = {k: r["scores"] for line in lines for k, r in zip(line.get("keys", []), line.get("records", []))}
    return keys, scores


def assert_same_as_reference(output: Path, reference: Path) -> None:
    assert comparable(output) == comparable(reference)
    keys, scores = recorded(output)
    assert sorted(keys) == sorted(set(keys)) and len(keys) == IMAGES  # nothing lost, nothing twice
    expected = recorded(reference)[1]
    assert scores.keys() == expected.keys()
    for key, row in scores.items():
        assert row == pytest.approx(expected[key], rel=1e-5, abs=1e-6)


def test_a_cluster_run_reports_what_a_local_run_does(cluster, tmp_path, tiny_registry, many_pictures,
                                                     tiny_weights, reference):
    cache = tmp_path / "driver-cache"
    scratch = set(cluster.homes.glob("*/tmp/modelzoo-actor-*"))
    report = run(tiny_registry, options(many_pictures, tiny_weights, tmp_path / "out", cache, engine="ray"))
    assert set(cluster.homes.glob("*/tmp/modelzoo-actor-*")) == scratch  # sessions closed, cleaned up

    assert_same_as_reference(tmp_path / "out", reference)
    assert len({r["top5"][0] for r in comparable(reference)[1].values()}) > 1  # predictions differ: not vacuous
    nodes = report["cluster"]["nodes"]
    assert len(nodes) == 3 and all(n["actors"] == 1 and n["images"] > 0 for n in nodes)
    assert sum(n["images"] for n in nodes) == IMAGES
    assert report["cluster"]["throughput_fps"] == pytest.approx(sum(n["throughput_fps"] for n in nodes))
    # The ONNX was built once, by the driver, and each node found it in its own cache as shipped.
    built = [f for f in cache.iterdir() if "-sim-" in f.name and f.suffix == ".onnx"]
    assert len(built) == 1
    for home in ("head", "worker", "npu"):
        assert (cluster.homes / home / "cluster-cache" / built[0].name).read_bytes() == built[0].read_bytes()


def run_locally_and_on_the_cluster(plugin, seed: int, tmp_path: Path) -> dict:
    """A test plugin's model (seeded weights) run by each engine on its demo data: engine -> report."""
    import torch

    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry

    name = plugin.MANIFEST.name
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    model = plugin.build("standard")
    plugin.init_random(model, seed)
    torch.save(model.state_dict(), tmp_path / f"{name}.pth")
    return {engine: run(Registry(pm), RunOptions(
        model=name, backend="onnxruntime", batch_size=4, weights=tmp_path / f"{name}.pth",
        output=tmp_path / engine, cache_dir=tmp_path / "cache", quiet=True, workers=0, engine=engine))
        for engine in ("local", "ray")}


def test_a_two_input_text_model_with_its_own_task_runs_the_same_on_the_cluster(cluster, tmp_path):
    """Sources that are not files, two int64 inputs, a padding collate, the plugin's own metrics."""
    import tests.plugins.tinytext.plugin as tinytext

    reports = run_locally_and_on_the_cluster(tinytext, 4, tmp_path)
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")
    assert 0 < reports["ray"]["padding"]["input_ids"] < 1  # bucketed as locally, and not vacuous
    assert reports["ray"]["metrics"] == reports["local"]["metrics"] and reports["ray"]["images"] == 12
    assert len({r["label"] for r in comparable(tmp_path / "local")[1].values()}) > 1


def test_pictures_of_several_sizes_run_the_same_on_the_cluster(cluster, tmp_path):
    """tinyseg: dynamic height and width, a padding collate, each mask cropped back by its meta."""
    import tests.plugins.tinyseg.plugin as tinyseg

    run_locally_and_on_the_cluster(tinyseg, 1, tmp_path)
    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")
    sizes = {tuple(r["size"]) for r in comparable(tmp_path / "local")[1].values()}
    assert len(sizes) > 3  # the demo pictures' own sizes, not one padded size


def atc_runs(cluster, node: str) -> int:
    runs = cluster.homes / node / "atc-runs"
    return len(runs.read_text().splitlines()) if runs.exists() else 0


def test_ascend_runs_one_session_per_npu_on_npu_nodes_and_compiles_once(cluster, tmp_path, tiny_registry,
                                                                        many_pictures, tiny_weights, reference):
    second = cluster.add_npu_node("npu-second", npus=1)
    before = atc_runs(cluster, "npu") + atc_runs(cluster, "npu-second")
    try:
        # The driver has no Ascend toolchain: only the NPU nodes check the backend and compile. At
        # fp32 the fake chip computes what ONNX Runtime does (at its default fp16 it rounds every op).
        report = run(tiny_registry, options(many_pictures, tiny_weights, tmp_path / "out", tmp_path / "cache",
                                            engine="ray", backend="ascend", precision="fp32"))
    finally:
        cluster.remove_node(second, allow_graceful=False)
        wait_until_dead(second)  # the last test needs the first NPU node to be the only one

    assert report["backend"] == "ascend"
    assert_agrees_with(tmp_path / "out", reference)
    # Both NPU nodes ran sessions, never more than one per NPU, and every image was done. (How many
    # of the 2-NPU node's sessions got a batch depends on how soon each opened: the report counts
    # only sessions that ran one.)
    npus = {cluster.npu_node.node_id[:8]: 2, second.node_id[:8]: 1}
    nodes = {n["node"].rsplit("/", 1)[1]: n for n in report["cluster"]["nodes"]}
    assert set(nodes) == set(npus) and all(1 <= nodes[n]["actors"] <= npus[n] for n in npus)
    assert sum(n["images"] for n in nodes.values()) == IMAGES
    # One atc run in all: the first session built the .om, the other NPU node was sent it.
    assert atc_runs(cluster, "npu") + atc_runs(cluster, "npu-second") - before == 1
    [om] = (cluster.homes / "npu" / "cluster-cache").glob("tinycnn-ascend-*.om")
    assert (cluster.homes / "npu-second" / "cluster-cache" / om.name).read_bytes() == om.read_bytes()
    assert not list((cluster.homes / "worker" / "cluster-cache").glob("*.om"))


def wait_until_dead(node, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while any(n["NodeID"] == node.node_id and n["Alive"] for n in ray.nodes()):
        assert time.monotonic() < deadline, "Ray still lists the removed node as alive"
        time.sleep(0.2)


class Driver:
    """`modelzoo run --engine ray` in a subprocess, its log lines collected as they come."""

    def __init__(self, cluster, tiny_site: Path, data: Path, weights: Path, output: Path, cache: Path, *extra):
        self.output = output
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tiny_site), str(REPO)])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelzoo", "run", "tinycnn", "--engine", "ray", "--address", cluster.address,
             "--bs", str(BATCH), "--data", str(data), "--weights", str(weights),
             "--output", str(output), "--cache-dir", str(cache), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def wait_for(self, condition, what: str, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert self.process.poll() is None, f"driver ended before {what}: {''.join(self.lines)}"
            assert time.monotonic() < deadline, f"no {what} after {timeout} s: {''.join(self.lines)}"
            time.sleep(0.02)

    def done_images(self) -> int:
        path = self.output / "results.jsonl"
        return len(recorded(self.output)[0]) if path.exists() else 0

    def actor_pids(self) -> list[int]:
        return [int(m.group(1)) for line in list(self.lines) if (m := re.search(r"session actor ready .*pid (\d+)", line))]

    def finish(self) -> int:
        code = self.process.wait(timeout=300)
        self.reader.join(timeout=10)
        return code


def test_a_node_removed_mid_run_loses_nothing(cluster, tmp_path, tiny_site, many_pictures, tiny_weights,
                                              reference, driver_cache):
    # A slow node: whenever its actor is ready, the batches it takes are still running when it goes.
    doomed = cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", env_vars={
        "PYTHONPATH": os.pathsep.join([str(tiny_site), str(REPO)]), "MODELZOO_HOME": str(tmp_path / "doomed"),
        "TMPDIR": str(tmp_path), DELAY_ENV: "1.5"})
    driver = Driver(cluster, tiny_site, many_pictures, tiny_weights, tmp_path / "out", driver_cache,
                    "--backend", "onnxruntime", "--ship-data")
    doomed_ready = f"session actor ready on node 127.0.0.1/{doomed.node_id[:8]}"
    driver.wait_for(lambda: any(doomed_ready in line for line in list(driver.lines)), "the node's actor")
    driver.wait_for(lambda: driver.done_images() >= BATCH, "first results")
    cluster.remove_node(doomed, allow_graceful=False)
    assert driver.finish() == 0, "".join(driver.lines)
    wait_until_dead(doomed)  # so that the next test's driver plans no actor on it

    assert_same_as_reference(tmp_path / "out", reference)
    figures = json.loads((tmp_path / "out" / "report.json").read_text())["cluster"]
    # Ray may take a while to call the node dead: a replacement tried there meanwhile is lost too.
    assert figures["lost_actors"] >= 1 and figures["rerun_batches"] >= 1


def test_an_actor_killed_mid_run_loses_nothing(cluster, tmp_path, tiny_site, many_pictures, tiny_weights, reference,
                                               driver_cache):
    driver = Driver(cluster, tiny_site, many_pictures, tiny_weights, tmp_path / "out", driver_cache,
                    "--backend", "onnxruntime")
    driver.wait_for(lambda: len(driver.actor_pids()) == 3 and driver.done_images() >= BATCH, "first results")
    os.kill(driver.actor_pids()[0], signal.SIGKILL)
    assert driver.finish() == 0, "".join(driver.lines)

    assert_same_as_reference(tmp_path / "out", reference)
    figures = json.loads((tmp_path / "out" / "report.json").read_text())["cluster"]
    assert figures["lost_actors"] == 1 and figures["rerun_batches"] >= 1
    assert any("is lost" in line for line in driver.lines)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_stopped_driver_frees_the_cluster_and_the_rerun_resumes(cluster, tmp_path, tiny_site, many_pictures,
                                                                  tiny_weights, reference, driver_cache, sig):
    args = (cluster, tiny_site, many_pictures, tiny_weights, tmp_path / "out", driver_cache, "--backend", "onnxruntime")
    driver = Driver(*args)
    driver.wait_for(lambda: driver.done_images() >= BATCH, "first results")
    driver.process.send_signal(sig)
    code = driver.finish()
    stopped = time.monotonic()
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 130), "".join(driver.lines)
    assert BATCH <= driver.done_images() < IMAGES
    deadline = time.monotonic() + 60  # the actors' CPUs come back once Ray sees them gone
    while ray.available_resources().get("CPU", 0) < ray.cluster_resources()["CPU"]:
        assert time.monotonic() < deadline, "the stopped driver's actors still hold CPUs"
        time.sleep(0.1)
    print(f"actors gone {time.monotonic() - stopped:.1f} s after the driver stopped")

    resumed = Driver(*args)
    assert resumed.finish() == 0, "".join(resumed.lines)
    assert_same_as_reference(tmp_path / "out", reference)
    assert json.loads((tmp_path / "out" / "report.json").read_text())["resumed_images"] >= BATCH


# A plugin tree for `ci`: the tiny model under another name, with demo pictures.
TREE_PLUGIN = '''\
from pathlib import Path

from modelzoo.hookspecs import hookimpl
from modelzoo.manifest import load_manifest
from modelzoo.core import ModelEntry
from tests.plugins.tinycnn.plugin import build, init_random, preprocess

HERE = Path(__file__).resolve().parent


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=load_manifest(HERE / "plugin.toml"), build=build, init_random=init_random,
                        preprocess=preprocess, demo_data=HERE / "demo"))
'''


def write_tree_plugin(root: Path, name: str) -> None:
    package = root / name
    (package / "demo" / "pictures").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "plugin.py").write_text(TREE_PLUGIN)
    manifest = (REPO / "tests" / "plugins" / "tinycnn" / "plugin.toml").read_text()
    (package / "plugin.toml").write_text(manifest.replace('name = "tinycnn"', f'name = "{name}"').replace(
        'plugin = "tests.plugins.tinycnn.plugin"', f'plugin = "{name}.plugin"'))
    for i in range(4):
        write_photo(package / "demo" / "pictures" / f"pic{i}.png", (40, 30), seed=i)
    (package / "demo" / "classes.txt").write_text("".join(f"pic{i}.png {i}\n" for i in range(4)))


def test_ci_on_the_cluster_writes_what_a_local_ci_writes(cluster, tmp_path, cache_dir):
    plugins = tmp_path / "plugins"
    for name in ("ci_ray_one", "ci_ray_two"):
        write_tree_plugin(plugins, name)
    try:
        assert run_ci([plugins], tmp_path / "local", load_entrypoints=False, quiet=True, cache_dir=cache_dir) == 0
        assert run_ci([plugins], tmp_path / "ray", load_entrypoints=False, quiet=True, engine="ray") == 0
    finally:
        for name in [m for m in sys.modules if m.split(".")[0].startswith("ci_ray_")]:
            del sys.modules[name]

    local, on_cluster = (json.loads((tmp_path / d / "ci.json").read_text()) for d in ("local", "ray"))
    assert set(on_cluster["models"]) == set(local["models"]) == {"ci_ray_one", "ci_ray_two"}
    for name, model in on_cluster["models"].items():
        # The checks ran on the NPU node, where `auto` is the NPU: same outcomes, other backend.
        assert model["backend"] == "ascend" and local["models"][name]["backend"] != "ascend"
        assert {c: k["status"] for c, k in model["checks"].items()} == {c: "pass" for c in model["checks"]}
        assert model["statuses"] == local["models"][name]["statuses"]
        smoke = Path(model["smoke"]["report_path"])
        assert smoke == tmp_path / "ray" / name / "smoke" / "report.json" and smoke.is_file()
        assert (tmp_path / "ray" / name / "modelzoo_level.txt").read_text() == \
            (tmp_path / "local" / name / "modelzoo_level.txt").read_text()
    assert junit_shape(tmp_path / "ray") == junit_shape(tmp_path / "local")


def junit_shape(output: Path) -> str:
    """junit.xml without its timings and backend names."""
    text = (output / "junit.xml").read_text()
    text = re.sub(r' time="[0-9.]+"', "", text)
    return re.sub(r'<property name="backend" value="[^"]*"', '<property name="backend"', text)


def test_with_no_capable_node_left_the_run_stops_in_one_line_and_resumes_later(cluster, tmp_path, tiny_site,
                                                                               many_pictures, tiny_weights,
                                                                               reference, driver_cache):
    """The last test of the module: it takes the NPU node away (and leaves a new one in its place)."""
    args = (cluster, tiny_site, many_pictures, tiny_weights, tmp_path / "out", driver_cache, "--backend", "ascend")
    driver = Driver(*args)
    driver.wait_for(lambda: driver.done_images() >= BATCH, "first results")
    cluster.remove_node(cluster.npu_node, allow_graceful=False)
    assert driver.finish() == 2, "".join(driver.lines)
    last = driver.lines[-1].strip()
    assert last.startswith("error: no node of the Ray cluster can run backend 'ascend' any more (")
    assert last.endswith("rerun the same command to resume once nodes are back")
    assert BATCH <= driver.done_images() < IMAGES

    cluster.npu_node = cluster.add_npu_node("npu-again")
    resumed = Driver(*args)
    assert resumed.finish() == 0, "".join(resumed.lines)
    assert_agrees_with(tmp_path / "out", reference, atol=5e-2)  # the fake chip's default: fp16 ops
    keys = recorded(tmp_path / "out")[0]
    assert sorted(keys) == sorted(set(keys)) and len(keys) == IMAGES


def test_a_detectors_metas_come_back_from_the_actors(cluster, tmp_path):
    """Each sample's letterbox meta is made on the node that preprocesses it and reaches the
    driver's postprocess and results.jsonl: the same boxes, metas and mAP as a local run."""
    import torch

    import tests.plugins.tinydet.plugin as tinydet
    from modelzoo.plugins import get_plugin_manager
    from modelzoo.registry import Registry
    from tests.plugins.tinydet.scenes import write_scenes

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tinydet)
    registry = Registry(pm)
    model = tinydet.build("standard")
    tinydet.init_random(model, 3)
    torch.save(model.state_dict(), tmp_path / "tinydet.pth")
    data = write_scenes(tmp_path / "scenes", 10, seed=5)
    reports = {}
    for engine in ("local", "ray"):
        reports[engine] = run(registry, RunOptions(
            model="tinydet", backend="onnxruntime", batch_size=2, weights=tmp_path / "tinydet.pth", data=data,
            output=tmp_path / engine, cache_dir=tmp_path / "cache", quiet=True, workers=0, engine=engine))

    def metas(engine: str) -> dict:
        lines = [json.loads(line) for line in (tmp_path / engine / "results.jsonl").read_text().splitlines()[1:]]
        return {k: m for line in lines for k, m in zip(line["keys"], line["metas"], strict=True)}

    assert comparable(tmp_path / "ray") == comparable(tmp_path / "local")
    assert metas("ray") == metas("local") and len(metas("ray")) == 10
    assert reports["ray"]["metrics"] == reports["local"]["metrics"] and reports["ray"]["metrics"]["map50"] > 0.5
