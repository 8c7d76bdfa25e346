from __future__ import annotations

import pytest

from modelzoo.cache import Cache


def test_same_parts_reuse_and_other_parts_rebuild(tmp_path, caplog):
    cache = Cache(tmp_path)
    builds = []

    def build(tmp):
        builds.append(tmp)
        tmp.write_text(f"build {len(builds)}")

    first = cache.artifact("m", ".onnx", {"weights": "abc", "bs": 4}, build, "export")
    with caplog.at_level("INFO"):
        again = cache.artifact("m", ".onnx", {"bs": 4, "weights": "abc"}, build, "export")
    other = cache.artifact("m", ".onnx", {"weights": "abd", "bs": 4}, build, "export")
    assert first == again and len(builds) == 2 and other != first
    assert first.read_text() == "build 1" and other.read_text() == "build 2"
    assert "reusing cached export" in caplog.text
    assert cache.reused == {first.name: True, other.name: False}
    assert (first.parent / (first.name + ".key.json")).exists()


def test_an_interrupted_build_leaves_nothing_a_later_run_would_trust(tmp_path):
    cache = Cache(tmp_path)

    def crash(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        cache.artifact("m", ".onnx", {"k": 1}, crash, "export")
    assert list(tmp_path.iterdir()) == []
    path = cache.artifact("m", ".onnx", {"k": 1}, lambda tmp: tmp.write_text("whole"), "export")
    assert path.read_text() == "whole"
