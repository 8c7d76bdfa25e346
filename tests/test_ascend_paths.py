"""The Ascend backend against ais_bench's path rules, as the fake front end enforces them.

The fake ais_bench refuses what the current front end refuses (tests/test_fake_ascend.py shows it
does); here the runner must get through under umask 022 and 002, and a folder that ais_bench
would refuse must end the run with one line before anything is exported.
"""
from __future__ import annotations

import os
import re
import stat
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from modelzoo.manifest import Tensor, load_manifest
from tests.conftest import run_cli
from tests.test_ascend_backend import IMAGES, STEMS, one_error_line, outcome, run_lvvit
from tests.test_fake_ascend import ais_bench, convert, samples, tiny_onnx

OTHER_UID = 4242  # a user the test process is not, and whose group it is not in
TINY_MANIFEST = Path(__file__).parent / "plugins" / "tinycnn" / "plugin.toml"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    previous = os.umask(request.param)  # inherited by the modelzoo and ais_bench processes
    yield request.param
    os.umask(previous)


def never_exported(cache: Path) -> bool:
    return not cache.exists() or not any(cache.iterdir())


# ---------------------------------------------------------------- runs that must pass


@pytest.mark.slow
@pytest.mark.parametrize("io", ["files", "stream"])
def test_runs_under_both_umasks(fake_ascend, umask, io, tmp_path, dataset_dir,
                                spread_checkpoint, cache_dir) -> None:
    output = tmp_path / "run"
    result = run_lvvit(output, dataset_dir, spread_checkpoint, cache_dir, "--backend", "ascend",
                       "--bs", "4", "--io", io)
    assert result.returncode == 0, result.stderr
    assert len(outcome(output)[1]) == IMAGES
    for om in cache_dir.glob("lvvit-ascend-*.om"):
        assert mode(om) == 0o640, om
    if io == "files":
        work = output / "ascend"
        for folder in (work, work / "output", work / "output" / "device0"):
            assert mode(folder) == 0o750, folder
        results = sorted((work / "output" / "device0").glob("*_0.bin"))
        assert [p.name for p in results] == [f"{s}_0.bin" for s in STEMS]
        assert {mode(p) for p in results} == {0o640}


@pytest.mark.slow
def test_modes_left_by_an_earlier_run_are_fixed(fake_ascend, tmp_path, dataset_dir,
                                                spread_checkpoint, cache_dir) -> None:
    output = tmp_path / "run"
    args = ("--backend", "ascend", "--bs", "4", "--io", "files")
    first = run_lvvit(output, dataset_dir, spread_checkpoint, cache_dir, *args)
    assert first.returncode == 0, first.stderr
    # The .om this run used, as its logged ais_bench command names it (the session's shared cache
    # holds other bs4 forms too).
    om = Path(re.search(r"-m ais_bench .*?--model (\S+\.om)", first.stderr)[1])
    # What an older runner, or a run under umask 002, leaves: ais_bench refuses all of these.
    device_dir = output / "ascend" / "output" / "device0"
    for result in device_dir.iterdir():  # so that ais_bench runs again over these folders
        result.unlink()
    device_dir.chmod(0o775)
    (output / "ascend" / "output").chmod(0o777)
    om.chmod(0o664)
    result = run_lvvit(output, dataset_dir, spread_checkpoint, cache_dir, *args, "--fresh")
    assert result.returncode == 0, result.stderr
    assert "-m ais_bench" in result.stderr
    assert (mode(device_dir), mode(device_dir.parent), mode(om)) == (0o750, 0o750, 0o640)


@pytest.mark.slow
def test_symlinked_cache_and_output_are_resolved(fake_ascend, tmp_path, dataset_dir,
                                                 spread_checkpoint, cache_dir) -> None:
    (tmp_path / "real-out").mkdir()
    (tmp_path / "out-link").symlink_to(tmp_path / "real-out")
    (tmp_path / "cache-link").symlink_to(cache_dir)
    result = run_lvvit(tmp_path / "out-link", dataset_dir, spread_checkpoint,
                       tmp_path / "cache-link", "--backend", "ascend", "--bs", "4", "--io", "files")
    assert result.returncode == 0, result.stderr
    # ais_bench was handed the real paths, never the links.
    assert f"--model {cache_dir.resolve()}/" in result.stderr
    assert f"--output {tmp_path.resolve()}/real-out/ascend/output " in result.stderr
    assert "-link" not in "".join(ln for ln in result.stderr.splitlines() if "-m ais_bench" in ln)


