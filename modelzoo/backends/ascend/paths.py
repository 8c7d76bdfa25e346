"""ais_bench's path rules, checked before a run, and folders and files made to satisfy them.

Since February 2024 ais_bench's front end vets every path argument before it runs anything
(infer/args_check.py, infer/common/path_security_check.py; docs/ascend.md lists the facts):
  - the absolute path may hold only A-Z a-z 0-9 _ - / . ; at most 4096 characters, 255 per name;
  - the path itself may not be a symbolic link;
  - the current user must own it or be in its group;
  - what it reads (--model, --input) may not be group- or other-writable;
  - what it writes (--output, --output_dirname) may not exceed 0750 when it exists.
A refusal is an argparse error (exit 2) before the model is even loaded, so the runner checks the
user's folders before it exports anything, hands ais_bench resolved absolute paths (no links,
no dependence on the working folder), and creates what it hands over with modes that pass.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from modelzoo.errors import UserError

DIR_MODE = 0o750   # what ais_bench itself gives the folders it creates
FILE_MODE = 0o640  # and the files it writes
_ILLEGAL = re.compile(r"[^_A-Za-z0-9/.-]")
MAX_PATH = 4096
MAX_NAME = 255
# Room for what the runner adds below a checked folder, e.g. ascend/output/device255_summary.json
# or a cached .om's name; image names are not known here.
_RESERVED = 160
_GROUP_OR_OTHER_WRITE = stat.S_IWGRP | stat.S_IWOTH


def check_paths(workdir: Path, cache_dir: Path) -> None:
    """One UserError line for the first folder ais_bench would refuse a path below of."""
    for folder, option in ((workdir, "--output"), (cache_dir, "--cache-dir")):
        real = resolved(folder)
        problem = _string_problem(str(real), _RESERVED)
        if problem:
            raise UserError(f"ais_bench would refuse the paths below {_shown(folder, real)}: "
                            f"{problem}; pass {option} with a folder whose absolute path has only "
                            f"A-Z a-z 0-9 _ - / . and at most {MAX_PATH - _RESERVED} characters")
    root = resolved(workdir) / "ascend"
    folders = [root, root / "input", root / "output"]
    for parent in folders[1:]:
        if parent.is_dir():
            folders += sorted(parent.glob("device*"))
    for folder in folders:  # the runner writes into these and sets their mode: they must be yours
        _check_owned(folder, "--output", shared_ok=False)
    for om in sorted(resolved(cache_dir).glob("*.om")):  # handed over as they are, links resolved
        _check_owned(resolved(om), "--cache-dir", shared_ok=True)


def resolved(path: Path) -> Path:
    """Absolute, with every link resolved: ais_bench refuses a path that is itself a link."""
    return Path(os.path.abspath(path)).resolve()


def secure_dir(path: Path) -> Path:
    """Create `path` (parents as needed) and give it DIR_MODE, whatever the umask or its past."""
    path.mkdir(parents=True, exist_ok=True)
    if stat.S_IMODE(path.stat().st_mode) != DIR_MODE:
        path.chmod(DIR_MODE)
    return path


def secure_file(path: Path) -> Path:
    """Give a file of one's own FILE_MODE; another's was vetted by check_paths and stays as is."""
    info = path.stat()
    if info.st_uid == os.geteuid() and stat.S_IMODE(info.st_mode) != FILE_MODE:
        path.chmod(FILE_MODE)
    return path


def _check_owned(path: Path, option: str, shared_ok: bool) -> None:
    """Something an earlier run left: the user's own, or (shared_ok) a group member's that
    ais_bench accepts as it is."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise UserError(f"{path} is a symbolic link, which ais_bench refuses; remove it (the "
                        f"runner recreates it) or pass another {option}")
    if info.st_uid == os.geteuid():
        return
    if info.st_gid not in os.getgroups():
        rule = "ais_bench refuses paths whose owner or group the current user is not in"
    elif not shared_ok:
        rule = "the runner must write into it and set its mode to 0750"
    elif info.st_mode & _GROUP_OR_OTHER_WRITE:
        rule = "it is group- or other-writable, which ais_bench refuses, and only its owner can change that"
    else:
        return  # a group member's file that ais_bench accepts
    raise UserError(f"{path} belongs to another user (uid {info.st_uid}): {rule}; "
                    f"pass {option} with a folder of your own")


def _string_problem(path: str, reserved: int = 0) -> str | None:
    bad = _ILLEGAL.search(path)
    if bad:
        return f"it contains {bad.group()!r}"
    if len(path) + reserved > MAX_PATH:
        return f"it is {len(path)} characters long (ais_bench takes {MAX_PATH}, names below it included)"
    long = next((name for name in path.split("/") if len(name) > MAX_NAME), None)
    if long:
        return f"the name {long[:20]}... is {len(long)} characters long (ais_bench takes {MAX_NAME})"
    return None


def _shown(given: Path, real: Path) -> str:
    if Path(given) == real:
        return str(real)
    if not Path(given).is_absolute():
        return f"{real} (the working folder {os.getcwd()} joined with {given})"
    return f"{real} (where {given} leads)"
