"""The plugin contract: hooks, the plugin manager, the registry and the mock runner."""
from __future__ import annotations

import dataclasses
import functools
import importlib
import re
from pathlib import Path

import pluggy
import pytest
import torch

import modelzoo_lvvit.plugin as lvvit_plugin
import tests.plugins.tinycnn.plugin as tiny_plugin
from modelzoo.backends.base import Backend
from modelzoo.errors import PluginError, UserError
from modelzoo.hookspecs import hookimpl
from modelzoo.plugins import BUILTIN_PLUGINS, get_plugin_manager
from modelzoo.registry import Registry
from modelzoo.testing.mock import ContractError, MockRunner
from tests.conftest import install_plugin, registering, run_cli


def test_builtins_register_like_external_plugins_and_entry_points_can_be_switched_off(monkeypatch):
    pm = get_plugin_manager(load_entrypoints=False)
    # Each built-in is a plugin named after its module, registered in the declared order.
    assert [name for name, _ in pm.list_name_plugin()] == list(BUILTIN_PLUGINS)
    assert all(pm.get_plugin(name) is importlib.import_module(name) for name in BUILTIN_PLUGINS)
    registry = Registry(pm)
    assert {"onnxruntime", "openvino", "torch", "ascend"} == set(registry.backends) and registry.models == {}

    # Like an installed plugin, a built-in can be switched off by name.
    monkeypatch.setenv("MODELZOO_DISABLE_PLUGINS", "modelzoo.backends.openvino")
    assert set(Registry(get_plugin_manager(load_entrypoints=False)).backends) == {"onnxruntime", "torch", "ascend"}
    monkeypatch.delenv("MODELZOO_DISABLE_PLUGINS")

    monkeypatch.setenv("MODELZOO_LOAD_ENTRYPOINTS", "0")
    assert Registry(get_plugin_manager()).models == {}
    monkeypatch.setenv("MODELZOO_LOAD_ENTRYPOINTS", "1")
    with_installed = get_plugin_manager()
    # Installed plugins come after the built-ins.
    assert [name for name, _ in with_installed.list_name_plugin()][:len(BUILTIN_PLUGINS)] == list(BUILTIN_PLUGINS)
    assert "lvvit" in Registry(with_installed).models  # installed through the entry point


def test_a_misspelled_hook_is_caught_at_registration():
    class Misspelled:
        @hookimpl
        def modelzoo_register_model(self, register):
            pass

    with pytest.raises(pluggy.PluginValidationError, match="modelzoo_register_model"):
        MockRunner(Misspelled())


@pytest.mark.parametrize("plugin,name", [(lvvit_plugin, "lvvit"), (tiny_plugin, "tinycnn")])
def test_real_plugins_keep_the_contract(plugin, name):
    runner = MockRunner(plugin)
    runner.check_model(name)
    assert runner.model(name).manifest.name == name


def broken(**changes):
    """A plugin registering the tiny model with some pieces replaced."""
    return registering(dataclasses.replace(MockRunner(tiny_plugin).model("tinycnn"), **changes))


class WrongHead(torch.nn.Module):
    def forward(self, x):
        return torch.zeros(x.shape[0], 7)


def shuffled_init(model, seed):
    for p in model.parameters():
        torch.nn.init.normal_(p)  # ignores the seed


@pytest.mark.parametrize("changes,message", [
    ({"build": lambda variant: WrongHead().eval()}, "output 'scores' shape [2, 7] differs from the manifest's ['n', 10]"),
    ({"build": lambda variant: tiny_plugin.TinyCNN().train()}, "eval mode"),
    ({"init_random": shuffled_init}, "same seed"),
    ({"preprocess": lambda path: None}, "not picklable"),
    ({"preprocess": functools.partial(tiny_plugin.preprocess)}, None),
])
def test_the_mock_runner_names_each_broken_promise(changes, message):
    plugin = broken(**changes)
    if message is None:
        MockRunner(plugin).check_model("tinycnn")  # a partial of a module-level function is fine
        return
    with pytest.raises(ContractError, match=re.escape(message)):
        MockRunner(plugin).check_model("tinycnn")


def test_the_registry_applies_the_same_contract_and_names_the_plugin():
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(broken(preprocess=lambda path: None), name="unpicklable")
    with pytest.raises(PluginError, match="plugin 'unpicklable' raised ContractError in hook "
                                          "modelzoo_register_models: preprocess is not picklable"):
        Registry(pm)


