"""A run killed, interrupted or rerun with other inputs: nothing lost, nothing mixed."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from modelzoo.pipeline import RunOptions, run
from tests.conftest import install_plugin, run_cli, write_photo

pytestmark = pytest.mark.slow

# Figures that measure this particular process, not the evaluation.
TIMING_KEYS = {"throughput_fps", "e2e_fps", "latency_ms", "stages_s", "peak_rss_mb", "created", "resumed_images"}


def command(dataset_dir: Path, weights: Path, output: Path, *extra: str, backend: str = "torch") -> list[str]:
    # Batch size 1: many batches to stop a run in the middle of.
    return ["run", "lvvit", "--bs", "1", "--backend", backend, "--workers", "0", "--data", str(dataset_dir),
            "--weights", str(weights), "--output", str(output), *extra]


@pytest.fixture(scope="module")
def many_images(tmp_path_factory, dataset_dir) -> Path:
    """The six test photographs four times over under other names: a run long enough to stop
    in the middle even on a fast backend."""
    root = tmp_path_factory.mktemp("many")
    (root / "images").mkdir()
    lines = []
    for copy in range(4):
        for i, image in enumerate(sorted((dataset_dir / "images").iterdir())):
            name = f"copy{copy}_{image.name}"
            (root / "images" / name).write_bytes(image.read_bytes())
            lines.append(f"{name} {(copy * 6 + i) * 37 % 1000}\n")
    (root / "val_label.txt").write_text("".join(lines))
    return root


def test_onnxruntime_killed_mid_run_resumes_to_the_uninterrupted_report(tmp_path, many_images, spread_checkpoint,
                                                                      cache_dir):
    def args(output: Path) -> list[str]:
        return command(many_images, spread_checkpoint, output, "--cache-dir", str(cache_dir), backend="onnxruntime")

    reference = run_cli(*args(tmp_path / "reference"))
    assert reference.returncode == 0, reference.stderr
    stopped = start_and_stop_after_one_batch(args(tmp_path / "run"), tmp_path / "run", signal.SIGKILL)
    assert stopped.returncode == -signal.SIGKILL
    assert 1 <= done_images(tmp_path / "run") < 24
    resumed = run_cli(*args(tmp_path / "run"))
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(tmp_path / "run") == comparable(tmp_path / "reference")


def comparable(output: Path) -> tuple[dict, dict]:
    report = json.loads((output / "report.json").read_text())
    return {k: v for k, v in report.items() if k not in TIMING_KEYS}, \
        json.loads((output / "predictions.json").read_text())


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, dataset_dir, spread_checkpoint):
    output = tmp_path_factory.mktemp("uninterrupted")
    result = run_cli(*command(dataset_dir, spread_checkpoint, output))
    assert result.returncode == 0, result.stderr
    return comparable(output)


def start_and_stop_after_one_batch(args: list[str], output: Path, sig: int) -> subprocess.CompletedProcess:
    """Start `modelzoo` and send `sig` once results.jsonl holds a batch and before it holds all."""
    process = subprocess.Popen([sys.executable, "-m", "modelzoo", *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=os.environ.copy())
    results = output / "results.jsonl"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        if results.exists() and results.read_text().count('"keys"') >= 1:
            process.send_signal(sig)
            break
        time.sleep(0.02)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def done_images(output: Path) -> int:
    lines = [json.loads(l) for l in (output / "results.jsonl").read_text().splitlines() if l.strip()]
    return sum(len(r["keys"]) for r in lines if "keys" in r)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
def test_a_stopped_run_resumes_to_the_uninterrupted_report(tmp_path, dataset_dir, spread_checkpoint,
                                                           uninterrupted, sig):
    args = command(dataset_dir, spread_checkpoint, tmp_path)
    stopped = start_and_stop_after_one_batch(args, tmp_path, sig)
    assert stopped.returncode in (-signal.SIGKILL, 130), stopped.stderr
    assert not (tmp_path / "report.json").exists()
    assert 1 <= done_images(tmp_path) < 6  # really stopped in the middle
    if sig == signal.SIGINT:
        assert stopped.returncode == 130
        assert "rerun the same command to resume" in stopped.stderr
        assert "Traceback" not in stopped.stderr

    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming:" in resumed.stderr
    report, predictions = comparable(tmp_path)
    assert (report, predictions) == uninterrupted
    assert json.loads((tmp_path / "report.json").read_text())["resumed_images"] >= 1


def test_a_torn_last_line_is_redone(tmp_path, dataset_dir, spread_checkpoint, uninterrupted):
    args = command(dataset_dir, spread_checkpoint, tmp_path)
    first = start_and_stop_after_one_batch(args, tmp_path, signal.SIGKILL)
    assert first.returncode == -signal.SIGKILL
    with open(tmp_path / "results.jsonl", "ab") as f:
        f.write(b'{"keys": ["ILSVRC2012_val_0000')  # a write cut short by the kill
    resumed = run_cli(*args)
    assert resumed.returncode == 0, resumed.stderr
    assert comparable(tmp_path) == uninterrupted


def test_other_inputs_refuse_to_mix_and_fresh_starts_over(tmp_path, dataset_dir, spread_checkpoint):
    args = command(dataset_dir, spread_checkpoint, tmp_path, "--limit", "2")
    assert run_cli(*args).returncode == 0
    other = run_cli(*[a if a != "1" else "2" for a in args])  # --bs 2 into the same output
    assert other.returncode == 2
    line = [l for l in other.stderr.splitlines() if l.startswith("error:")]
    assert len(line) == 1 and "batch_size changed" in line[0] and "--fresh" in line[0]
    before = (tmp_path / "report.json").read_text()
    assert json.loads(before)["batch_size"] == 1  # the earlier report is untouched

    fresh = run_cli(*[a if a != "1" else "2" for a in args], "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    assert json.loads((tmp_path / "report.json").read_text())["batch_size"] == 2


def test_resume_without_earlier_results_says_so(tmp_path, dataset_dir, spread_checkpoint):
    result = run_cli(*command(dataset_dir, spread_checkpoint, tmp_path, "--limit", "1", "--resume"))
    assert result.returncode == 2 and "nothing to resume" in result.stderr


# tinycnn with a slow forward: a run at batch size 1 on the torch backend is still inferring when it
# is interrupted, while its preprocessing workers wait for more work in the pool.
SLOW_PLUGIN = '''\
import time

import tests.plugins.tinycnn.plugin as tiny
from modelzoo.api import ModelEntry, hookimpl


class SlowTinyCNN(tiny.TinyCNN):
    def forward(self, x):
        time.sleep(0.2)
        return super().forward(x)


def build(variant):
    return SlowTinyCNN().eval()


@hookimpl
def modelzoo_register_models(register):
    register(ModelEntry(manifest=tiny.MANIFEST, build=build, init_random=tiny.init_random,
                        preprocess=tiny.preprocess))
'''


def children(pid: int) -> set[int]:
    """The live processes whose parent is `pid`, from /proc."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(stat.parent.name))
    return found


