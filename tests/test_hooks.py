"""The plugin contract: hooks, the plugin manager, the registry and the mock runner."""
from __future__ import annotations

import dataclasses
import functools
import importlib
import re

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


def test_a_plugin_whose_hook_raises_is_one_line_naming_it_and_debug_shows_its_traceback(tmp_path):
    """The runner names the plugin and the hook in one line; --debug adds the plugin's traceback."""
    (tmp_path / "raising_plugin.py").write_text(
        "from modelzoo.hookspecs import hookimpl\n\n"
        "@hookimpl\n"
        "def modelzoo_register_backends(register):\n"
        "    raise RuntimeError('backend table is corrupt')\n")
    env = install_plugin(tmp_path, "raising_plugin", "raiser = raising_plugin")
    result = run_cli("list", env=env)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: plugin 'raiser' raised RuntimeError in hook modelzoo_register_backends")
    assert "backend table is corrupt" in line and line.endswith("(pass --debug for the plugin's traceback)")

    debug = run_cli("list", "--debug", env=env)
    assert debug.returncode == 2
    assert "Traceback" in debug.stderr and "raise RuntimeError('backend table is corrupt')" in debug.stderr
    assert debug.stderr.strip().splitlines()[-1].startswith("error: plugin 'raiser' raised RuntimeError")


def test_an_installed_plugin_that_fails_to_import_is_named_and_can_be_disabled(tmp_path):
    env = install_plugin(tmp_path, "broken_plugin", "broken = no_such_module_here")
    listing = run_cli("list", env=env)  # list still works, and says what is broken
    assert listing.returncode == 0 and "lvvit" in listing.stdout
    assert "plugins not loaded (broken):" in listing.stdout
    assert "installed plugin 'broken' (no_such_module_here) failed to load: ModuleNotFoundError" in listing.stdout

    info = run_cli("info", "lvvit", env=env)  # any other command stops, naming it and the way out
    assert info.returncode == 2
    last = info.stderr.strip().splitlines()[-1]
    assert last.startswith("error: installed plugin 'broken' (no_such_module_here) failed to load")
    assert last.endswith("fix it, or skip it with MODELZOO_DISABLE_PLUGINS=broken "
                         "(pass --debug for the plugin's traceback)")
    assert run_cli("info", "lvvit", "--disable-plugin", "broken", env=env).returncode == 0
    assert run_cli("info", "lvvit", env={**env, "MODELZOO_DISABLE_PLUGINS": "other,broken"}).returncode == 0


def test_a_hook_with_a_wrong_signature_is_one_line_naming_the_plugin(tmp_path):
    (tmp_path / "wrong_signature.py").write_text(
        "from modelzoo.api import hookimpl\n\n"
        "@hookimpl\n"
        "def modelzoo_register_models(register, registry):\n"
        "    pass\n")
    env = install_plugin(tmp_path, "wrong_signature", "wrong = wrong_signature")
    result = run_cli("info", "lvvit", env=env)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: installed plugin 'wrong' (wrong_signature) does not match the hook specifications")
    assert "registry" in last and "MODELZOO_DISABLE_PLUGINS=wrong" in last
