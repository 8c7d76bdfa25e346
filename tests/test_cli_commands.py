"""`modelzoo source`, `run --model-source upstream`, `bench` and `ci` as a user runs them: subprocesses
on the tiny test plugins, installed through an entry point or found in their directory trees."""
from __future__ import annotations

import inspect
import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import tests.plugins.tinycnn.plugin as tiny_plugin
from modelzoo.source import MARKER
from tests.conftest import REPO, install_plugin, predicted_classes, run_cli

TINY_MANIFEST = REPO / "tests" / "plugins" / "tinycnn" / "plugin.toml"

# tinycnn, whose model can also be built from upstream's code: a checkout holding tinynet.py.
UPSTREAM_PLUGIN = '''\
import importlib.util
from pathlib import Path

import tests.plugins.tinycnn.plugin as tiny
from modelzoo.api import ModelEntry, hookimpl, load_manifest

MANIFEST = load_manifest(Path(__file__).with_name("tinyup.toml"))


def build_upstream(checkout, variant):
    spec = importlib.util.spec_from_file_location("tinyup_upstream_net", Path(checkout) / "tinynet.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TinyCNN().eval()


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=MANIFEST, build=tiny.build, init_random=tiny.init_random,
                        preprocess=tiny.preprocess, build_upstream=build_upstream))
'''

# Upstream's code: tinycnn's network itself (same parameter names, so that its weights load).
UPSTREAM_NET = "import torch\n\n\n" + inspect.getsource(tiny_plugin.TinyCNN)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr
    return result


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


def upstream_repository(root: Path) -> tuple[Path, str, str]:
    """A git repository holding tinynet.py; its commit, and a patch that reverses the class axis."""
    repo = root / "tinynet-upstream"
    repo.mkdir()
    git(repo, "init", "--quiet")
    (repo / "tinynet.py").write_text(UPSTREAM_NET)
    git(repo, "add", "tinynet.py")
    git(repo, "commit", "--quiet", "-m", "tinynet")
    (repo / "tinynet.py").write_text(UPSTREAM_NET.replace("return self.head(self.features(x))",
                                                          "return self.head(self.features(x)).flip(1)"))
    patch = git(repo, "diff")
    git(repo, "checkout", "--", "tinynet.py")
    return repo, git(repo, "rev-parse", "HEAD").strip(), patch


def test_source_then_run_from_upstream_code_with_its_patch(tmp_path, tiny_data, tiny_weights):
    site = tmp_path / "site"
    (site / "patches").mkdir(parents=True)
    repo, commit, patch = upstream_repository(tmp_path)
    (site / "patches" / "flip.patch").write_text(patch)
    manifest = TINY_MANIFEST.read_text().replace('name = "tinycnn"', 'name = "tinyup"')
    (site / "tinyup.toml").write_text(
        manifest.replace('plugin = "tests.plugins.tinycnn.plugin"', 'plugin = "tiny_upstream"')
        + f'\n[source]\nrepo = "https://example.invalid/tinynet"\ncommit = "{commit}"\n'
          'patches = ["patches/flip.patch"]\n')
    (site / "tiny_upstream.py").write_text(UPSTREAM_PLUGIN)
    env = install_plugin(site, "tiny_upstream", "tinyup = tiny_upstream")

    checkout = tmp_path / "checkout"
    printed = ok(run_cli("source", "tinyup", "--from", str(repo), "--dest", str(checkout), env=env)).stdout
    assert f"upstream source ready at {checkout}" in printed
    assert "self.head(self.features(x)).flip(1)" in (checkout / "tinynet.py").read_text()  # patched
    assert (repo / "tinynet.py").read_text() == UPSTREAM_NET  # the user's checkout untouched
    marker = json.loads((checkout / MARKER).read_text())
    assert marker["resolved_commit"] == commit and [p["path"] for p in marker["patches"]] == ["patches/flip.patch"]

    def run(output: Path, *extra: str) -> dict[str, list[int]]:
        ok(run_cli("run", "tinyup", "--backend", "onnxruntime", "--bs", "3", "--workers", "0", "--data",
                   str(tiny_data), "--weights", str(tiny_weights), "--output", str(output), "--cache-dir",
                   str(tmp_path / "cache"), *extra, env=env))
        return predicted_classes(output)

    # The built-in model first, into the same cache: the upstream run must not take its export.
    builtin = run(tmp_path / "builtin")
    upstream = run(tmp_path / "upstream", "--model-source", "upstream", "--source-dir", str(checkout))
    assert upstream == {key: [9 - c for c in classes] for key, classes in builtin.items()}
    assert len({classes[0] for classes in builtin.values()}) > 1
    sources = [json.loads((tmp_path / run / "report.json").read_text())["model_source"] for run in ("builtin", "upstream")]
    assert sources == ["builtin", "upstream"]


