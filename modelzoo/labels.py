"""Ground-truth label files: one `<image file name> <0-based class>` pair per line.

The ImageNet validation list ModelZoo uses looks like::

    ILSVRC2012_val_00000001.JPEG 65
    ILSVRC2012_val_00000002.JPEG 970

Images, their preprocessed .bin files and ais_bench results are matched through
`image_key`, never by position (ModelZoo's position matching breaks on subsets).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from modelzoo.errors import UserError

# ASCII digits only: int() would also accept "+5", "1_000" and non-ASCII digits such as "٣".
_CLASS_RE = re.compile(r"-?[0-9]+")


def image_key(name: str) -> str:
    """The file name before its first '.': `ILSVRC2012_val_00000001.JPEG` -> `ILSVRC2012_val_00000001`.

    ais_bench names its results `basename(input).split('.')[0] + '_<output index>'`, so this is
    the one key that links an image, its .bin file and its result file. Any folder part is dropped.
    """
    return os.path.basename(name).split(".")[0]


def read_labels(path: Path, num_classes: int | None = None) -> dict[str, int]:
    """Read a label file into {image file name: class}, in file order.

    Tolerates a UTF-8 BOM, CRLF line endings, blank lines and surrounding spaces. Raises a
    one-line `UserError` naming the file (and line) for a missing or empty file, a malformed
    line, a non-integer class, a class outside 0..num_classes-1, and two lines for the same
    image (same name, or names with the same `image_key`, which would collide downstream).
    """
    path = Path(path)
    labels: dict[str, int] = {}
    first_line_of_key: dict[str, tuple[int, str]] = {}
    # Split on '\n' only: str.splitlines() also breaks on \x0b, \x1c, U+2028..., which would
    # make the reported line numbers disagree with what an editor shows.
    for number, raw in enumerate(_read_text(path).split("\n"), start=1):
        line = raw.strip()  # also drops the '\r' of CRLF files
        if not line:
            continue
        name, label = _parse_line(line, f"{path} line {number}", num_classes)
        key = image_key(name)
        if key in first_line_of_key:
            first_number, first_name = first_line_of_key[key]
            same = "is listed twice" if first_name == name else f"has the same key as {first_name!r}"
            raise UserError(
                f"image {name[:80]!r} {same} in label file {path} (lines {first_number} and "
                f"{number}); keep one line per image"
            )
        first_line_of_key[key] = (number, name)
        labels[name] = label

    if not labels:
        raise UserError(
            f"label file {path} has no labels; expected '<image file name> <class index>' lines"
        )
    return labels


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(
            f"cannot read label file {path}: {exc.strerror or exc}; check the --labels path"
        ) from None
    try:
        return data.decode("utf-8-sig")  # strips a leading BOM if there is one
    except UnicodeDecodeError as exc:
        raise UserError(
            f"label file {path} is not UTF-8 text (byte {exc.start}); "
            "pass a text file with '<image name> <class>' lines"
        ) from None


def _parse_line(line: str, where: str, num_classes: int | None) -> tuple[str, int]:
    """(image file name, class) from one non-blank line, or the one-line error naming `where`."""
    fields = line.split()
    if len(fields) != 2:
        raise UserError(
            f"malformed line in label file {where}: {line[:80]!r}; "
            "expected '<image file name> <class index>'"
        )
    name, class_text = fields
    if not _CLASS_RE.fullmatch(class_text):
        raise UserError(
            f"class {class_text[:40]!r} in label file {where} is not an integer; "
            "expected a 0-based class index"
        )
    label = int(class_text)
    if label < 0 or (num_classes is not None and label >= num_classes):
        limit = f"0..{num_classes - 1}" if num_classes is not None else "0 or more"
        raise UserError(
            f"class {label} in label file {where} is out of range ({limit}); "
            "check that the labels are 0-based and match the model"
        )
    if not image_key(name):
        raise UserError(
            f"image name {name[:80]!r} in label file {where} has nothing before its first '.'; "
            "rename the image"
        )
    return name, label
