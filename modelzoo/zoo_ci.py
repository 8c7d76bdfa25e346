"""`modelzoo ci`: find every model plugin under some directories (plus the installed ones) and check it.

Per model, four checks: the manifest validates, the hooks keep the contract (the mock runner), the
model exports to ONNX with parity against torch, and a few demo images run through the best backend
here. Results: junit.xml (for CI systems), ci.json, and a ModelZoo-style modelzoo_level.txt per
model. A broken plugin fails its own model with a one-line reason; the other models still run.
"""
from __future__ import annotations

import datetime
import importlib
import logging
import os
import sys
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from modelzoo import __version__
from modelzoo.cache import Cache
from modelzoo.errors import UserError
from modelzoo.fileio import atomic_write_bytes, atomic_write_json
from modelzoo.manifest import Manifest, load_manifest
from modelzoo.plugins import BUILTIN_PLUGINS, get_plugin_manager
from modelzoo.registry import ModelEntry, Registry
from modelzoo.testing.mock import ContractError, MockRunner
from modelzoo.weights import Weights, resolve_weights

if TYPE_CHECKING:
    import pluggy

log = logging.getLogger(__name__)

CHECKS = ("manifest", "contract", "export", "smoke")
# A small static batch; 4 is also what `modelzoo run --bs 4` caches, so CI reuses those exports.
CI_BATCH = 4
SMOKE_IMAGES = 4
MAX_ABS_DIFF = 1e-3  # torch vs ONNX Runtime, fp32: a correct export differs by ~1e-5
NOT_MEASURED = "NOT_MEASURED"
MANIFEST_NAME = "plugin.toml"
# Directories never searched for plugins: tool state, build output, virtualenvs, our own output.
SKIP_DIRS = {"__pycache__", "build", "dist", "node_modules", "modelzoo-out", "site-packages"}


class CheckFailed(Exception):
    """A check ran and its result is not good enough."""


class Skipped(Exception):
    """A check that does not apply to this model (no demo data, or what it needs failed)."""


@dataclass
class Check:
    status: str = "skip"  # pass, fail or skip
    seconds: float = 0.0
    message: str = "not run"


@dataclass
class ModelResult:
    name: str
    manifest_path: Path | None = None
    plugin: Any = None  # the module (or object) that registers the model
    entry: ModelEntry | None = None
    checks: dict[str, Check] = field(default_factory=lambda: {c: Check() for c in CHECKS})
    backend: str | None = None
    parity: dict[str, float] | None = None
    weights: Weights | None = None
    smoke: dict[str, Any] | None = None

    def fail(self, check: str, message: str) -> None:
        self.checks[check] = Check("fail", self.checks[check].seconds, message)

    @property
    def passed(self) -> bool:
        return all(c.status != "fail" for c in self.checks.values())


# --- discovery ---------------------------------------------------------------------------------

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
        result.checks["manifest"] = Check("fail", time.perf_counter() - started, _one_line(exc))
        return result
    result.checks["manifest"] = Check("pass", time.perf_counter() - started, "valid")
    try:
        result.plugin = import_plugin(manifest.plugin, path.parent)
    except Exception as exc:  # noqa: BLE001 - any import error is the plugin's, reported as such
        result.fail("contract", f"cannot import plugin module '{manifest.plugin}': {_one_line(exc)}")
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
    try:
        pm = get_plugin_manager(load_entrypoints=load_entrypoints)
    except Exception as exc:  # noqa: BLE001 - one broken installed plugin must not stop the rest
        pm = get_plugin_manager(load_entrypoints=False)
        _add(results, ModelResult("entry-points")).fail(
            "contract", f"loading installed plugins failed: {_one_line(exc)}")
    for result in list(results.values()):
        _register(pm, result)
    for name, plugin in pm.list_name_plugin():
        if name not in BUILTIN_PLUGINS:
            _collect_models(pm, name, plugin, results)
    try:
        registry: Registry | str = Registry(pm)
    except Exception as exc:  # noqa: BLE001 - reported by every smoke check
        registry = f"building the registry failed: {_one_line(exc)}"
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
        result.fail("contract", f"registering plugin '{result.plugin.__name__}' failed: {_one_line(exc)}")
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
            result.fail("contract", f"plugin '{name}' does not register its models: {_one_line(exc)}")
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


# --- checks ------------------------------------------------------------------------------------

def check_model(result: ModelResult, registry: Registry | str, output: Path, cache: Cache, quiet: bool) -> None:
    """Run the checks that discovery left to run, each timed and recorded, none raising."""
    if not result.passed or result.entry is None:  # failed in discovery: nothing more can run
        failed = next((c for c in CHECKS if result.checks[c].status == "fail"), "contract")
        for check in CHECKS:
            if result.checks[check].status == "skip":
                result.checks[check].message = f"not run: the {failed} check failed"
        for check in CHECKS:
            _print_check(result, check, quiet)
        return
    entry = result.entry
    result.weights = resolve_weights(entry.manifest, None)
    steps: dict[str, Callable[[], str]] = {
        "manifest": lambda: _check_manifest(entry),
        "contract": lambda: _check_contract(result),
        "export": lambda: _check_export(result, cache),
        "smoke": lambda: _check_smoke(result, registry, output, cache),
    }
    for check, step in steps.items():
        if result.checks[check].status == "skip":  # the manifest of a tree model is already checked
            _run_check(result, check, step)
        _print_check(result, check, quiet)