def test_registering_something_else_than_an_entry_is_a_contract_error():
    class Plugin:
        @hookimpl
        def modelzoo_register_models(self, register):
            register({"name": "dict"})

    with pytest.raises(ContractError, match="not a ModelEntry"):
        MockRunner(Plugin())


class Unavailable(Backend):
    name = "nowhere"
    priority = 99

    def unavailable_reason(self):
        return "the nowhere SDK is not installed; pip install nowhere"


@hookimpl
def modelzoo_register_backends(register):
    register(Unavailable())


def test_registry_picks_the_best_available_backend_and_explains_unavailable_ones():
    import sys

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(sys.modules[__name__])
    registry = Registry(pm)
    available = [b for b in registry.backends.values() if b.unavailable_reason() is None]
    # nowhere ranks highest but is unavailable: auto takes the best of the rest
    assert registry.backend("auto") is max(available, key=lambda b: b.priority)
    assert registry.backend("auto").name != "nowhere"
    with pytest.raises(UserError, match="not available here: the nowhere SDK is not installed"):
        registry.backend("nowhere")
    with pytest.raises(UserError, match=r"unknown backend 'tensorrt' \(known: .*nowhere, onnxruntime.*, or auto\)"):
        registry.backend("tensorrt")
    with pytest.raises(UserError, match=r"unknown model 'resnet' \(installed: none\)"):
        registry.model("resnet")


def test_two_plugins_registering_one_name_is_one_clear_line():
    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(tiny_plugin)
    pm.register(broken())
    with pytest.raises(UserError, match="two plugins register a model named 'tinycnn'"):
        Registry(pm)


def list_with_installed_plugin(site: Path, dist: str, entry: str):
    """`modelzoo list` with one more plugin installed."""
    return run_cli("list", env=install_plugin(site, dist, entry))


RAISING_PLUGIN = ("from modelzoo.hookspecs import hookimpl\n\n"
                  "@hookimpl\n"
                  "def modelzoo_register_backends(register):\n"
                  "    raise RuntimeError('backend table is corrupt')\n")


def one_warning(stderr: str, plugin: str) -> str:
    """The one line saying `plugin` is broken, which also says how to switch it off."""
    lines = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith(f"warning: plugin '{plugin}' is broken, its models are left out: ")
    assert lines[0].endswith(f"--disable-plugin {plugin} or MODELZOO_DISABLE_PLUGINS={plugin}")
    return lines[0]


def test_a_plugin_whose_hook_raises_is_one_warning_line_and_a_traceback_only_with_debug(tmp_path):
    (tmp_path / "raising_plugin.py").write_text(RAISING_PLUGIN)
    env = install_plugin(tmp_path, "raising_plugin", "raiser = raising_plugin")
    info = run_cli("info", "lvvit", env=env)
    assert info.returncode == 0 and info.stdout.startswith("lvvit: ")
    warning = one_warning(info.stderr, "raiser")
    assert "raised RuntimeError in hook modelzoo_register_backends: backend table is corrupt" in warning
    assert "Traceback" not in info.stderr

    debug = run_cli("info", "lvvit", "--debug", env=env)
    assert debug.returncode == 0 and "Traceback" in debug.stderr and "backend table is corrupt" in debug.stderr

    listing = run_cli("list", env=env)  # list names it in its own section instead
    assert listing.returncode == 0 and "warning:" not in listing.stderr
    assert "plugins not loaded (broken):\n  raiser " in listing.stdout


def test_an_installed_plugin_that_fails_to_import_is_named_and_can_be_disabled(tmp_path):
    env = install_plugin(tmp_path, "broken_plugin", "broken = no_such_module_here")
    listing = run_cli("list", env=env)  # list still works, and says what is broken
    assert listing.returncode == 0 and "lvvit" in listing.stdout
    assert "plugins not loaded (broken):" in listing.stdout
    assert "installed plugin 'broken' (no_such_module_here) failed to load: ModuleNotFoundError" in listing.stdout

    info = run_cli("info", "lvvit", env=env)  # the other models work, with one line naming it
    assert info.returncode == 0 and info.stdout.startswith("lvvit: ")
    assert "installed plugin 'broken' (no_such_module_here) failed to load" in one_warning(info.stderr, "broken")
    for switched_off in (run_cli("info", "lvvit", "--disable-plugin", "broken", env=env),
                         run_cli("info", "lvvit", env={**env, "MODELZOO_DISABLE_PLUGINS": "other,broken"})):
        assert switched_off.returncode == 0 and "warning" not in switched_off.stderr


