"""The fake Ascend pytest plugin is opt-in: an unrelated pytest run does not get it, a suite that
names it (conftest.py's pytest_plugins, as docs/plugin-guide.md shows, or -p) does."""
from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.test_plugin_guide import blocks

USES_THE_FIXTURE = '''\
import shutil


def test_atc_is_the_fake(fake_ascend):
    assert shutil.which("atc").startswith(str(fake_ascend.bin_dir))
'''


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory) -> list[Path]:
    """The import path of an environment where this checkout is freshly installed: its metadata (entry
    points included) built from its packaging files by the PEP 517 hook, the checkout itself, and
    the other installed packages, whatever an older installation of it declared (left out)."""
    root = tmp_path_factory.mktemp("fresh-install")
    metadata, others = root / "metadata", root / "site-packages"
    metadata.mkdir()
    others.mkdir()
    subprocess.run([sys.executable, "-c", "import sys; from setuptools import build_meta; "
                                          "build_meta.prepare_metadata_for_build_wheel(sys.argv[1])", str(metadata)],
                   cwd=REPO, check=True, capture_output=True)
    own = {path.name for path in metadata.iterdir()}
    for packages in map(Path, site.getsitepackages()):
        for entry in packages.iterdir():
            if entry.name not in own and not entry.name.startswith("__editable__") and entry.suffix != ".pth":
                (others / entry.name).symlink_to(entry)
    return [metadata, REPO, others]


def pytest_in(directory: Path, path: list[Path], *args: str) -> subprocess.CompletedProcess:
    """pytest in `directory`, importing from `path` only (-S: no site-packages of this environment)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, path))}
    return subprocess.run([sys.executable, "-S", "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=directory, env=env, capture_output=True, text=True, timeout=300)


def test_an_unrelated_pytest_run_does_not_get_the_fixture_and_one_that_asks_does(tmp_path, fresh_install):
    (tmp_path / "test_other.py").write_text(USES_THE_FIXTURE)
    unrelated = pytest_in(tmp_path, fresh_install)
    assert unrelated.returncode == 1 and "fixture 'fake_ascend' not found" in unrelated.stdout
    asked = pytest_in(tmp_path, fresh_install, "-p", "modelzoo.testing.fake_ascend.fixture")
    assert asked.returncode == 0 and "1 passed" in asked.stdout, asked.stdout


def test_the_guides_conftest_opts_in(tmp_path, fresh_install):
    files = {extra.removeprefix("file=brightness/"): code for _, extra, code in blocks()
             if extra in ("file=brightness/conftest.py", "file=brightness/test_ascend.py")}
    assert len(files) == 2
    for name, code in files.items():
        (tmp_path / name).write_text(code)
    result = pytest_in(tmp_path, fresh_install)
    assert result.returncode == 0 and "1 passed" in result.stdout, result.stdout