def test_bench_writes_its_figures_table_and_plot(tmp_path):
    env = install_plugin(tmp_path, "tinycnn_plugin", "tinycnn = tests.plugins.tinycnn.plugin")
    out = tmp_path / "bench"
    printed = ok(run_cli("bench", "tinycnn", "--backend", "onnxruntime,torch", "--bs", "1,3", "--warmup", "1",
                         "--iters", "3", "--output", str(out), "--cache-dir", str(tmp_path / "cache"),
                         env=env)).stdout
    data = json.loads((out / "bench.json").read_text())
    assert [(r["backend"], r["batch_size"]) for r in data["rows"]] == \
        [("onnxruntime", 1), ("onnxruntime", 3), ("torch", 1), ("torch", 3)]
    for row in data["rows"]:
        assert row["fps"] == pytest.approx(row["batches"] * row["batch_size"] / row["wall_s"])
        assert 0 < row["latency_ms_p50"] <= row["latency_ms_p90"] <= row["latency_ms_p99"]
        assert row["precision"] == "fp32" and row["precision_requested"] == "auto"
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in printed.splitlines()
             if line.startswith("| ") and "backend" not in line]
    assert [(c[1], c[2], int(c[3].rstrip(" *")), float(c[4])) for c in cells] == \
        [(r["backend"], "fp32 (auto)", r["batch_size"], round(r["fps"], 2)) for r in data["rows"]]
    assert (out / "bench.md").read_text() in printed  # the table printed is the one written
    assert f"wrote {out / 'bench.json'}" in printed
    assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"



def test_ci_exits_1_when_one_model_fails_and_reports_each(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "plugin.toml").write_text('name = "broken"\n')  # nothing else a manifest needs
    out = tmp_path / "ci"
    result = run_cli("ci", str(REPO / "tests" / "plugins" / "tinytext"), str(broken), "--output", str(out),
                     "--cache-dir", str(tmp_path / "cache"), env={"MODELZOO_DISABLE_PLUGINS": "lvvit"})
    assert result.returncode == 1, result.stderr

    junit = ET.parse(out / "junit.xml").getroot()
    cases = {(case.get("classname"), case.get("name")): case.find("failure") for case in junit.iter("testcase")}
    assert {classname for classname, _ in cases} == {"modelzoo.tinytext", "modelzoo.broken"}
    assert [name for (classname, name), failure in cases.items() if failure is not None] == ["manifest"]
    assert junit.get("failures") == "1"
    ci = json.loads((out / "ci.json").read_text())
    assert ci["passed"] is False and sorted(ci["models"]) == ["broken", "tinytext"]
    text = ci["models"]["tinytext"]
    assert text["passed"] is True and {c["status"] for c in text["checks"].values()} == {"pass"}
    assert text["smoke"]["images"] == 4 and 0 <= text["smoke"]["metrics"]["accuracy"] <= 1
    assert ci["models"]["broken"]["checks"]["manifest"]["status"] == "fail"
    assert (out / "tinytext" / "modelzoo_level.txt").read_text().splitlines()[0] == "FuncStatus:OK"
    assert (out / "broken" / "modelzoo_level.txt").read_text().splitlines()[0] == "FuncStatus:NOK"
