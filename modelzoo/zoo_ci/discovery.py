"""Finding models: plugin.toml files under directory trees, plus installed entry-point plugins.

A tree plugin is imported from the tree that holds its manifest; each plugin is probed alone so
that a broken one fails its own models and the others still run.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from modelzoo.errors import PluginError, UserError
from modelzoo.manifest import load_manifest
from modelzoo.plugins import BUILTIN_PLUGINS, get_plugin_manager
from modelzoo.registry import Registry
from modelzoo.testing.mock import ContractError, MockRunner
from modelzoo.zoo_ci.records import Check, ModelResult, one_line

if TYPE_CHECKING:
    import pluggy

MANIFEST_NAME = "plugin.toml"
# Directories never searched for plugins: tool state, build output, virtualenvs, our own output.
SKIP_DIRS = {"__pycache__", "build", "dist", "node_modules", "modelzoo-out", "site-packages"}


def find_manifests(paths: list[Path]) -> list[Path]:
    """Every plugin.toml under `paths`, resolved (a linked manifest is the same manifest) and once."""
    found: dict[Path, None] = {}
    for root in map(Path, paths):
        if not root.exists():
            raise UserError(f"{root} does not exist; pass directories that hold {MANIFEST_NAME} files")
        for path in ([root] if root.is_file() else _walk(root)):
            found.setdefault(path.resolve())
    return list(found)


def _walk(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):  # does not follow linked directories
        dirnames[:] = sorted(d for d in dirnames if not _skipped_dir(Path(dirpath, d)))
        if MANIFEST_NAME in filenames:
            yield Path(dirpath, MANIFEST_NAME)


def _skipped_dir(path: Path) -> bool:
    # Hidden directories cover .git, .venv*, .tox and caches; pyvenv.cfg marks a virtualenv of any name.
    return (path.name.startswith(".") or path.name in SKIP_DIRS or path.name.endswith(".egg-info")
            or (path / "pyvenv.cfg").exists())


def import_plugin(module: str, start: Path) -> ModuleType:
    """Import a manifest's plugin module from the tree that holds the manifest.

    The module path names a file below the manifest's directory or one above it (plugin =
    "tests.plugins.tinycnn.plugin" beside tests/plugins/tinycnn/plugin.toml is found from the
    repository root); that directory goes on sys.path, as an installed plugin's would be.
    """
    relative = Path(*module.split("."))
    for base in (start, *start.parents):
        for file in (base / relative.with_suffix(".py"), base / relative / "__init__.py"):
            if file.is_file():
                if str(base) not in sys.path:
                    sys.path.insert(0, str(base))
                imported = importlib.import_module(module)
                where = getattr(imported, "__file__", None)
                if where and Path(where).resolve() != file.resolve():
                    raise UserError(f"module '{module}' is already imported from {where}, not {file}; "
                                    "plugin module names must be unique (rename it or uninstall the other)")
                return imported
    raise UserError(f"no {relative}.py or {relative}/__init__.py in {start} or a directory above it")


def _tree_model(path: Path) -> ModelResult:
    """A model declared by a manifest file: validated, and its plugin module imported."""
    result = ModelResult(_declared_name(path), manifest_path=path)
    started = time.perf_counter()
    try:
        manifest = load_manifest(path)
    except Exception as exc:  # noqa: BLE001 - a bad manifest fails its model, not the CI
        result.checks["manifest"] = Check("fail", time.perf_counter() - started, one_line(exc))
        return result
    result.checks["manifest"] = Check("pass", time.perf_counter() - started, "valid")
    try:
        result.plugin = import_plugin(manifest.plugin, path.parent)
    except Exception as exc:  # noqa: BLE001 - any import error is the plugin's, reported as such
        result.fail("contract", f"cannot import plugin module '{manifest.plugin}': {one_line(exc)}")
    return result


def _declared_name(path: Path) -> str:
    """The manifest's name even when it fails validation, so that the failure names the model."""
    try:
        name = tomllib.loads(path.read_text(encoding="utf-8")).get("name")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        name = None
    return name if isinstance(name, str) and name else path.parent.name


