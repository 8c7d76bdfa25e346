from __future__ import annotations

import logging
import re
import tomllib
from pathlib import Path

import pytest

from modelzoo.errors import UserError
from modelzoo.manifest import ARRAYS, SECTIONS, TOP_LEVEL, load_manifest

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
    assert m.export["opset"] == 13 and m.atc["framework"] == 5
    assert m.expected["top1"] == pytest.approx(0.8317)
    assert m.status == {"FuncStatus": "OK", "PrecisionStatus": "OK", "PerfStatus": "POK"}


def test_the_dump_helper_round_trips_the_real_manifest(real, tmp_path):
    assert tomllib.loads(dump(real)) == real


def required_keys():
    keys = [(None, k) for k, (_, req) in TOP_LEVEL.items() if req]
    keys += [(s, k) for s, spec in SECTIONS.items() for k, (_, req) in spec.items() if req]
    keys += [(s, None) for s in SECTIONS] + [(a, None) for a in ARRAYS]
    return keys


@pytest.mark.parametrize("section,key", required_keys())
def test_each_missing_required_key_is_one_line_naming_file_and_key(real, tmp_path, section, key):
    if section is None:
        del real[key]
        name = key
    elif key is None:
        del real[section]
        name = section
    else:
        del real[section][key]
        name = f"{section}.{key}"
    path = write(tmp_path, real)
    with pytest.raises(UserError) as info:
        load_manifest(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and f"'{name}'" in message and "missing" in message


@pytest.mark.parametrize("mutate,key,expected", [
    (lambda d: d.update(num_classes="1000"), "num_classes", "an integer"),
    (lambda d: d["preprocess"].update(resize=248.0), "preprocess.resize", "an integer"),
    (lambda d: d["preprocess"].update(interpolation="cubic"), "preprocess.interpolation", "'bicubic'"),
    (lambda d: d["preprocess"].update(mean="0.5"), "preprocess.mean", "a list of numbers"),
    (lambda d: d["inputs"][0].update(shape=[]), "inputs[0].shape", "symbolic"),
    (lambda d: d["status"].update(PerfStatus="GOOD"), "status.PerfStatus", "'POK'"),
    (lambda d: d["expected"]["perf"][0].update(fps={"one": 3.0}), "expected.perf[0].fps", "batch size"),
    (lambda d: d.update(source="github"), "source", "a table"),
])
def test_wrong_types_name_key_and_expectation(real, tmp_path, mutate, key, expected):
    mutate(real)
    path = write(tmp_path, real)
    with pytest.raises(UserError, match=re.escape(f"'{key}'")) as info:
        load_manifest(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_unknown_keys_warn_but_load(real, tmp_path, caplog):
    real["colour"] = "blue"
    real["atc"]["flavour"] = 1
    with caplog.at_level(logging.WARNING):
        m = load_manifest(write(tmp_path, real))
    assert m.name == "lvvit"
    assert "unknown key 'colour'" in caplog.text and "unknown key 'atc.flavour'" in caplog.text


def test_invalid_toml_and_missing_file(tmp_path):
    bad = tmp_path / "plugin.toml"
    bad.write_text("name = \n")
    with pytest.raises(UserError, match="not valid TOML"):
        load_manifest(bad)
    with pytest.raises(UserError, match="manifest not found"):
        load_manifest(tmp_path / "nope.toml")
