"""pyproject.toml ships what the code reads at run time: every data file inside the two packages
is package data of a package setuptools finds, so an installed (non-editable) copy has it."""
from __future__ import annotations

import fnmatch
import sys

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from tests.conftest import REPO

PACKAGES = ("modelzoo", "modelzoo_lvvit")


def test_every_data_file_is_declared_package_data():
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert config["packages"]["find"]["include"] == [p for name in PACKAGES for p in (name, f"{name}.*")]
    declared = config["package-data"]
    data = [path for name in PACKAGES for path in (REPO / name).rglob("*")
            if path.is_file() and path.suffix not in (".py", ".pyc")]
    assert any(p.suffix == ".JPEG" for p in data) and any(p.name == "plugin.toml" for p in data)
    for path in data:
        package = ".".join(path.parent.relative_to(REPO).parts)  # namespace packages: every folder is one
        assert any(fnmatch.fnmatch(path.name, glob) for glob in declared.get(package, [])), \
            f"{path.relative_to(REPO)} is not in [tool.setuptools.package-data] {package!r}"
