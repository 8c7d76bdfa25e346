"""What invalidates a cached ONNX export: the plugin's own code does, files beside it do not.

Each test writes a copy of the tiny plugin under tmp_path in one of the layouts a plugin can have
(a package inside a larger package, a namespace package, a single top-level module), imports it,
exports it, edits one file and exports again.
"""
from __future__ import annotations

import importlib
import shutil
import sys
import uuid
from pathlib import Path

import onnx
import pytest

from modelzoo.artifacts import Artifacts
from modelzoo.cache import Cache
from modelzoo.plugins import get_plugin_manager
from modelzoo.registry import Registry
from modelzoo.weights import resolve_weights

TINY = Path(__file__).parent / "plugins" / "tinycnn"


@pytest.fixture
def site(tmp_path, monkeypatch) -> Path:
    """A directory on sys.path; modules imported from it are forgotten afterwards."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    # An edit within the same second could otherwise be served from stale bytecode.
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        del sys.modules[name]


def write_plugin(site: Path, layout: str) -> tuple[str, dict[str, Path]]:
    """The tiny plugin under `site` as `layout`; its module name and the files a test edits:
    `model` (where build lives), `helper` (more plugin code, if the layout has any) and
    `unrelated_py` / `unrelated_other` (files that are not the plugin's code)."""
    top = f"zoo_{uuid.uuid4().hex[:8]}"
    plugin_source = (TINY / "plugin.py").read_text()
    if layout == "module":
        module = top
        (site / f"{top}.py").write_text(plugin_source)
        (site / "plugin.toml").write_text((TINY / "plugin.toml").read_text())
        (site / "neighbour.py").write_text("VALUE = 1\n")
        (site / "notes.md").write_text("notes\n")
        return module, {"model": site / f"{top}.py", "unrelated_py": site / "neighbour.py",
                        "unrelated_other": site / "notes.md"}
    package = site / top / "tiny"
    # A sub-folder whose name sorts before __init__.py, holding more of the plugin's code.
    (package / "Layers").mkdir(parents=True)
    (package / "Layers" / "blocks.py").write_text("WIDTH = 16\n")
    (package / "plugin.py").write_text(plugin_source)
    (package / "plugin.toml").write_text((TINY / "plugin.toml").read_text())
    (package / "notes.md").write_text("notes\n")
    (site / top / "other.py").write_text("VALUE = 1\n")  # in the top-level package, not the plugin's
    if layout == "package":
        (site / top / "__init__.py").write_text("")
        (package / "__init__.py").write_text("")
    return f"{top}.tiny.plugin", {"model": package / "plugin.py", "helper": package / "Layers" / "blocks.py",
                                  "unrelated_py": site / top / "other.py", "unrelated_other": package / "notes.md"}


def import_fresh(module: str):
    """The plugin as a new process would import it after an edit."""
    for name in [n for n in sys.modules if n.split(".")[0] == module.split(".")[0]]:
        del sys.modules[name]
    importlib.invalidate_caches()
    return importlib.import_module(module)


def export(plugin, cache: Path) -> tuple[Path, bool]:
    """The ONNX export of the plugin's model, and whether it came from the cache."""
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(plugin)
    entry = Registry(pm).model("tinycnn")
    artifacts = Artifacts(entry, resolve_weights(entry.manifest, None), Cache(cache), simplify=False, quiet=True)
    path = artifacts.onnx(2)
    return path, artifacts.cache.reused[path.name]


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text() + text)


def ops(path: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(path)).graph.node}


@pytest.mark.parametrize("layout", ["package", "namespace", "module"])
def test_editing_the_plugins_model_code_rebuilds_the_export_and_other_files_do_not(site, tmp_path, layout):
    module, files = write_plugin(site, layout)
    cache = tmp_path / "cache"
    first, reused = export(import_fresh(module), cache)
    assert not reused

    append(files["unrelated_py"], "VALUE = 2\n")
    append(files["unrelated_other"], "more notes\n")
    assert export(import_fresh(module), cache) == (first, True)

    if "helper" in files:  # any .py file of the plugin's package is its code
        append(files["helper"], "WIDTH = 32\n")
        helper_edit, reused = export(import_fresh(module), cache)
        assert not reused and helper_edit != first

    files["model"].write_text(files["model"].read_text().replace("torch.nn.ReLU()", "torch.nn.GELU()"))
    edited, reused = export(import_fresh(module), cache)
    assert not reused and edited != first
    # The export was made from the edited code, not copied from the old one.
    assert ops(first) & {"Gelu", "Erf"} == set() and ops(edited) & {"Gelu", "Erf"}
    assert export(import_fresh(module), cache) == (edited, True)


def test_a_single_module_plugin_is_keyed_on_its_own_file_only(site, tmp_path):
    """Everything else in the directory it is installed in (site-packages) leaves the export alone."""
    module, files = write_plugin(site, "module")
    cache = tmp_path / "cache"
    first, _ = export(import_fresh(module), cache)
    (site / "another_package").mkdir()
    (site / "another_package" / "__init__.py").write_text("X = 1\n")
    shutil.copy(files["model"], site / "copy_of_it.py")
    assert export(import_fresh(module), cache) == (first, True)


def test_a_changed_tolerance_is_judged_on_the_cached_export(site, tmp_path):
    """Parity's figures do not depend on the thresholds: the export is reused, and judged anew."""
    from modelzoo.parity import ParityError

    module, _ = write_plugin(site, "module")
    cache = tmp_path / "cache"
    first, _ = export(import_fresh(module), cache)
    manifest = site / "plugin.toml"
    manifest.write_text(manifest.read_text().replace("atol = 1e-3", "atol = 1e-12"))
    with pytest.raises(ParityError, match=r"> atol 1\.0e-12"):
        export(import_fresh(module), cache)
    assert list(cache.glob("*.onnx")) == [first]  # not exported again
