"""A cluster started by `ray start` (token authentication on, as Ray 2.59+ does by default): a driver
without the token gets one line that says what to set, and with it the run goes through."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli

psutil = pytest.importorskip("psutil")
pytest.importorskip("ray")

pytestmark = pytest.mark.ray


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"nothing listens on port {port} after {seconds} s")


@pytest.fixture
def token_cluster(tmp_path):
    """`ray start --head --block` with its own token, temp dir and HOME; stopped with every
    process it started (and only those) at the end."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    token = "modelzoo-test-token-0123456789abcdef0123456789abcdef"
    (home / ".ray" / "auth_token").write_text(token)
    port = free_port()
    # Ray's socket paths must stay under 108 bytes: a short folder of its own, not tmp_path.
    ray_tmp = tempfile.mkdtemp(prefix="mz-ray-", dir="/tmp")
    ray_cli = Path(sys.executable).with_name("ray")
    with open(tmp_path / "head.log", "w") as log:
        head = subprocess.Popen([str(ray_cli if ray_cli.exists() else shutil.which("ray")), "start", "--head",
                                 "--block", "--port", str(port), "--num-cpus", "1", "--node-ip-address",
                                 "127.0.0.1", "--include-dashboard", "false", "--disable-usage-stats",
                                 "--temp-dir", ray_tmp],
                                env={**os.environ, "HOME": str(home), "RAY_AUTH_MODE": "token"},
                                stdout=log, stderr=log)
    try:
        wait_for_port(port, head)
        yield f"127.0.0.1:{port}", token, home
    finally:
        # Killed outright: on SIGTERM the head drains for up to a minute. Its children are ours too.
        family = [psutil.Process(head.pid)] if head.poll() is None else []
        family += [*family[0].children(recursive=True)] if family else []
        for process in family:
            try:
                process.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(family, timeout=20)
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_a_driver_without_the_token_is_told_what_to_set_and_with_it_runs(token_cluster, tmp_path):
    address, token, home = token_cluster
    args = ["--quiet", "run", "lvvit", "--engine", "ray", "--address", address, "--limit", "4",
            "--cache-dir", str(tmp_path / "cache")]
    refused = run_cli(*args, "--output", str(tmp_path / "without"), timeout=300,
                      env={"HOME": str(home), "RAY_AUTH_MODE": "disabled"})
    assert refused.returncode == 2, refused.stderr
    last = refused.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot connect to the Ray cluster at {address}: "), last
    assert "set RAY_AUTH_MODE=token" in last and "ray get-auth-token" in last, last

    accepted = run_cli(*args, "--output", str(tmp_path / "with"), timeout=300,
                       env={"HOME": str(home), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": token})
    assert accepted.returncode == 0, accepted.stderr
    assert (tmp_path / "with" / "report.json").exists()
