"""Label files: `<image file name> <0-based class>` lines, and the image key used for matching."""
from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelzoo.errors import UserError
from modelzoo.labels import image_key, read_labels


def write(path: Path, content: str | bytes) -> Path:
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def assert_one_line_error(excinfo: pytest.ExceptionInfo[UserError], *fragments: str) -> None:
    message = str(excinfo.value)
    assert "\n" not in message and "\r" not in message
    for fragment in fragments:
        assert fragment in message, (fragment, message)


# --- image_key ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("ILSVRC2012_val_00000001.JPEG", "ILSVRC2012_val_00000001"),
        ("ILSVRC2012_val_00000001.bin", "ILSVRC2012_val_00000001"),
        # ais_bench splits on the FIRST dot, so must we.
        ("photo.v2.final.png", "photo"),
        ("no_extension", "no_extension"),
        ("val/ILSVRC2012_val_00000007.JPEG", "ILSVRC2012_val_00000007"),
    ],
)
def test_image_key(name: str, key: str) -> None:
    assert image_key(name) == key


# --- well-formed files ----------------------------------------------------------------------


def test_reads_names_and_classes_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path / "val.txt",
        "ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_00000002.JPEG 970\nILSVRC2012_val_00000003.JPEG 0\n",
    )
    labels = read_labels(path, num_classes=1000)
    assert labels == {
        "ILSVRC2012_val_00000001.JPEG": 65,
        "ILSVRC2012_val_00000002.JPEG": 970,
        "ILSVRC2012_val_00000003.JPEG": 0,
    }
    assert list(labels) == [f"ILSVRC2012_val_0000000{i}.JPEG" for i in (1, 2, 3)]


def test_tolerates_bom_crlf_blank_lines_and_spaces(tmp_path: Path) -> None:
    # What a label list saved by a Windows editor looks like.
    content = "\ufeffa.JPEG 1\r\n\r\n  b.JPEG\t2   \r\n\n c.JPEG  999 \r\n"
    labels = read_labels(write(tmp_path / "val.txt", content), num_classes=1000)
    assert labels == {"a.JPEG": 1, "b.JPEG": 2, "c.JPEG": 999}


def test_line_numbers_count_only_newlines(tmp_path: Path) -> None:
    # A stray form feed (or U+2028) is not a line break for an editor, so not for the message.
    path = write(tmp_path / "val.txt", "a.JPEG 1\x0c\r\nb.JPEG 2\u2028\nc.JPEG x\n")
    with pytest.raises(UserError) as excinfo:
        read_labels(path)
    assert_one_line_error(excinfo, f"{path} line 3")


def test_no_final_newline(tmp_path: Path) -> None:
    assert read_labels(write(tmp_path / "val.txt", "a.JPEG 3\nb.JPEG 4")) == {"a.JPEG": 3, "b.JPEG": 4}


def test_without_num_classes_any_non_negative_class_is_accepted(tmp_path: Path) -> None:
    assert read_labels(write(tmp_path / "val.txt", "a.JPEG 123456\n")) == {"a.JPEG": 123456}


# --- errors ---------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    with pytest.raises(UserError) as excinfo:
        read_labels(path)
    assert_one_line_error(excinfo, str(path))


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(UserError) as excinfo:
        read_labels(tmp_path)
    assert_one_line_error(excinfo, str(tmp_path))


@pytest.mark.parametrize("content", ["", "\n\n  \r\n", "\ufeff"])
def test_empty_file(tmp_path: Path, content: str) -> None:
    path = write(tmp_path / "val.txt", content)
    with pytest.raises(UserError) as excinfo:
        read_labels(path)
    assert_one_line_error(excinfo, str(path), "no labels")


def test_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path / "val.txt", b"a.JPEG 1\n\xff\xfe\x00garbage 2\n")
    with pytest.raises(UserError) as excinfo:
        read_labels(path)
    assert_one_line_error(excinfo, str(path))