def test_a_hook_with_a_wrong_signature_is_one_line_naming_the_plugin(tmp_path):
    (tmp_path / "wrong_signature.py").write_text(
        "from modelzoo.api import hookimpl\n\n"
        "@hookimpl\n"
        "def modelzoo_register_models(register, registry):\n"
        "    pass\n")
    env = install_plugin(tmp_path, "wrong_signature", "wrong = wrong_signature")
    result = run_cli("info", "lvvit", env=env)
    assert result.returncode == 0
    warning = one_warning(result.stderr, "wrong")
    assert "installed plugin 'wrong' (wrong_signature) does not match the hook specifications" in warning
    assert "registry" in warning


INVALID_MANIFEST_PLUGIN = """\
from pathlib import Path

from modelzoo.api import hookimpl, load_manifest


@hookimpl
def modelzoo_register_models(register):
    path = Path(__file__).with_name("bad.toml")
    path.write_text('name = "badmodel"\\n')  # nothing else a manifest needs
    load_manifest(path)
"""


def test_a_plugin_with_an_invalid_manifest_stops_only_its_own_model(tmp_path, tiny_data):
    (tmp_path / "bad_manifest.py").write_text(INVALID_MANIFEST_PLUGIN)
    env = install_plugin(tmp_path, "two_plugins", "tinycnn = tests.plugins.tinycnn.plugin\nbad = bad_manifest")
    run = run_cli("run", "tinycnn", "--backend", "onnxruntime", "--bs", "2", "--data", str(tiny_data),
                  "--workers", "0", "--output", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                  env=env)
    assert run.returncode == 0, run.stderr
    assert "raised UserError in hook modelzoo_register_models" in one_warning(run.stderr, "bad")
    assert (tmp_path / "out" / "report.json").is_file()

    own = run_cli("run", "badmodel", env=env)  # its own model: the breakage, in the error's one line
    assert own.returncode == 2
    last = own.stderr.strip().splitlines()[-1]
    assert last.startswith("error: unknown model 'badmodel' (installed: lvvit, tinycnn); broken plugins, whose "
                           "models are missing: plugin 'bad' raised UserError in hook modelzoo_register_models")
    assert "bad.toml" in last


class Recording:
    """A hookwrapper around both registration hooks: it sees every call pluggy makes."""

    def __init__(self):
        self.calls: list[str] = []

    @hookimpl(wrapper=True)
    def modelzoo_register_models(self, register):
        self.calls.append("models")
        return (yield)

    @hookimpl(wrapper=True)
    def modelzoo_register_backends(self, register):
        self.calls.append("backends")
        return (yield)


class Raising:
    @hookimpl
    def modelzoo_register_models(self, register):
        raise KeyError("no such table")


def test_registration_goes_through_pluggy_and_names_the_plugin_that_raises():
    pm = get_plugin_manager(load_entrypoints=False)
    wrapper = Recording()
    pm.register(wrapper, name="wrapper")
    pm.register(tiny_plugin)
    pm.register(Raising(), name="raiser")
    with pytest.raises(PluginError, match="^plugin 'raiser' raised KeyError in hook modelzoo_register_models: "
                                          "'no such table'; fix it, or skip it with --disable-plugin raiser"):
        Registry(pm)
    assert "models" in wrapper.calls  # pluggy called the hook: its wrappers ran

    broken = []
    registry = Registry(pm, broken)  # with a place for broken plugins, the others register
    assert [error.plugin for error in broken] == ["raiser"] and set(registry.models) == {"tinycnn"}
    assert pm.is_blocked("raiser")
    assert {"models", "backends"} <= set(wrapper.calls)
    with pytest.raises(UserError, match="unknown model 'other' .*broken plugins, whose models are missing: "
                                        "plugin 'raiser' raised KeyError"):
        registry.model("other")


def test_the_mock_runner_takes_the_same_path():
    wrapper = Recording()
    runner = MockRunner(wrapper, tiny_plugin)
    assert wrapper.calls == ["models"] and set(runner.models) == {"tinycnn"}  # tinycnn has no backends
    with pytest.raises(PluginError, match="plugin '.*' raised KeyError in hook modelzoo_register_models"):
        MockRunner(Raising())


def test_disabled_plugins_are_blocked_in_the_plugin_manager(monkeypatch):
    monkeypatch.setenv("MODELZOO_DISABLE_PLUGINS", "modelzoo.backends.torch, lvvit")
    pm = get_plugin_manager(load_entrypoints=True)
    assert pm.is_blocked("modelzoo.backends.torch") and pm.is_blocked("lvvit")
    assert pm.get_plugin("lvvit") is None and "torch" not in Registry(pm).backends
