"""pytest fixture `fake_ascend`: the fake atc, npu-smi and ais_bench, installed for one test.

A test suite opts in, so that nothing loads into unrelated pytest runs: in its conftest.py

    pytest_plugins = ["modelzoo.testing.fake_ascend.fixture"]

(or `pytest -p modelzoo.testing.fake_ascend.fixture`), and then any test can take the fixture:

    def test_convert(fake_ascend):
        subprocess.run(["atc", ...], check=True)                  # found on PATH
        from ais_bench.infer.interface import InferSession       # importable in-process too
"""
from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelzoo.testing.fake_ascend import PYTHON_DIR, install

# Switches a test may set; cleared first so every test starts from the defaults.
SWITCHES = ("MODELZOO_FAKE_NPU_SMI", "MODELZOO_FAKE_ATC_FAIL", "MODELZOO_FAKE_ATC_PID_PREFIX",
            "MODELZOO_FAKE_AIS_SOC", "MODELZOO_FAKE_AIS_CRASH_AFTER", "MODELZOO_FAKE_AIS_API")


@dataclass(frozen=True)
class FakeAscend:
    bin_dir: Path  # holds `atc` and `npu-smi`
    python_dir: Path  # holds the fake `ais_bench` package
    env: dict[str, str]  # what install() set: PATH and PYTHONPATH


def _forget_ais_bench() -> None:
    for name in [m for m in sys.modules if m == "ais_bench" or m.startswith("ais_bench.")]:
        del sys.modules[name]


@pytest.fixture
def fake_ascend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeAscend]:
    """The fake Ascend toolchain on PATH and sys.path for one test, every failure switch cleared."""
    for name in SWITCHES:
        monkeypatch.delenv(name, raising=False)
    env = install(tmp_path / "fake_ascend_bin")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.syspath_prepend(str(PYTHON_DIR))
    _forget_ais_bench()  # a test must import the fake, not a module cached from elsewhere
    yield FakeAscend(tmp_path / "fake_ascend_bin", PYTHON_DIR, env)
    _forget_ais_bench()
