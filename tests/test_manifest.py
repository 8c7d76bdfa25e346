from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from modelzoo.errors import UserError
from modelzoo.manifest import load_manifest

ROOT = Path(__file__).resolve().parent.parent
PLUGIN_TOML = ROOT / "plugin.toml"


def dump(data: dict) -> str:
    """A minimal TOML writer for the shapes a manifest has (tests must not depend on a writer package)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {value(x)}' for k, x in v.items()) + " }"
        return repr(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if not isinstance(v, (dict, list)) or
             (isinstance(v, list) and not any(isinstance(x, dict) for x in v))]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"[{k}]")
            lines += [f'"{kk}" = {value(vv)}' for kk, vv in v.items()]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"[[{k}]]")
                lines += [f'"{kk}" = {value(vv)}' for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def real() -> dict:
    return tomllib.loads(PLUGIN_TOML.read_text())


def write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "plugin.toml"
    path.write_text(dump(data))
    return path


def test_the_lvvit_manifest_loads_with_the_seed_facts():
    m = load_manifest(PLUGIN_TOML)
    assert m.name == "lvvit"
    assert m.inputs[0].name == "image" and m.inputs[0].concrete_shape(4) == (4, 3, 224, 224)
    assert m.outputs[0].name == "features" and m.outputs[0].concrete_shape(2) == (2, 1000)
    assert (m.preprocess["resize"], m.preprocess["crop"], m.preprocess["interpolation"]) == (248, 224, "bicubic")
    assert m.task["kind"] == "classification" and m.task["num_classes"] == 1000
    assert m.export["opset"] == 13 and m.atc["framework"] == 5
    assert m.expected["metrics"]["top1"] == pytest.approx(0.8317)
    assert m.expected["tolerance"]["top1"] == pytest.approx(0.005)
    assert m.status == {"FuncStatus": "OK", "PrecisionStatus": "OK", "PerfStatus": "POK"}


def test_the_dump_helper_round_trips_the_real_manifest(real, tmp_path):
    assert tomllib.loads(dump(real)) == real


def test_optional_tables_take_their_defaults(real, tmp_path):
    for table in ("source", "weights", "preprocess", "export", "atc", "expected"):
        del real[table]
    m = load_manifest(write(tmp_path, real))
    assert m.source is None and m.weights is None and m.preprocess == {}
    assert m.export == {"opset": 13}
    assert m.atc == {"framework": 5, "input_format": "ND", "log": "error", "extra_flags": [],
                     "keep_dtype": []}
    assert m.int8 == {"ignored": []}
    assert m.expected["metrics"] == {} and m.expected["perf"] == []


@pytest.mark.parametrize("path", [("name",), ("summary",), ("plugin",), ("task",), ("task", "kind"),
                                  ("inputs",), ("outputs",), ("status",), ("status", "PerfStatus"),
                                  ("inputs", 0, "dtype"), ("weights", "url"), ("source", "commit")])
def test_each_missing_required_key_is_one_line_naming_file_and_key(real, tmp_path, path):
    table = real
    for part in path[:-1]:
        table = table[part]
    del table[path[-1]]
    key = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
    manifest = write(tmp_path, real)
    with pytest.raises(UserError) as info:
        load_manifest(manifest)
    message = str(info.value)
    assert "\n" not in message
    assert message == f"{manifest}: key '{key}' is missing; fix the manifest"


@pytest.mark.parametrize("mutate,key,expected", [
    (lambda d: d["inputs"][0].update(dtype="float64"), "inputs[0].dtype", "'int64'"),
    (lambda d: d["inputs"][0].update(shape=[]), "inputs[0].shape", "at least 1 item"),
    (lambda d: d["inputs"][0].update(shape=[3, 224]), "inputs[0].shape", "symbolic batch axis"),
    (lambda d: d["inputs"][0].update(shape=["b", 3.5]), "inputs[0].shape[1]", "valid integer"),
    (lambda d: d["inputs"][0].update(shape=["b", 0]), "inputs[0].shape[1]", "greater than 0"),
    (lambda d: d["outputs"][0].update(name="image"), "(top level)", "image appears twice"),
    (lambda d: d["status"].update(PerfStatus="GOOD"), "status.PerfStatus", "'POK'"),
    (lambda d: d["expected"]["perf"][0].update(fps={"one": 3.0}), "expected.perf[0].fps", "batch size"),
    (lambda d: d["expected"].update(tolerance={"top5": 0.1}), "expected", "top5"),
    (lambda d: d["export"].update(opset="13"), "export.opset", "valid integer"),
    (lambda d: d["weights"].update(sha256="abc"), "weights.sha256", "pattern"),
    (lambda d: d.update(source="github"), "source", "valid dictionary"),
    (lambda d: d.update(name="has space"), "name", "pattern"),
])
def test_wrong_values_name_key_and_expectation(real, tmp_path, mutate, key, expected):
    mutate(real)
    path = write(tmp_path, real)
    with pytest.raises(UserError) as info:
        load_manifest(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{path}: key '{key}'")
    assert expected in message and message.endswith("fix the manifest")


def test_a_misspelled_key_is_an_error_naming_it(real, tmp_path):
    real["atc"]["flavour"] = 1
    path = write(tmp_path, real)
    with pytest.raises(UserError, match=re.escape(f"{path}: key 'atc.flavour' is not a manifest key")):
        load_manifest(path)


def test_the_task_table_is_validated_by_its_task(real, tmp_path):
    from modelzoo.tasks import builtin_task

    real["task"]["num_classes"] = "1000"
    path = write(tmp_path, real)
    manifest = load_manifest(path)  # the generic schema leaves the task's keys to the task
    with pytest.raises(UserError, match=re.escape(f"{path}: key 'task.num_classes': Input should be a valid integer")):
        builtin_task(manifest)
    real["task"] = {"kind": "pose"}
    with pytest.raises(UserError, match="names no built-in task"):
        builtin_task(load_manifest(write(tmp_path, real)))


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "plugin.toml"
    bad.write_text("name = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_manifest(bad)
    with pytest.raises(UserError, match="manifest not found"):
        load_manifest(tmp_path / "nope.toml")