@pytest.mark.parametrize(
    "bad_line",
    ["b.JPEG", "b.JPEG 2 3", "b.JPEG,2", "b.JPEG 2 # comment"],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad_line: str) -> None:
    path = write(tmp_path / "val.txt", f"a.JPEG 1\n\n{bad_line}\nc.JPEG 3\n")
    with pytest.raises(UserError) as excinfo:
        read_labels(path)
    assert_one_line_error(excinfo, f"{path} line 3", "malformed")


@pytest.mark.parametrize("bad_class", ["x", "1.5", "+5", "1_000", "٣", "0x10", "1e3"])
def test_non_integer_class(tmp_path: Path, bad_class: str) -> None:
    path = write(tmp_path / "val.txt", f"a.JPEG 1\nb.JPEG {bad_class}\n")
    with pytest.raises(UserError) as excinfo:
        read_labels(path, num_classes=1000)
    assert_one_line_error(excinfo, f"{path} line 2", "not an integer")


@pytest.mark.parametrize("bad_class", [1000, 1001, -1])
def test_class_out_of_range(tmp_path: Path, bad_class: int) -> None:
    path = write(tmp_path / "val.txt", f"a.JPEG 999\nb.JPEG 0\nc.JPEG {bad_class}\n")
    with pytest.raises(UserError) as excinfo:
        read_labels(path, num_classes=1000)
    assert_one_line_error(excinfo, f"{path} line 3", str(bad_class), "0..999")


def test_duplicate_name_gives_both_line_numbers(tmp_path: Path) -> None:
    path = write(tmp_path / "val.txt", "a.JPEG 1\nb.JPEG 2\n\nc.JPEG 3\nb.JPEG 2\n")
    with pytest.raises(UserError) as excinfo:
        read_labels(path)
    assert_one_line_error(excinfo, str(path), "b.JPEG", "lines 2 and 5")


def test_names_with_the_same_key_collide(tmp_path: Path) -> None:
    # a.JPEG and a.png would both become a.bin / a_0.txt: one would silently overwrite the other.
    path = write(tmp_path / "val.txt", "a.JPEG 1\na.png 2\n")
    with pytest.raises(UserError) as excinfo:
        read_labels(path)
    assert_one_line_error(excinfo, str(path), "a.png", "lines 1 and 2")


def test_name_without_key(tmp_path: Path) -> None:
    path = write(tmp_path / "val.txt", ".JPEG 1\n")
    with pytest.raises(UserError) as excinfo:
        read_labels(path)
    assert_one_line_error(excinfo, f"{path} line 1")


# --- properties -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Hypothesis reruns a test many times; a function-scoped tmp_path would be shared anyway.
    return tmp_path_factory.mktemp("labels") / "val.txt"


@settings(max_examples=200, deadline=None, database=None)
@given(content=st.text() | st.binary())
def test_arbitrary_content_only_raises_user_error(scratch: Path, content: str | bytes) -> None:
    write(scratch, content)
    try:
        labels = read_labels(scratch, num_classes=1000)
    except UserError as exc:
        assert "\n" not in str(exc) and "\r" not in str(exc)
        assert str(scratch) in str(exc)
    else:
        assert labels and all(0 <= label < 1000 for label in labels.values())


names = st.from_regex(r"[A-Za-z0-9_\-]{1,20}\.(JPEG|png)", fullmatch=True)


@settings(max_examples=100, deadline=None, database=None)
@given(
    labels=st.dictionaries(names, st.integers(0, 999), min_size=1, max_size=30),
    newline=st.sampled_from(["\n", "\r\n"]),
    separator=st.sampled_from([" ", "\t", "   "]),
    bom=st.booleans(),
)
def test_round_trip(scratch: Path, labels: dict[str, int], newline: str, separator: str, bom: bool) -> None:
    # Names that share a key are a (tested) error; keep one name per key here.
    unique: dict[str, tuple[str, int]] = {}
    for name, label in labels.items():
        unique.setdefault(name.split(".")[0], (name, label))
    expected = dict(unique.values())
    text = newline.join(f"{name}{separator}{label}" for name, label in expected.items()) + newline
    write(scratch, ("\ufeff" if bom else "") + text)
    assert read_labels(scratch, num_classes=1000) == expected