def discover(paths: list[Path], load_entrypoints: bool) -> tuple[dict[str, ModelResult], Registry | str]:
    """The models under `paths` and the installed ones, and a registry of the healthy ones
    (or why it could not be built)."""
    importlib.invalidate_caches()  # plugin files may have been written since the last import
    results: dict[str, ModelResult] = {}
    for path in find_manifests(paths):
        _add(results, _tree_model(path))
    broken: list[PluginError] = []  # each fails as a model of its own name; the rest still run
    pm = get_plugin_manager(load_entrypoints=load_entrypoints, broken=broken)
    for error in broken:
        _add(results, ModelResult(error.plugin), clash_fails=False).fail("contract", f"broken plugin: {error}")
    for result in list(results.values()):
        _register(pm, result)
    for name, plugin in pm.list_name_plugin():
        if name not in BUILTIN_PLUGINS and plugin is not None:  # None: blocked (disabled or broken)
            _collect_models(pm, name, plugin, results)
    try:
        registry: Registry | str = Registry(pm)
    except Exception as exc:  # noqa: BLE001 - reported by every smoke check
        registry = f"building the registry failed: {one_line(exc)}"
    return results, registry


def _add(results: dict[str, ModelResult], result: ModelResult, clash_fails: bool = True) -> ModelResult:
    """Add a model under its name; a second model of that name gets a longer key and, unless the
    first never got registered, fails: the registry cannot hold two models of one name."""
    if result.name in results:
        other = results[result.name]
        origin = result.manifest_path or getattr(result.plugin, "__name__", result.plugin)
        if clash_fails:
            result.fail("manifest", f"model name '{result.name}' is already taken by "
                                    f"{other.manifest_path or other.plugin}; model names must be unique")
            result.plugin = None  # left unregistered, so that the first model of the name still runs
        result.name = f"{result.name} ({origin})"
    results[result.name] = result
    return result


def _register(pm: pluggy.PluginManager, result: ModelResult) -> None:
    """Register a tree plugin, unless it is the same module an entry point already registered."""
    if result.plugin is None or pm.is_registered(result.plugin):
        return
    try:
        pm.register(result.plugin, name=result.plugin.__name__)
    except Exception as exc:  # noqa: BLE001 - e.g. a hook whose arguments differ from the spec
        result.fail("contract", f"registering plugin '{result.plugin.__name__}' failed: {one_line(exc)}")
        result.plugin = None


def _collect_models(pm: pluggy.PluginManager, name: str, plugin: Any, results: dict[str, ModelResult]) -> None:
    """The models one plugin registers, probed alone so that a broken plugin fails by itself;
    a plugin that fails is taken out of the shared plugin manager."""
    declared = [r for r in results.values() if r.plugin is plugin]
    try:
        entries = list(MockRunner(plugin).models.values())
        taken = [e.name for e in entries if e.name in results and results[e.name].plugin not in (plugin, None)]
        if taken:
            raise ContractError(f"model '{taken[0]}' is also registered by another plugin")
    except Exception as exc:  # noqa: BLE001 - a broken registration hook fails its own models only
        pm.unregister(plugin)
        for result in declared or [_add(results, ModelResult(name), clash_fails=False)]:
            result.fail("contract", f"plugin '{name}' does not register its models: {one_line(exc)}")
            result.plugin = None
        return
    for entry in entries:
        result = results.get(entry.name)
        if result is None or result.plugin is None:  # installed only, or a tree copy that failed
            result = _add(results, ModelResult(entry.name, manifest_path=entry.manifest.path, plugin=plugin),
                          clash_fails=False)
        result.entry = entry
    for result in declared:
        if result.entry is None:
            result.fail("contract", f"plugin '{name}' registers no model named '{result.name}' "
                                    f"(it registers: {', '.join(e.name for e in entries) or 'none'})")
