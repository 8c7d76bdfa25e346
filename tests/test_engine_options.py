"""`--engine ray` where it cannot run: one line each, and nothing started."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from modelzoo.engines.cluster import INSTALL_HINT
from tests.conftest import run_cli


def without_ray(tmp_path: Path) -> dict[str, str]:
    """An environment in which `import ray` fails as it does where Ray is not installed."""
    shadow = tmp_path / "shadow" / "ray"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ray'\")\n")
    return {"PYTHONPATH": os.pathsep.join([str(shadow.parent), os.environ.get("PYTHONPATH", "")])}


def test_run_and_ci_on_ray_without_ray_say_how_to_install_it(tmp_path):
    expected = f"error: --engine ray needs Ray, which is not installed here; {INSTALL_HINT}"
    env = without_ray(tmp_path)
    for args in (["run", "lvvit", "--engine", "ray", "--output", str(tmp_path / "run")],
                 ["ci", str(tmp_path), "--engine", "ray", "--output", str(tmp_path / "ci")]):
        result = run_cli(*args, env=env)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines()[-1] == expected
    assert not (tmp_path / "run").exists() and not (tmp_path / "ci").exists()


def test_actors_per_node_below_one_is_refused(tmp_path):
    result = run_cli("run", "lvvit", "--engine", "ray", "--actors-per-node", "0", env=without_ray(tmp_path))
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["modelzoo run: error: argument --actors-per-node: must be at least 1, "
                                          "got 0; see 'modelzoo run --help'"]


def closed_port() -> int:
    """A loopback port where nothing listens: one the kernel just handed out and took back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("given_as", ["--address", "RAY_ADDRESS"])
def test_an_address_where_nothing_listens_fails_with_one_line(tmp_path, given_as):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{closed_port()}"
    where = ["--address", address] if given_as == "--address" else []
    # Ray alone retries such an address for many minutes; the limit only proves it does not hang.
    result = run_cli("run", "lvvit", "--engine", "ray", *where, "--output", str(tmp_path / "run"),
                     env={"RAY_ADDRESS": address} if given_as == "RAY_ADDRESS" else None, timeout=60)
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot connect to the Ray cluster at {address}"), last
    assert last.endswith("start one with 'ray start --head' or check --address"), last
    assert not (tmp_path / "run").exists()