# ---------------------------------------------------------------- refused before any export


@pytest.mark.slow
@pytest.mark.parametrize("where", ["output", "cache"])
def test_a_space_is_one_line_before_export(fake_ascend, tmp_path, dataset_dir,
                                           spread_checkpoint, where) -> None:
    spaced = tmp_path / "with space"
    output = spaced / "run" if where == "output" else tmp_path / "run"
    cache = spaced / "cache" if where == "cache" else tmp_path / "cache"
    result = run_lvvit(output, dataset_dir, spread_checkpoint, cache, "--backend", "ascend",
                       "--bs", "4", "--io", "files")
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert f"{spaced}/" in line and "contains ' '" in line
    assert ("--output" if where == "output" else "--cache-dir") in line
    assert never_exported(cache)
    assert "running: atc" not in result.stderr


@pytest.mark.slow
def test_the_working_folder_is_named_for_a_relative_output(fake_ascend, tmp_path, dataset_dir,
                                                          spread_checkpoint) -> None:
    cwd = tmp_path / "my work"
    cwd.mkdir()
    cache = tmp_path / "cache"
    result = run_cli("run", "lvvit", "--data", str(dataset_dir), "--weights",
                     str(spread_checkpoint), "--cache-dir", str(cache), "--output", "out",
                     "--backend", "ascend", "--io", "stream", cwd=cwd)
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert f"the working folder {cwd}" in line
    assert never_exported(cache)


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="giving a folder to another user needs root")
def test_a_folder_of_another_user_is_one_line_before_export(fake_ascend, tmp_path,
                                                            dataset_dir, spread_checkpoint) -> None:
    output = tmp_path / "run"
    (output / "ascend" / "output").mkdir(parents=True)
    os.chown(output / "ascend" / "output", OTHER_UID, OTHER_UID)
    cache = tmp_path / "cache"
    result = run_lvvit(output, dataset_dir, spread_checkpoint, cache, "--backend", "ascend",
                       "--bs", "4", "--io", "files")
    assert result.returncode == 2
    line = one_error_line(result.stderr)
    assert f"{output}/ascend/output belongs to another user (uid {OTHER_UID})" in line
    assert never_exported(cache)


@pytest.mark.slow
def test_bench_and_ci_check_the_same_paths(fake_ascend, tmp_path, spread_checkpoint) -> None:
    spaced = tmp_path / "with space"
    bench = run_cli("bench", "lvvit", "--backend", "ascend", "--bs", "1", "--weights",
                    str(spread_checkpoint), "--cache-dir", str(spaced / "cache"),
                    "--output", str(tmp_path / "bench"))
    assert bench.returncode == 2
    assert "contains ' '" in one_error_line(bench.stderr)
    assert never_exported(spaced / "cache")
    (tmp_path / "trees").mkdir()  # the installed lvvit plugin is found all the same
    ci = run_cli("ci", str(tmp_path / "trees"), "--output", str(spaced / "ci"))
    assert ci.returncode == 2
    assert f"{spaced}/ci" in one_error_line(ci.stderr)
    assert never_exported(spaced / "ci" / "cache")


# ---------------------------------------------------------------- ais_bench's own refusal


def test_ais_bench_refusal_is_its_one_message_line(fake_ascend, tmp_path) -> None:
    from modelzoo.backends.ascend.ais_cli import ais_failure
    from modelzoo.backends.ascend.ais_parse import parse_console

    tiny_onnx(tmp_path / "tiny.onnx")
    convert(tmp_path, tmp_path / "tiny.onnx", "tiny_bs4", "--input_shape=image:4,3,4,4")
    samples(tmp_path / "in", 4)
    (tmp_path / "out").mkdir(mode=0o775)
    (tmp_path / "out").chmod(0o775)
    refused = ais_bench(tmp_path, "-m", "tiny_bs4.om", "-i", "in", "-o", "out")
    assert refused.returncode == 2
    text = refused.stdout + refused.stderr
    error = ais_failure("ais_bench on device 0", parse_console(text), text, refused.returncode)
    message = str(error)
    assert "\n" not in message and "usage:" not in message
    assert message.startswith("ais_bench on device 0 was refused (exit 2): argument --output/-o: "
                              "output path:out is illegal. Please check. (The file ")
    assert f"{tmp_path}/out is group writable" in message


