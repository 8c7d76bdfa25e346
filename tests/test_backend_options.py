"""A backend's own flags, as a third-party backend declares them: on `run` and `bench` in a group
of their own, and their values in the options its `open()` receives; a flag of a backend that does
not run is ignored with one warning line."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import install_plugin, run_cli

# An installed backend plugin with its own option: ONNX Runtime underneath, and `open()` records
# the options it was given beside the run's other files.
SHAPES_BACKEND = '''\
import json
from dataclasses import asdict, dataclass

import onnxruntime

from modelzoo.api import Backend, Session, hookimpl


@dataclass(frozen=True)
class ShapesOptions:
    max_batch: int = 1


class ShapesSession(Session):
    def __init__(self, path, batch_size):
        super().__init__()
        self.static_batch = batch_size  # a short last batch is padded to the ONNX's static batch
        self.inner = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])

    def infer(self, inputs):
        names = [o.name for o in self.inner.get_outputs()]
        return dict(zip(names, self.inner.run(names, inputs)))


class ShapesBackend(Backend):
    name = "shapes"
    description = "ONNX Runtime with a maximum batch (test plugin)"

    def add_options(self, group, command):
        group.add_argument("--max-batch", type=int, default=1, help="the largest batch to plan for")

    def options_from(self, args):
        return ShapesOptions(max_batch=args.max_batch)

    def open(self, artifacts, batch_size, settings):
        settings.workdir.mkdir(parents=True, exist_ok=True)
        (settings.workdir / "shapes-options.json").write_text(json.dumps(asdict(settings.options)))
        return ShapesSession(artifacts.onnx(batch_size), batch_size)


@hookimpl
def modelzoo_register_backends(register):
    register(ShapesBackend())
'''


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    site = tmp_path / "site"
    site.mkdir()
    (site / "shapes_backend.py").write_text(SHAPES_BACKEND)
    install_plugin(site, "shapes_backend", "shapes = shapes_backend")
    return install_plugin(site, "tinycnn_plugin", "tinycnn = tests.plugins.tinycnn.plugin")


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def run_tiny(env, tmp_path: Path, tiny_data: Path, tiny_weights: Path, output: str, *flags: str):
    return ok(run_cli("run", "tinycnn", "--bs", "2", "--workers", "0", "--data", str(tiny_data), "--weights",
                      str(tiny_weights), "--output", str(tmp_path / output), "--cache-dir", str(tmp_path / "cache"),
                      *flags, env=env))


def test_a_plugin_backends_flag_reaches_its_open_and_the_report(env, tmp_path, tiny_data, tiny_weights):
    result = run_tiny(env, tmp_path, tiny_data, tiny_weights, "out", "--backend", "shapes", "--max-batch", "3")
    assert json.loads((tmp_path / "out" / "shapes-options.json").read_text()) == {"max_batch": 3}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["backend"] == "shapes" and report["backend_options"] == {"max_batch": 3}
    assert report["images"] == 7
    assert "ignored" not in result.stderr


def test_the_flag_is_listed_under_its_backend_on_run_and_bench(env):
    for command in ("run", "bench"):
        text = ok(run_cli(command, "--help", env=env)).stdout
        shapes = text[text.index("shapes backend options:"):]
        assert "--max-batch" in shapes.split("\n\n")[0]
        ascend = text[text.index("ascend backend options:"):]
        assert "--soc-version" in ascend.split("\n\n")[0]


def test_bench_hands_the_flag_to_the_backend(env, tmp_path):
    out = tmp_path / "bench"
    ok(run_cli("bench", "tinycnn", "--backend", "shapes", "--bs", "2", "--warmup", "0", "--iters", "1",
               "--max-batch", "5", "--output", str(out), "--cache-dir", str(tmp_path / "cache"), env=env))
    assert json.loads((out / "shapes-options.json").read_text()) == {"max_batch": 5}


def test_a_flag_of_a_backend_that_does_not_run_is_ignored_with_one_warning(env, tmp_path, tiny_data, tiny_weights):
    result = run_tiny(env, tmp_path, tiny_data, tiny_weights, "ort", "--backend", "onnxruntime",
                      "--soc-version", "Ascend310P3", "--max-batch", "4")
    warnings = [line for line in result.stderr.splitlines() if "ignored" in line]
    assert sorted(warnings) == [
        "modelzoo: --max-batch: option of the shapes backend, which does not run here (onnxruntime); ignored",
        "modelzoo: --soc-version: option of the ascend backend, which does not run here (onnxruntime); ignored"]
    report = json.loads((tmp_path / "ort" / "report.json").read_text())
    assert report["backend"] == "onnxruntime" and report["backend_options"] is None
