"""Reading ais_bench result folders (TXT / BIN / NPY, one file per output, keyed by sample key)."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelzoo.errors import UserError
from modelzoo.manifest import Tensor
from modelzoo.results import read_results

C = 10  # a small class count keeps the files readable; the code does not care


def read_scores(folder: Path, num_classes: int) -> dict[str, np.ndarray]:
    """Output 0 of a classifier with `num_classes` scores, per stem."""
    output = Tensor("scores", "float32", "NC", ("batch", num_classes))
    return {stem: outputs["scores"] for stem, outputs in read_results(folder, [output]).items()}


# --- writers in ais_bench's formats (the reference, not the module under test) --------------


def write_txt(path: Path, array: np.ndarray) -> None:
    # ais_bench: reshape to (-1, last_dim); every value as '%f' followed by a space; '\n' per row.
    rows = array.reshape(-1, array.shape[-1])
    path.write_text("".join("".join("%f " % value for value in row) + "\n" for row in rows))


def write_bin(path: Path, array: np.ndarray) -> None:
    path.write_bytes(array.astype("<f4").tobytes())


def write_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as file:  # np.save(path) would append '.npy' to odd names
        np.save(file, array)


WRITERS = {"txt": write_txt, "bin": write_bin, "npy": write_npy}


def txt_rounded(array: np.ndarray) -> np.ndarray:
    """What a TXT result can hold: each value rounded to 6 decimals by '%f'."""
    return np.array([float("%f" % value) for value in array.ravel()], dtype=np.float32)


def scores(seed: int, shape: tuple[int, ...] = (1, C)) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 5, size=shape).astype(np.float32)


def assert_one_line_error(excinfo: pytest.ExceptionInfo[UserError], *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# --- the three formats ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["txt", "bin", "npy"])
@pytest.mark.parametrize("shape", [(1, C), (C,)])
def test_reads_each_format(tmp_path: Path, fmt: str, shape: tuple[int, ...]) -> None:
    arrays = {f"ILSVRC2012_val_0000000{i}": scores(i, shape) for i in range(1, 4)}
    for stem, array in arrays.items():
        WRITERS[fmt](tmp_path / f"{stem}_0.{fmt}", array)

    results = read_scores(tmp_path, C)

    assert list(results) == sorted(arrays)
    for stem, array in arrays.items():
        got = results[stem]
        assert got.dtype == np.float32 and got.shape == (C,)
        expected = txt_rounded(array) if fmt == "txt" else array.ravel()
        np.testing.assert_array_equal(got, expected)


def test_txt_keeps_six_decimals_exactly(tmp_path: Path) -> None:
    (tmp_path / "a_0.txt").write_text("1.000000 -2.500000 0.123457 \n")
    np.testing.assert_array_equal(
        read_scores(tmp_path, 3)["a"], np.array([1.0, -2.5, 0.123457], dtype=np.float32)
    )


def test_npy_integer_scores_are_accepted(tmp_path: Path) -> None:
    write_npy(tmp_path / "a_0.npy", np.arange(C, dtype=np.int64))
    np.testing.assert_array_equal(read_scores(tmp_path, C)["a"], np.arange(C, dtype=np.float32))


def test_files_are_matched_by_name_not_by_order(tmp_path: Path) -> None:
    # ModelZoo's postprocess pairs results with labels by position; a folder listing in any
    # order must still give each image its own scores. The argmax encodes the image number.
    stems = [f"ILSVRC2012_val_{i:08d}" for i in range(1, 21)]
    order = stems[:]
    random.Random(7).shuffle(order)
    for stem in order:
        array = np.zeros((1, C), dtype=np.float32)
        array[0, int(stem[-8:]) % C] = 1.0
        write_bin(tmp_path / f"{stem}_0.bin", array)

    results = read_scores(tmp_path, C)

    assert list(results) == stems
    for stem, values in results.items():
        assert int(np.argmax(values)) == int(stem[-8:]) % C


def test_ignores_summary_other_outputs_and_folders(tmp_path: Path) -> None:
    write_txt(tmp_path / "img1_0.txt", scores(1))
    write_txt(tmp_path / "img1_1.txt", scores(2, (1, 3)))  # a second model output, other size
    write_txt(tmp_path / "img1_10.txt", scores(3, (1, 4)))  # output 10, not output 0
    write_txt(tmp_path / "img1_0_1.txt", scores(4, (1, 5)))  # output 1 of an input named img1_0
    (tmp_path / "_summary.json").write_text(json.dumps({"filesinfo": {}, "throughput": 1.0}))
    (tmp_path / "x_summary.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "img1_0.json").write_text("{}")
    (tmp_path / "device0_0").mkdir()  # multi-device sub-folder
    write_txt(tmp_path / "device0_0" / "img9_0.txt", scores(9))
    (tmp_path / "dir_0.txt").mkdir()  # a folder with a result-like name

    results = read_scores(tmp_path, C)

    assert list(results) == ["img1"]
    np.testing.assert_array_equal(results["img1"], txt_rounded(scores(1)))


def test_underscores_in_the_stem(tmp_path: Path) -> None:
    write_bin(tmp_path / "a_0_0.bin", scores(1))  # output 0 of input 'a_0'
    write_bin(tmp_path / "pure_infer_data_0.bin", scores(2))
    assert sorted(read_scores(tmp_path, C)) == ["a_0", "pure_infer_data"]


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["txt", "bin", "npy"])
@pytest.mark.parametrize("count", [C - 1, C + 1, 2 * C])
def test_wrong_value_count(tmp_path: Path, fmt: str, count: int) -> None:
    write_bin(tmp_path / "good_0.bin", scores(1))
    path = tmp_path / f"bad_0.{fmt}"
    WRITERS[fmt](path, scores(2, (1, count)))
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path), str(count), str(C))


def test_two_rows_of_classes_are_too_many(tmp_path: Path) -> None:
    # A batch-2 output in one file is not one image's scores.
    path = tmp_path / "a_0.txt"
    write_txt(path, scores(1, (2, C)))
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path), str(2 * C))


@pytest.mark.parametrize("cut", [1, 2, 3, 4 * C - 1])
def test_truncated_bin(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "a_0.bin"
    write_bin(path, scores(1))
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path))


def test_truncated_npy(tmp_path: Path) -> None:
    path = tmp_path / "a_0.npy"
    write_npy(path, scores(1))
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path))


@pytest.mark.parametrize(
    "content",
    [b"1.0 2.0 abc 4.0\n", b"\x00\xff\x10garbage", b"1.0 2.0 3.0 4.0 5.0 6.0 7.0 8.0 9.0 1.0_0\n"],
)
def test_garbled_txt(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "a_0.txt"
    path.write_bytes(content)
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path))


def test_truncated_txt_reports_the_count(tmp_path: Path) -> None:
    path = tmp_path / "a_0.txt"
    write_txt(path, scores(1))
    text = path.read_text()
    path.write_text(text[: text.index(" ", len(text) // 2) + 1])  # cut after a whole value
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path), f"expected {C}")


@pytest.mark.parametrize(
    "payload",
    [
        b"this is not numpy",
        b"",
        b"\x93NUMPY\x01\x00garbage",
    ],
)
def test_garbled_npy(tmp_path: Path, payload: bytes) -> None:
    path = tmp_path / "a_0.npy"
    path.write_bytes(payload)
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path))


def test_pickled_npy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a_0.npy"
    with open(path, "wb") as file:
        np.save(file, np.array([{"x": 1}] * C, dtype=object), allow_pickle=True)
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path))


def test_non_numeric_npy(tmp_path: Path) -> None:
    path = tmp_path / "a_0.npy"
    write_npy(path, np.array(["x"] * C))
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(path))


def test_two_formats_for_one_image(tmp_path: Path) -> None:
    write_txt(tmp_path / "a_0.txt", scores(1))
    write_bin(tmp_path / "a_0.bin", scores(1))
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(tmp_path), "a_0.txt", "a_0.bin")


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path / "nope", C)
    assert_one_line_error(excinfo, str(tmp_path / "nope"))


def test_file_instead_of_folder(tmp_path: Path) -> None:
    path = tmp_path / "a_0.txt"
    write_txt(path, scores(1))
    with pytest.raises(UserError) as excinfo:
        read_scores(path, C)
    assert_one_line_error(excinfo, str(path))


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(tmp_path), "no result files")


def test_folder_with_only_a_summary(tmp_path: Path) -> None:
    (tmp_path / "_summary.json").write_text("{}")
    write_txt(tmp_path / "a_1.txt", scores(1))
    with pytest.raises(UserError) as excinfo:
        read_scores(tmp_path, C)
    assert_one_line_error(excinfo, str(tmp_path), "no result files")


# --- properties -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("results")


def clear(folder: Path) -> None:
    # Hypothesis reuses one folder for all examples: start each from an empty one.
    for old in folder.iterdir():
        old.unlink()


@settings(max_examples=200, deadline=None, database=None)
@given(content=st.text() | st.binary())
def test_arbitrary_txt_only_raises_user_error(scratch: Path, content: str | bytes) -> None:
    clear(scratch)
    path = scratch / "a_0.txt"
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    try:
        results = read_scores(scratch, 3)
    except UserError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        assert results["a"].shape == (3,) and results["a"].dtype == np.float32


@settings(max_examples=200, deadline=None, database=None)
@given(content=st.binary(max_size=300))
def test_arbitrary_npy_and_bin_only_raise_user_error(scratch: Path, content: bytes) -> None:
    for fmt in ("npy", "bin"):
        clear(scratch)
        path = scratch / f"a_0.{fmt}"
        path.write_bytes(content)
        try:
            results = read_scores(scratch, 3)
        except UserError as exc:
            assert "\n" not in str(exc) and str(path) in str(exc)
        else:
            assert results["a"].shape == (3,) and results["a"].dtype == np.float32


@settings(max_examples=100, deadline=None, database=None)
@given(
    values=st.lists(
        st.floats(width=32, min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=50
    )
)
def test_txt_round_trip(scratch: Path, values: list[float]) -> None:
    clear(scratch)
    array = np.array([values], dtype=np.float32)
    write_txt(scratch / "a_0.txt", array)
    np.testing.assert_array_equal(read_scores(scratch, len(values))["a"], txt_rounded(array))


def test_every_output_is_read_with_its_own_dtype_and_shape(tmp_path: Path) -> None:
    outputs = [Tensor("logits", "float32", "ND", ("batch", 2, 3)), Tensor("mask", "int64", "ND", ("batch", 4))]
    logits = np.arange(6, dtype=np.float32).reshape(2, 3)
    write_npy(tmp_path / "s_1_0.npy", logits)
    (tmp_path / "s_1_1.bin").write_bytes(np.array([3, -1, 0, 7], dtype="<i8").tobytes())
    write_npy(tmp_path / "s_1_2.npy", np.zeros(5))  # a third output the model does not declare: ignored
    result = read_results(tmp_path, outputs)["s_1"]
    np.testing.assert_array_equal(result["logits"], logits)
    assert result["mask"].dtype == np.int64 and result["mask"].tolist() == [3, -1, 0, 7]


def test_a_sample_missing_one_output_is_one_line(tmp_path: Path) -> None:
    outputs = [Tensor("a", "float32", "ND", ("batch", 2)), Tensor("b", "float32", "ND", ("batch", 2))]
    write_npy(tmp_path / "x_0.npy", np.zeros(2, dtype=np.float32))
    with pytest.raises(UserError) as excinfo:
        read_results(tmp_path, outputs)
    assert_one_line_error(excinfo, "x_1.*", "'b'", str(tmp_path))