# ---------------------------------------------------------------- every model released first


@pytest.mark.parametrize("api", ["new", "old"])
def test_stream_close_releases_every_model_before_finalize(fake_ascend, tmp_path, monkeypatch,
                                                           api) -> None:
    from modelzoo.backends.ascend.ais_session import AisStreamSession

    if api == "old":
        monkeypatch.setenv("MODELZOO_FAKE_AIS_API", "old")
    tiny_onnx(tmp_path / "tiny.onnx")
    convert(tmp_path, tmp_path / "tiny.onnx", "tiny_bs4", "--input_shape=image:4,3,4,4")
    # The tiny model's tensors in a real manifest.
    manifest = replace(load_manifest(TINY_MANIFEST),
                       inputs=(Tensor("image", "float32", "NCHW", ("N", 3, 4, 4)),),
                       outputs=(Tensor("features", "float32", "ND", ("N", 10)),))
    session = AisStreamSession(tmp_path / "tiny_bs4.om", manifest, 4, False, [0, 1, 2])
    for _ in range(3):  # one batch per device
        assert session.infer({"image": np.zeros((4, 3, 4, 4), np.float32)})["features"].shape == (4, 10)
    session.close()
    from ais_bench.backend import RUNTIME

    kinds = [event[0] for event in RUNTIME.events]
    assert kinds == ["load"] * 3 + ["unload"] * 3 + ["finalize"]
    assert {e[1] for e in RUNTIME.events if e[0] == "unload"} == {1, 2, 3}
    assert RUNTIME.late_releases == []
    assert session.throughput_fps() == pytest.approx(3 * 4000 / 3.0)


@pytest.mark.parametrize("loop", [0, 100001])
def test_pure_inference_loop_is_in_ais_bench_range(loop) -> None:
    from modelzoo.backends.ascend.ais_cli import pure_inference
    from modelzoo.errors import UserError

    with pytest.raises(UserError, match=rf"--loop {loop} is outside 1..100000"):
        pure_inference(Path("never-run.om"), 1, False, [0], loop, "Ascend310P3")


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
def test_a_cached_om_of_another_user(tmp_path) -> None:
    from modelzoo.backends.ascend.paths import check_paths
    from modelzoo.errors import UserError

    cache = tmp_path / "cache"
    cache.mkdir()
    om = cache / "m.om"
    om.write_bytes(b"")
    (tmp_path / "elsewhere.om").write_bytes(b"")
    (cache / "link.om").symlink_to(tmp_path / "elsewhere.om")  # resolved, so accepted
    check_paths(tmp_path / "out", cache)
    # ais_bench counts as "in its group" only what os.getgroups() lists (not the primary group).
    if os.getgroups():
        os.chown(om, OTHER_UID, os.getgroups()[0])  # a member of its group: taken as it is
        om.chmod(0o640)
        check_paths(tmp_path / "out", cache)
        om.chmod(0o660)
        with pytest.raises(UserError, match=rf"^{om} belongs to another user .*group- or other-writable"):
            check_paths(tmp_path / "out", cache)
    os.chown(om, OTHER_UID, OTHER_UID)
    om.chmod(0o640)
    with pytest.raises(UserError, match="refuses paths whose owner or group the current user is not in; "
                                        "pass --cache-dir with a folder of your own"):
        check_paths(tmp_path / "out", cache)


def test_files_mode_refuses_an_image_name_ais_bench_would_refuse(tmp_path) -> None:
    from modelzoo.backends.ascend.ais_cli import AisFilesSession
    from modelzoo.core import Batch
    from modelzoo.errors import UserError

    manifest = replace(load_manifest(TINY_MANIFEST),
                       inputs=(Tensor("image", "float32", "NCHW", ("N", 3, 4, 4)),),
                       outputs=(Tensor("features", "float32", "ND", ("N", 10)),))
    session = AisFilesSession(tmp_path / "never-run.om", manifest, 2, False, [0], tmp_path / "out", False)
    batch = Batch(["ok_1", "holiday photo"], {"image": np.zeros((2, 3, 4, 4), np.float32)})
    with pytest.raises(UserError, match="image 'holiday photo' would be written as an input file "
                                        "ais_bench refuses"):
        list(session.run([batch]))
    assert not list((tmp_path / "out").rglob("*_0.bin"))  # ais_bench never ran
