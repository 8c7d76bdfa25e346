"""Plugin code that raises after start-up (dataset loader, preprocess in a worker, collate,
postprocess, evaluator) ends the run with a PluginError naming the plugin; a UserError it raises
stays the user's one line."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import tests.plugins.tinycnn.plugin as tiny_plugin
from modelzoo.errors import PluginError, UserError
from modelzoo.pipeline import RunOptions, plugin_version, run
from modelzoo.registry import Registry
from modelzoo.tasks import Classification
from tests.conftest import registering, registry_with

PLUGIN = "tests.plugins.tinycnn.plugin"


def failing_preprocess(path):
    raise ValueError(f"cannot decode {path.name}")


def refusing_preprocess(path):
    raise UserError(f"picture {path} is damaged; remove it")


@dataclasses.dataclass(frozen=True)
class FailingTask(Classification):
    fail_in: str = ""

    def load_dataset(self, directory, labels=None):
        if self.fail_in == "load_dataset":
            raise KeyError("no split")
        return super().load_dataset(directory, labels)

    def postprocess(self, outputs):
        if self.fail_in == "postprocess":
            raise IndexError("output 3 of 1")
        return super().postprocess(outputs)

    def evaluator(self):
        if self.fail_in == "the evaluator":
            raise ZeroDivisionError("no classes")
        return super().evaluator()


def replaced(**changes) -> Registry:
    """The built-in backends and the tiny model with some of its pieces replaced."""
    return registry_with(registering(dataclasses.replace(registry_with(tiny_plugin).model("tinycnn"), **changes)))


def options(tmp_path, data, weights, workers=0) -> RunOptions:
    return RunOptions(model="tinycnn", backend="onnxruntime", batch_size=3, data=data, weights=weights,
                      output=tmp_path / "out", cache_dir=tmp_path / "cache", workers=workers, quiet=True)


def task(fail_in: str) -> FailingTask:
    return FailingTask(10, "pictures", "classes.txt", "<file> <class>", "scores", fail_in=fail_in)


@pytest.mark.parametrize("where", ["load_dataset", "postprocess", "the evaluator"])
def test_task_code_that_raises_is_named(tmp_path, tiny_data, tiny_weights, where):
    registry = replaced(task=task(where))
    with pytest.raises(PluginError, match=f"plugin '{PLUGIN}' raised \\w+ in {where}: "):
        run(registry, options(tmp_path, tiny_data, tiny_weights))


def test_a_collate_that_raises_is_named(tmp_path, tiny_data, tiny_weights):
    def collate(rows):
        raise TypeError("rows of different lengths")

    with pytest.raises(PluginError, match=f"plugin '{PLUGIN}' raised TypeError in collate: rows of different"):
        run(replaced(collate=collate), options(tmp_path, tiny_data, tiny_weights))


@pytest.mark.parametrize("workers,threads", [(0, False), (2, False), (2, True)],
                         ids=["main thread", "processes", "threads"])
def test_preprocess_that_raises_in_a_worker_is_named_with_the_sample(tmp_path, tiny_data, tiny_weights, workers,
                                                                     threads):
    with pytest.raises(PluginError) as info:
        run(replaced(preprocess=failing_preprocess, preprocess_in_threads=threads),
            options(tmp_path, tiny_data, tiny_weights, workers))
    message = str(info.value)
    assert message.startswith(f"plugin '{PLUGIN}' raised ValueError in preprocess on ")
    assert "pic0.png: cannot decode pic0.png" in message


@pytest.mark.parametrize("threads", [False, True], ids=["processes", "threads"])
def test_a_user_error_from_preprocess_stays_the_users_one_line(tmp_path, tiny_data, tiny_weights, threads):
    with pytest.raises(UserError, match="^picture .*pic0.png is damaged; remove it$"):
        run(replaced(preprocess=refusing_preprocess, preprocess_in_threads=threads),
            options(tmp_path, tiny_data, tiny_weights, workers=2))


def test_the_report_names_the_plugins_distribution_and_version():
    from importlib.metadata import version

    assert plugin_version("modelzoo_lvvit.plugin") == {
        "module": "modelzoo_lvvit.plugin", "distribution": "modelzoo-lvvit", "version": version("modelzoo-lvvit")}
    assert plugin_version(PLUGIN) == {"module": PLUGIN, "distribution": None, "version": None}


def test_records_that_are_not_json_are_the_plugins_fault(tmp_path, tiny_data, tiny_weights):
    class NumpyRecords(FailingTask):
        def postprocess(self, outputs):
            return [{"best": np.int64(row.argmax())} for row in outputs["scores"]]

    registry = replaced(task=NumpyRecords(10, "pictures", "classes.txt", "<file> <class>", "scores"))
    with pytest.raises(PluginError, match=f"plugin '{PLUGIN}' raised TypeError in postprocess: .*JSON"):
        run(registry, options(tmp_path, tiny_data, tiny_weights))


def test_every_sample_skipped_while_decoding_is_a_failure_with_its_report_kept(tmp_path, tiny_data, tiny_weights):
    """Headers fine, decoding refused: found only while running, so the report lists what was skipped."""
    with pytest.raises(UserError, match="^no sample was scored: all 7 were skipped as unreadable "
                                        r"\(listed in .*report.json\); check --data$"):
        run(replaced(preprocess=refusing_preprocess),
            dataclasses.replace(options(tmp_path, tiny_data, tiny_weights), skip_invalid=True))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["images"] == 0 and len(report["skipped"]) == 7 and report["top1"] is None
