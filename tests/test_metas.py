"""A sample's meta from preprocess to postprocess: what may be in it, who gets it, and the one-line
errors (run, mock runner) when a plugin returns one that cannot be stored."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

import tests.plugins.tinydet.plugin as tinydet
from modelzoo.errors import PluginError
from modelzoo.metas import postprocessor, problem, split, takes_metas
from modelzoo.pipeline import RunOptions, run
from modelzoo.testing.mock import ContractError, MockRunner
from tests.conftest import registering, registry_with
from tests.plugins.tinydet import task as det_task


def numpy_scale(path: Path):
    inputs, meta = det_task.preprocess(path)
    return inputs, {**meta, "scale": np.float32(meta["scale"])}


class OutputsOnly(det_task.Detection):
    """A postprocess that never asks for the metas (so boxes stay in letterbox pixels)."""

    def postprocess(self, outputs):
        return super().postprocess(outputs, [{"scale": 1.0, "pad": [0, 0], "size": [64, 64]}] * len(outputs["boxes"]))


def entry_with(**changes):
    return dataclasses.replace(MockRunner(tinydet).model("tinydet"), **changes)


def test_a_meta_is_the_second_half_of_a_pair_with_a_dict():
    image = np.zeros(3)
    assert split(({"image": image}, {"scale": 2})) == ({"image": image}, {"scale": 2})
    assert split(image) == (image, None)
    pair = (image, image)  # not a meta: left to the inputs' own checks
    assert split(pair) == (pair, None)


def test_what_cannot_be_stored_is_named_with_its_place():
    assert problem({"scale": 0.5, "pad": [1, 2], "size": (3, 4), "name": "a", "flip": None}) is None
    assert problem({"pad": [1, np.int64(2)]}) == \
        "meta['pad'][1] is 2 (int64), not JSON: use plain numbers, strings and lists"
    assert problem({"scale": float("nan")}) == "meta['scale'] is nan, which JSON cannot hold"
    assert problem({1: "a"}) == "meta has the key 1 (int), not a string"
    assert problem(["a"]) == "meta is a list, not a dict"


def test_a_postprocess_gets_metas_when_it_takes_a_second_argument():
    class Two:
        def postprocess(self, outputs, metas):
            return metas

    class Star:
        def postprocess(self, *args):
            return args[1]

    class One:
        def postprocess(self, outputs, *, scale=1):
            return [outputs]

    assert takes_metas(Two().postprocess) and takes_metas(Star().postprocess) and not takes_metas(One().postprocess)
    assert postprocessor(Two())({"x": 1}, [{"a": 1}]) == [{"a": 1}]
    assert postprocessor(Star())({"x": 1}, [{"a": 1}]) == [{"a": 1}]
    assert postprocessor(One())({"x": 1}, [{"a": 1}]) == [{"x": 1}]


def test_the_mock_runner_names_the_sample_and_the_value_that_json_cannot_hold():
    with pytest.raises(ContractError, match=r"^preprocess\(\) of sample scene00 returned meta\['scale'\] is "
                                            r"0\.6666\d* \(float32\), not JSON"):
        MockRunner(registering(entry_with(preprocess=numpy_scale))).check_model("tinydet")


def test_the_mock_runner_fails_metas_that_postprocess_never_gets():
    with pytest.raises(ContractError, match=r"sample scene00 returns a meta that postprocess\(outputs\) never gets"):
        MockRunner(registering(entry_with(task=OutputsOnly()))).check_model("tinydet")


def test_a_run_stops_in_one_line_naming_the_sample_whose_meta_cannot_be_stored(tmp_path):
    registry = registry_with(registering(entry_with(preprocess=numpy_scale)))
    with pytest.raises(PluginError) as caught:
        run(registry, RunOptions(model="tinydet", backend="torch", output=tmp_path, cache_dir=tmp_path / "cache",
                                 workers=0, quiet=True))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("plugin 'tests.plugins.tinydet.plugin' preprocess of sample scene00 returned "
                              "meta['scale'] is 0.666")


def test_metas_a_postprocess_does_not_take_are_still_stored(tmp_path):
    registry = registry_with(registering(entry_with(task=OutputsOnly())))
    run(registry, RunOptions(model="tinydet", backend="torch", output=tmp_path, cache_dir=tmp_path / "cache",
                             workers=0, quiet=True, batch_size=4))
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()[1:]]
    stored = {k: m for line in lines for k, m in zip(line["keys"], line["metas"], strict=True)}
    samples = det_task.Detection().load_dataset(det_task.HERE / "demo").samples
    assert stored == {s.key: det_task.preprocess(s.source)[1] for s in samples}


def test_a_sample_without_a_meta_adds_nothing_to_its_line(tmp_path):
    import tests.plugins.tinytext.plugin as tinytext

    run(registry_with(tinytext), RunOptions(model="tinytext", backend="torch", output=tmp_path,
                                            cache_dir=tmp_path / "cache", workers=0, quiet=True))
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()[1:]]
    assert lines and all(set(line) == {"keys", "records"} for line in lines)