def _run_check(result: ModelResult, check: str, step: Callable[[], str]) -> None:
    log.info("%s: %s check", result.name, check)
    started = time.perf_counter()
    try:
        status, message = "pass", step()
    except Skipped as exc:
        status, message = "skip", str(exc)
    except Exception as exc:  # noqa: BLE001 - whatever a plugin raises is that check's failure
        log.debug("%s: %s check failed", result.name, check, exc_info=True)
        status, message = "fail", _one_line(exc)
    result.checks[check] = Check(status, time.perf_counter() - started, message)


def _check_manifest(entry: ModelEntry) -> str:
    load_manifest(entry.manifest.path)  # the file on disk, as the plugin registered it
    return "valid"


def _check_contract(result: ModelResult) -> str:
    # The plugin alone, as its author's tests would see it: no other plugin can mask a fault.
    MockRunner(result.plugin).check_model(result.entry.name)
    return "hooks keep the contract"


def _check_export(result: ModelResult, cache: Cache) -> str:
    from modelzoo.artifacts import Artifacts  # imports torch: only when a model gets this far

    artifacts = Artifacts(result.entry, result.weights, cache, quiet=True)
    artifacts.onnx(CI_BATCH)
    parity = result.parity = artifacts.parity
    text = (f"ONNX bs{CI_BATCH}: max|diff| {parity['max_abs_diff']:.2e}, "
            f"top-1 agreement {parity['top1_agreement']:.0%}")
    if parity["max_abs_diff"] >= MAX_ABS_DIFF or parity["top1_agreement"] < 1.0:
        raise CheckFailed(f"{text}; torch and ONNX disagree (limits: max|diff| < {MAX_ABS_DIFF:g}, "
                          "top-1 agreement 100%)")
    return text


def _check_smoke(result: ModelResult, registry: Registry | str, output: Path, cache: Cache) -> str:
    from modelzoo.pipeline import RunOptions, run

    if result.entry.demo_data is None:
        raise Skipped("the plugin ships no demo data")
    if result.checks["export"].status != "pass":
        raise Skipped("not run: the export check failed")
    if isinstance(registry, str):
        raise CheckFailed(registry)
    report = run(registry, RunOptions(
        model=result.entry.name, backend="auto", batch_size=CI_BATCH, limit=SMOKE_IMAGES,
        output=output / _safe(result.name) / "smoke", cache_dir=cache.root, quiet=True,
        workers=0, fresh=True))  # workers=0: a few images; picklability is the contract check's
    result.backend = report["backend"]
    result.smoke = {k: report[k] for k in ("images", "skipped", "top1", "throughput_fps", "report_path")}
    if report["images"] == 0 or report["skipped"]:
        raise CheckFailed(f"{report['backend']}: {report['images']} images scored, "
                          f"{len(report['skipped'])} skipped")
    return f"{report['backend']}: {report['images']} demo images inferred"


# --- results -----------------------------------------------------------------------------------

def statuses(result: ModelResult) -> tuple[dict[str, str], dict[str, str]]:
    """ModelZoo's level statuses, and why those not measured were not.

    PrecisionStatus and PerfStatus are claims about the real model on the real data set (top-1 on
    the full validation set against the paper, fps against a reference chip). The CI runs a few
    demo images, with seeded random weights when no checkpoint is found: a top-1 or an fps from
    that measures neither, so both are written as not measured rather than guessed.
    """
    levels = {"FuncStatus": "OK" if result.passed else "NOK",
              "PrecisionStatus": NOT_MEASURED, "PerfStatus": NOT_MEASURED}
    if result.weights is None:
        why = "the model did not get as far as running"
    elif result.weights.random:
        why = "no checkpoint found: seeded random weights"
    else:
        why = f"only {SMOKE_IMAGES} demo images were run, not the validation set"
    return levels, {"PrecisionStatus": why, "PerfStatus": why}


def model_json(result: ModelResult) -> dict[str, Any]:
    levels, not_measured = statuses(result)
    manifest: Manifest | None = result.entry.manifest if result.entry else None
    return {
        "passed": result.passed,
        "manifest": str(result.manifest_path) if result.manifest_path else None,
        "plugin": getattr(result.plugin, "__name__", None) if result.plugin is not None else None,
        "checks": {c: {"status": k.status, "seconds": round(k.seconds, 3), "message": k.message}
                   for c, k in result.checks.items()},
        "backend": result.backend,
        "parity": result.parity,
        "weights": result.weights.to_report() if result.weights else None,
        "smoke": result.smoke,
        "statuses": levels,
        "not_measured_because": {k: v for k, v in not_measured.items() if levels[k] == NOT_MEASURED},
        "declared_statuses": manifest.status if manifest else None,
    }