def alive(pids: set[int]) -> set[int]:
    still = set()
    for pid in pids:
        try:
            state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            still.add(pid)
    return still


def test_ctrl_c_with_preprocessing_workers_running_stops_cleanly_and_resumes(tmp_path, tiny_registry, tiny_weights):
    """Ctrl-C reaches every process of the terminal's foreground group, the idle workers included."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "slow_tiny.py").write_text(SLOW_PLUGIN)
    env = {**os.environ, **install_plugin(site, "slow_tiny", "slow_tiny = slow_tiny")}
    data = tmp_path / "data"
    (data / "pictures").mkdir(parents=True)
    for i in range(12):
        write_photo(data / "pictures" / f"pic{i:02d}.png", (40 + i, 50), seed=i)
    (data / "classes.txt").write_text("".join(f"pic{i:02d}.png {i % 10}\n" for i in range(12)))

    def args(output: Path) -> list[str]:
        return ["run", "tinycnn", "--bs", "1", "--backend", "torch", "--workers", "2", "--data", str(data),
                "--weights", str(tiny_weights), "--output", str(output), "--cache-dir", str(tmp_path / "cache")]

    # The same model and data, run in this process, uninterrupted, at tinycnn's own speed.
    reference = run(tiny_registry, RunOptions(model="tinycnn", backend="torch", batch_size=1, data=data,
                                              weights=tiny_weights, output=tmp_path / "reference",
                                              cache_dir=tmp_path / "cache", workers=0, quiet=True))

    output = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "modelzoo", *args(output)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, start_new_session=True)
    workers: set[int] = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        workers |= children(process.pid)
        if (output / "results.jsonl").exists() and (output / "results.jsonl").read_text().count('"keys"') >= 1:
            os.killpg(process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
            break
        time.sleep(0.02)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 130, stderr
    assert len(workers) >= 2  # the pool was running when the signal came
    done = done_images(output)
    assert 1 <= done < 12  # stopped in the middle
    assert "rerun the same command to resume" in stderr.strip().splitlines()[-1]
    assert "Traceback" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    assert not (output / "report.json").exists()
    deadline = time.monotonic() + 10
    while alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not alive(workers), "worker processes outlived the run"

    resumed = run_cli(*args(output), env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming:" in resumed.stderr
    report, predictions = comparable(output)
    assert predictions == json.loads((tmp_path / "reference" / "predictions.json").read_text())
    assert (report["images"], report["top1"], report["top5"]) == \
        (reference["images"], reference["top1"], reference["top5"])
    assert json.loads((output / "report.json").read_text())["resumed_images"] == done