def junit_xml(results: dict[str, ModelResult], seconds: float) -> bytes:
    """One testsuite per model, one testcase per check (JUnit XML as Jenkins and GitLab read it)."""
    checks = [(r, c, r.checks[c]) for r in results.values() for c in CHECKS]
    root = ET.Element("testsuites", name="modelzoo ci", **_counts([k for _, _, k in checks]),
                      time=f"{seconds:.3f}")
    for result in results.values():
        cases = list(result.checks.items())
        suite = ET.SubElement(root, "testsuite", name=result.name, **_counts([k for _, k in cases]),
                              time=f"{sum(k.seconds for _, k in cases):.3f}")
        properties = ET.SubElement(suite, "properties")
        for key, value in (("manifest", result.manifest_path), ("backend", result.backend),
                           ("weights", _weights_label(result))):
            ET.SubElement(properties, "property", name=key, value=str(value or ""))
        for check, outcome in cases:
            case = ET.SubElement(suite, "testcase", classname=f"modelzoo.{result.name}", name=check,
                                 time=f"{outcome.seconds:.3f}")
            if outcome.status == "fail":
                ET.SubElement(case, "failure", message=outcome.message, type="CheckFailed").text = outcome.message
            elif outcome.status == "skip":
                ET.SubElement(case, "skipped", message=outcome.message)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def _counts(outcomes: list[Check]) -> dict[str, str]:
    return {"tests": str(len(outcomes)), "failures": str(sum(k.status == "fail" for k in outcomes)),
            "errors": "0", "skipped": str(sum(k.status == "skip" for k in outcomes))}


def write_results(results: dict[str, ModelResult], output: Path, paths: list[Path], seconds: float) -> None:
    atomic_write_bytes(output / "junit.xml", junit_xml(results, seconds))
    atomic_write_json(output / "ci.json", {
        "passed": all(r.passed for r in results.values()),
        "paths": [str(p) for p in paths],
        "seconds": round(seconds, 3),
        "modelzoo": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "models": {name: model_json(r) for name, r in results.items()},
    })
    for result in results.values():
        levels, _ = statuses(result)
        text = "".join(f"{key}:{value}\n" for key, value in levels.items())
        atomic_write_bytes(output / _safe(result.name) / "modelzoo_level.txt", text.encode())


def print_summary(results: dict[str, ModelResult], output: Path) -> None:
    header = ("model", *CHECKS, "backend", "weights", "FuncStatus")
    rows = [header] + [(r.name, *(r.checks[c].status for c in CHECKS), r.backend or "-",
                        _weights_label(r) or "-", statuses(r)[0]["FuncStatus"]) for r in results.values()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    failed = sum(not r.passed for r in results.values())
    print(f"\n{len(results) - failed} of {len(results)} models passed; results in {output}")


def _print_check(result: ModelResult, check: str, quiet: bool) -> None:
    if not quiet:
        outcome = result.checks[check]
        print(f"{outcome.status.upper():4}  {result.name}  {check}  {outcome.seconds:.1f}s  {outcome.message}")


def _weights_label(result: ModelResult) -> str | None:
    if result.weights is None:
        return None
    return "random" if result.weights.random else "real"


def _safe(name: str) -> str:
    """A model name as one path component."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).lstrip(".") or "_"


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else ""
    if isinstance(exc, (UserError, ContractError, CheckFailed)) and text:
        return text  # written for the user already
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# --- entry point -------------------------------------------------------------------------------

def run_ci(paths: list[Path], output: Path, load_entrypoints: bool = True, quiet: bool = False,
           cache_dir: Path | None = None) -> int:
    """Check every model found; write junit.xml, ci.json and MODEL/modelzoo_level.txt into `output`.

    Returns the exit code: 0 when every model passed, 1 otherwise. An empty `paths` checks the
    installed (entry point) plugins only. The artifact cache defaults to OUTPUT/cache.
    """
    started = time.perf_counter()
    output = Path(output)
    cache = Cache(cache_dir or output / "cache")
    saved_path = list(sys.path)
    try:
        results, registry = discover(list(paths), load_entrypoints)
        if not results:
            raise UserError(f"no model plugins found under {', '.join(map(str, paths)) or 'the installed plugins'}; "
                            f"pass directories that hold {MANIFEST_NAME} files")
        log.info("found %d models: %s", len(results), ", ".join(results))
        for result in results.values():
            check_model(result, registry, output, cache, quiet)
    finally:
        sys.path[:] = saved_path  # tree plugins were importable for the run only
    write_results(results, output, list(paths), time.perf_counter() - started)
    print_summary(results, output)
    return 0 if all(r.passed for r in results.values()) else 1
